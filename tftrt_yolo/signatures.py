"""The signature contract of every converted SavedModel: what graph/end_to_end.py builds and what `load`,
the TensorFlow Serving clients, warm-up records and validation send and read.

Two signatures take the same per-image thresholds and return the same outputs:
- `ENCODED` ("serving_default"): `images` string [N], JPEG/PNG/BMP/GIF bytes of any sizes;
- `ARRAYS` ("predict_images"): `images` uint8 [N, H, W, 3] RGB, one size per call.
"""

from __future__ import annotations

import numpy as np

from tftrt_yolo.errors import InputError

ENCODED = "serving_default"  # what TensorFlow Serving calls when a request names no signature
ARRAYS = "predict_images"
IMAGES = "images"  # the image input of both
IMAGE_SIZES = "image_sizes"  # int32 [N, 2], the original (h, w): every signature returns it

PREDICT_DEFAULTS = {"conf": 0.25, "iou": 0.7, "max_det": 300}  # Ultralytics predict defaults
THRESHOLDS = tuple(PREDICT_DEFAULTS)  # inputs [N] each (or [1] for all): TF Serving batches along axis 0

#: Every signature output: dtype and rank (JSON answers lose both). Which a task returns: TaskSpec.outputs.
OUTPUT_TYPES = {
    "boxes": (np.float32, 3),
    "scores": (np.float32, 2),
    "classes": (np.int32, 2),
    "num_detections": (np.int32, 1),
    "masks": (np.uint8, 4),
    "keypoints": (np.float32, 4),
    "rboxes": (np.float32, 3),
    "probs": (np.float32, 2),
    "top5_classes": (np.int32, 2),
    "top5_scores": (np.float32, 2),
    IMAGE_SIZES: (np.int32, 2),
}


def check_thresholds(conf, iou, max_det) -> None:
    """InputError unless conf and iou lie in [0, 1] and max_det is a positive integer (what predict and val take)."""
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
