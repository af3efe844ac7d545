"""Former home of ``ros_vision_pipe.messages.typestore`` (the same module under its old name)."""

import sys

from ros_vision_pipe.messages import typestore as _module

sys.modules[__name__] = _module
