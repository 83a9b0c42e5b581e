"""val(): accuracy of a converted SavedModel, or of the Ultralytics model it came from, on a YOLO dataset.

Both kinds of model go through the same code: every val image is predicted
once (a SavedModel gets the file's bytes through its serving signature, an
Ultralytics `.pt` / `.onnx` goes through `YOLO(model).predict`), the final
detections are put in original-image pixels, and they are scored against the
labels with Ultralytics' own pieces: the labels come from its `YOLODataset` /
`ClassificationDataset` built in val mode, IoUs from `box_iou`, `mask_iou`,
`kpt_iou` (OKS, with the sigmas Ultralytics' PoseValidator picks) and
`batch_probiou`, matching from `BaseValidator.match_predictions` at IoU
0.50:0.95, and the averages from the metrics class of the task table.
No mAP code of our own.

Modules: `runners` (one predict interface over SavedModels, .pt and .onnx;
benchmark reuses them), `targets` (ground truth), `scoring` (Ultralytics'
matching and metrics), `evaluate` (val and its presentation), `accuracy` (the
accuracy guard of TF-TRT conversions).

Differences from `YOLO(pt).val()` (see benchmarks/README.md for numbers):
Ultralytics' validator keeps several classes per box (NMS `multi_label=True`)
where predict keeps one, scores in letterbox space (masks at a quarter of it)
instead of original pixels, resizes images with `ceil` before letterboxing, and
`YOLO.val()` letterboxes to rectangles (`rect=True`) unless told otherwise.
"""

from tftrt_yolo.validate.accuracy import accuracy_drop
from tftrt_yolo.validate.evaluate import format_result, headline, metric_value, ultralytics_val, val
from tftrt_yolo.validate.runners import SavedModelRunner, UltralyticsRunner, open_model
from tftrt_yolo.validate.scoring import Scorer, metrics_dict
from tftrt_yolo.validate.targets import Target, load_targets

__all__ = [
    "SavedModelRunner",
    "Scorer",
    "Target",
    "UltralyticsRunner",
    "accuracy_drop",
    "format_result",
    "headline",
    "load_targets",
    "metric_value",
    "metrics_dict",
    "open_model",
    "ultralytics_val",
    "val",
]
