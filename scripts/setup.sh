#!/usr/bin/env bash
# Create .venv (once) and install faderkit into it, with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import faderkit, pytest, faderkit_plugins" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
    .venv/bin/python -m pip install --quiet -e '.[test]'
fi
