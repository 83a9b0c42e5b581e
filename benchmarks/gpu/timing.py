"""What tf_rows.py and torch_rows.py share: tftrt_yolo's timing code, the settings, Stats as JSON.

Each device environment lacks something tftrt_yolo/__init__.py imports (the TensorFlow bundle has no cv2,
the PyTorch one no TensorFlow), so tftrt_yolo.benchmark is imported through a bare package module.
"""

import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_package = types.ModuleType("tftrt_yolo")
_package.__path__ = [str(REPO / "tftrt_yolo")]
sys.modules.setdefault("tftrt_yolo", _package)
from tftrt_yolo.benchmark import Stats, time_calls  # noqa: E402

TASKS = ("detect", "segment", "classify", "pose", "obb")
CONF, IOU, MAX_DET, BATCH = 0.25, 0.7, 300, 8


def stats_dict(s: Stats) -> dict:
    d = {k: getattr(s, k) for k in ("mean", "min", "max", "trimmed_mean", "median", "p99", "iterations", "batch")}
    d["images_per_second"] = s.images_per_second
    return d


__all__ = ["REPO", "TASKS", "CONF", "IOU", "MAX_DET", "BATCH", "Stats", "time_calls", "stats_dict"]
