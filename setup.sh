#!/usr/bin/env bash
# Create .venv with the locked dependency set (TensorFlow 2.17.1 and what works next to it) and tftrt_yolo itself.
# uv installs PyPI's standard torch with its matching torchvision (pip would pick this machine's local CPU-only
# torch wheel, which breaks torchvision). Re-running it is cheap: uv only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")"
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
[ -x .venv/bin/python ] || uv venv --quiet --python 3.11 .venv
uv pip install --quiet --python .venv/bin/python -r requirements.lock
uv pip install --quiet --python .venv/bin/python --no-deps -e .
