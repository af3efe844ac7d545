"""ros_vision_pipe: multi-model ONNX + Lua vision pipelines for ROS 2.

The source package and the package that ``colcon build`` generates for the
messages (``ros_vision_pipe.msg``) share this name; ``extend_path`` lets the
two combine when the source tree is on ``sys.path`` next to an install.
"""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
