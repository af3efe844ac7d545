"""Former home of ``ros_vision_pipe.messages.result_mapping`` (the same module under its old name)."""

import sys

from ros_vision_pipe.messages import result_mapping as _module

sys.modules[__name__] = _module
