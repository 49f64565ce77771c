#!/usr/bin/env bash
# Sets up everything ilbot needs on a fresh Debian machine: the apt packages the app and
# its tests use (Xvfb, xdotool, Qt's xcb libraries, a compositor), a virtual environment in
# .venv, the pinned CPU build of torch and the package itself with its test extras.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="xvfb xauth xdotool x11-utils libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 \
libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 \
libegl1 libgl1 libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core xcompmgr"

missing=""
for p in $APT_PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "[setup] installing apt packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  $PY -m venv .venv
fi
# torch is pinned here (the CPU wheel); the package itself asks only for a range.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 (CPU)"
  .venv/bin/pip install -q torch==2.13.0
fi
if [ ! -f .venv/.ilbot-installed ] || [ pyproject.toml -nt .venv/.ilbot-installed ]; then
  echo "[setup] installing ilbot and its test dependencies"
  .venv/bin/pip install -q -e ".[test]"
  touch .venv/.ilbot-installed
fi
echo "[setup] ready: .venv/bin/ilbot"
