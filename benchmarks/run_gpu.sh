#!/usr/bin/env bash
# Benchmark the five demo models on a GPU machine: TF-TRT FP32/FP16/INT8 (where TensorRT 8.6.1 is installed;
# otherwise those rows say why not), TensorFlow graph, XLA, Ultralytics PyTorch and ONNX Runtime, all in one
# run on the same images. Results go to benchmarks/results/gpu-tftrt/ (JSON + Markdown + PNG per task, summary.md).
#
# Needs a Python with this project and its dependencies, and a CUDA build of TensorFlow 2.17.1 that sees the
# GPU (`python -c "import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))"`); PyTorch and
# ONNX Runtime use the GPU when their CUDA builds are installed (onnxruntime-gpu), else the row runs on CPU
# and the JSON's machine/versions say so. `tftrt-yolo doctor` shows what TF-TRT lacks.
#
#   PYTHON=/path/to/python benchmarks/run_gpu.sh
#   PYTHON=... benchmarks/run_gpu.sh --tasks detect --batch 32 --iterations 100 --warmup 20
#
# Without network access to build the SavedModels there, convert them on any machine first and copy them:
#   benchmarks/run.py --convert-only /tmp/bench-models --batch 8      # here (TensorFlow and XLA graphs)
#   PYTHON=... benchmarks/run_gpu.sh --saved-models /tmp/bench-models  # there
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export TF_CPP_MIN_LOG_LEVEL=3 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false
"$PYTHON" -m tftrt_yolo doctor || true   # records what TF-TRT needs (does not stop the benchmark)
exec "$PYTHON" benchmarks/run.py --out benchmarks/results/gpu-tftrt --batch 8 --warmup 10 --iterations 50 "$@"
