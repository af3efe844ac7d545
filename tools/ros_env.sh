# shellcheck shell=bash
# Source me (bash):  source tools/ros_env.sh     (from any directory)
#
# Activates .venv (ROS 2 Kilted wheels + engine deps) and the colcon install/
# overlay built by tools/setup_env.sh, and sets the ROS runtime env:
#   ROS_DISTRO=kilted, RMW_IMPLEMENTATION=rmw_fastrtps_cpp,
#   ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (DDS traffic stays on this host),
#   ROS_DOMAIN_ID (default 42 if unset; give each concurrent test run its own),
#   FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_large_data.xml unless already set (a 16 MiB
#   shared-memory segment: camera-size images between processes of this machine; every process
#   started from this shell, a camera driver included, gets it; docs/ros.md "Camera-size images").
# Result: PATH/VIRTUAL_ENV -> .venv; PYTHONPATH += install/lib/python3.11/site-packages;
# AMENT_PREFIX_PATH = install:.venv; CMAKE_PREFIX_PATH += install,.venv;
# LD_LIBRARY_PATH += install/lib (our msg typesupport libs). The wheels' own libs
# are added by the ros_wheels_bootstrapper .pth, which re-execs python once with
# LD_LIBRARY_PATH set (guard var _ROS_WHEELS_BOOTSTRAP_COMPLETE).
# Safe under `set -u`/`set -e` callers: nounset is lifted only while colcon's
# setup.bash runs (it reads unset variables) and then restored.

_rvp_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

export ROS_DISTRO=kilted
export ROS_VERSION=2
export ROS_PYTHON_VERSION=3
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
if [ -z "${FASTDDS_DEFAULT_PROFILES_FILE+set}" ] && [ -z "${FASTRTPS_DEFAULT_PROFILES_FILE+set}" ]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$_rvp_root/config/fastdds_large_data.xml"
fi

if [ ! -f "$_rvp_root/.venv/bin/activate" ]; then
  echo "ros_env.sh: $_rvp_root/.venv missing; run: bash tools/setup_env.sh" >&2
  unset _rvp_root
  return 1 2>/dev/null || exit 1
fi

case $- in *u*) _rvp_nounset=1; set +u ;; *) _rvp_nounset=0 ;; esac

# shellcheck disable=SC1091
. "$_rvp_root/.venv/bin/activate"
# The venv is an ament prefix too (share/ament_index, share/*/cmake).
case ":${AMENT_PREFIX_PATH:-}:" in *":$_rvp_root/.venv:"*) ;; *)
  export AMENT_PREFIX_PATH="$_rvp_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
case ":${CMAKE_PREFIX_PATH:-}:" in *":$_rvp_root/.venv:"*) ;; *)
  export CMAKE_PREFIX_PATH="$_rvp_root/.venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac

if [ -f "$_rvp_root/install/setup.bash" ]; then
  # shellcheck disable=SC1091
  . "$_rvp_root/install/setup.bash"
else
  echo "ros_env.sh: $_rvp_root/install missing (msgs not built); run: bash tools/setup_env.sh" >&2
fi

# colcon leaves an empty entry (= current dir) when a path var was unset: drop it.
LD_LIBRARY_PATH="${LD_LIBRARY_PATH#:}"; LD_LIBRARY_PATH="${LD_LIBRARY_PATH%:}"
export LD_LIBRARY_PATH

if [ "$_rvp_nounset" = 1 ]; then set -u; fi
unset _rvp_root _rvp_nounset
