#!/usr/bin/env bash
# Benchmark the five demo models on this CPU machine; results (JSON + Markdown + PNG per task, summary.md)
# go to benchmarks/results/cpu/. Slow on 2 cores (about 5 minutes per task): run it when the machine is quiet.
#
#   benchmarks/run_cpu.sh                          # all tasks, batch 8, 3 warm-up + 10 timed calls, full val
#   benchmarks/run_cpu.sh --tasks detect --iterations 5 --val-images 50
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export TF_CPP_MIN_LOG_LEVEL=3 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false
exec "$PYTHON" benchmarks/run.py --out benchmarks/results/cpu --batch 8 --warmup 3 --iterations 10 "$@"
