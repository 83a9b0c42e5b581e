"""One small spec per YOLOv8 task: what the network emits and what the graph returns.

Modelled on optimum's per-task export configs: everything task-specific that
conversion, post-processing and validation need lives here, nowhere else.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tftrt_yolo.errors import InputError

TASKS = ("detect", "segment", "classify", "pose", "obb")
PREDICT_DEFAULTS = {"conf": 0.25, "iou": 0.7, "max_det": 300}  # Ultralytics predict defaults


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    ultralytics_yaml: str  # the yolov8n architecture shipped in the ultralytics wheel
    network_outputs: int  # tensors onnx2tf's SavedModel returns (output_0, output_1, ...)
    outputs: tuple[str, ...]  # end-to-end signature outputs, besides `image_sizes`
    letterbox: bool  # detection tasks letterbox; classify resizes + centre-crops
    supports_dynamic_batch: bool  # onnx2tf cannot convert the segment proto head with a dynamic batch


_DETECTION_OUTPUTS = ("boxes", "scores", "classes", "num_detections")

SPECS = {
    "detect": TaskSpec("detect", "yolov8n.yaml", 1, _DETECTION_OUTPUTS, True, True),
    "segment": TaskSpec("segment", "yolov8n-seg.yaml", 2, _DETECTION_OUTPUTS + ("masks",), True, False),
    "classify": TaskSpec("classify", "yolov8n-cls.yaml", 1, ("probs", "top5_classes", "top5_scores"), False, True),
    "pose": TaskSpec("pose", "yolov8n-pose.yaml", 1, _DETECTION_OUTPUTS + ("keypoints",), True, True),
    "obb": TaskSpec("obb", "yolov8n-obb.yaml", 1, _DETECTION_OUTPUTS + ("rboxes",), True, True),
}


def task_spec(task: str) -> TaskSpec:
    """The spec of `task`, or an InputError naming the supported tasks."""
    try:
        return SPECS[task]
    except KeyError:
        raise InputError(
            f"unsupported task {task!r}: tftrt_yolo converts YOLOv8 models for {', '.join(TASKS)}"
        ) from None


def check_thresholds(conf, iou, max_det) -> None:
    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise InputError(f"conf and iou must lie in [0, 1], got conf={conf}, iou={iou}")
    if not isinstance(max_det, (int, np.integer)) or isinstance(max_det, bool) or max_det < 1:
        raise InputError(f"max_det must be a positive integer, got {max_det!r}")


def threshold_inputs(n: int, conf, iou, max_det) -> dict:
    """The signature's per-image threshold inputs ([N] each, so TF Serving can batch requests)."""
    check_thresholds(conf, iou, max_det)
    return {
        "conf": np.full(n, conf, np.float32),
        "iou": np.full(n, iou, np.float32),
        "max_det": np.full(n, max_det, np.int32),
    }
