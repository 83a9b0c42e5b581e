"""What tf_rows.py and torch_rows.py share: the settings, the images, and tftrt_yolo's timing statistics.

The statistics module needs numpy alone and is loaded from its file, so this module imports wherever numpy
does (tests/test_benchmark.py checks it without cv2, TensorFlow, torch or tftrt_yolo's __init__).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tftrt_yolo_stats", REPO / "tftrt_yolo" / "benchmark" / "stats.py")
_stats = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _stats  # dataclasses look their module up there
_spec.loader.exec_module(_stats)
Stats, time_calls = _stats.Stats, _stats.time_calls

TASKS = ("detect", "segment", "classify", "pose", "obb")  # tftrt_yolo.tasks.TASKS, without the package
CONF, IOU, MAX_DET, BATCH = 0.25, 0.7, 300, 8


def image_files(root: Path, task: str) -> list[Path]:
    files = sorted((root / "images" / task).iterdir())
    assert len(files) == BATCH, files
    return files


def same_size_batch(files: list[Path]) -> np.ndarray:
    """uint8 [8, H, W, 3] RGB: the images resized (cv2, INTER_LINEAR) to the first one's size, the batch that
    `predict_images` and PyTorch's array rows get (a uint8 batch has one size); benchmarks/stages.py uses it too."""
    import cv2

    first = cv2.imread(str(files[0]))
    return np.stack([cv2.resize(cv2.imread(str(f)), first.shape[1::-1])[..., ::-1] for f in files])


def stats_dict(s: Stats) -> dict:
    return s.to_dict()
