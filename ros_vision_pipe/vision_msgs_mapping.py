"""Former home of ``ros_vision_pipe.messages.vision_msgs_mapping`` (the same module under its old name)."""

import sys

from ros_vision_pipe.messages import vision_msgs_mapping as _module

sys.modules[__name__] = _module
