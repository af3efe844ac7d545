#!/usr/bin/env bash
# The test command: sets up everything from nothing (venv, ROS 2 wheels, model packages,
# colcon build of the messages), then runs the whole suite against the built install.
#
#   bash tools/run_tests.sh            # all tests
#   bash tools/run_tests.sh -k serial  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup_env.sh
# shellcheck disable=SC1091
source tools/ros_env.sh
# A DDS domain of its own, so concurrent runs on one host never hear each other.
export ROS_DOMAIN_ID="${RVP_TEST_DOMAIN_ID:-$(( 100 + $$ % 100 ))}"
exec python -m pytest test -q -p no:cacheprovider "$@"
