"""``python -m ros_vision_pipe.replay``: see ``cli.py``."""

import sys

from ros_vision_pipe.replay.cli import main

sys.exit(main())
