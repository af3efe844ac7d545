"""``python -m ros_vision_pipe``: the command-line tool."""

import sys

from ros_vision_pipe.cli import main

sys.exit(main())
