#!/usr/bin/env bash
# Set up a virtual environment, fetch the model weights and run the test suite.
# Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned, so the rest of the install does not pull a different build
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# Chromium and Xvfb for the panel and tray tests; best effort (without them those tests skip and say why).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v Xvfb >/dev/null 2>&1 || missing="$missing xvfb"
  if [ -n "$missing" ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >/dev/null 2>&1 \
      || echo "tests/run.sh: could not install$missing; the panel and tray tests will skip" >&2
  fi
fi
.venv/bin/facetory models fetch
.venv/bin/python -m pytest -q -rs "$@"
