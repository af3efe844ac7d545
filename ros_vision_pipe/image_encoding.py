"""Former home of ``ros_vision_pipe.messages.image_encoding`` (the same module under its old name)."""

import sys

from ros_vision_pipe.messages import image_encoding as _module

sys.modules[__name__] = _module
