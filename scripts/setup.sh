#!/usr/bin/env bash
# Create .venv (once) and install faderkit into it with its test and faces extras (quick when already done).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,faces]'
