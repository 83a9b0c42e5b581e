"""Run onnx2tf in a child process.

onnx2tf changes the environment of the process it runs in (TF_USE_LEGACY_KERAS,
CUDA_VISIBLE_DEVICES, log levels) and some of its error paths call sys.exit, so
it never runs inside the caller's process. The child never outlives the caller:
an exception or signal in the caller kills it (subprocess.run), and on Linux so
does the caller's death by kill -9 (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from tftrt_yolo.errors import ConversionError

# onnx2tf validates a static-batch conversion on this sample and downloads it
# when it is missing from the working directory; it only feeds a consistency
# check, so a seeded local file keeps the conversion offline.
_SAMPLE_NAME = "calibration_image_sample_data_20x128x128x3_float32.npy"


def _die_with_parent() -> None:
    """In the child, before onnx2tf starts: the kernel sends it SIGKILL when the converting process dies."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def onnx_to_saved_model(onnx_path: Path, output_dir: Path, workdir: Path) -> Path:
    """Convert `onnx_path` to a TensorFlow SavedModel at `output_dir` (NHWC float input `images`)."""
    sample = workdir / _SAMPLE_NAME
    if not sample.exists():
        np.save(sample, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    cmd = [sys.executable, "-m", "onnx2tf", "-i", str(onnx_path), "-o", str(output_dir), "-osd", "-v", "error"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, preexec_fn=_die_with_parent)
    if proc.returncode != 0 or not (output_dir / "saved_model.pb").exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ConversionError(f"onnx2tf could not convert {onnx_path.name} (exit {proc.returncode}):\n{tail}")
    return output_dir
