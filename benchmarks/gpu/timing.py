"""What tf_rows.py and torch_rows.py share: tftrt_yolo's timing statistics, the settings, Stats as JSON.

Each device environment lacks something tftrt_yolo/__init__.py imports (the TensorFlow bundle has no cv2,
the PyTorch one no TensorFlow), so the statistics module, which needs numpy alone, is loaded from its file.
"""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tftrt_yolo_stats", REPO / "tftrt_yolo" / "benchmark" / "stats.py")
_stats = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _stats  # dataclasses look their module up there
_spec.loader.exec_module(_stats)
Stats, time_calls = _stats.Stats, _stats.time_calls

TASKS = ("detect", "segment", "classify", "pose", "obb")  # tftrt_yolo.tasks needs the package
CONF, IOU, MAX_DET, BATCH = 0.25, 0.7, 300, 8


def stats_dict(s: Stats) -> dict:
    return s.to_dict()


__all__ = ["REPO", "TASKS", "CONF", "IOU", "MAX_DET", "BATCH", "Stats", "time_calls", "stats_dict"]
