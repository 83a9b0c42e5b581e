"""Every command-line flag of `tftrt-yolo`, defined in one place.

All flags are optional here; `cli.main` marks what each command requires, so
library code and tests never need flags (as in tensorflow/models'
official/common/flags.py).
"""

from absl import flags

from tftrt_yolo.tasks import PREDICT_DEFAULTS

COMMANDS = ("convert", "predict", "val", "benchmark", "doctor", "serve-config")


def define_flags() -> None:
    # what to work on
    flags.DEFINE_string("model", None, "convert: a YOLOv8 .pt, model .yaml or Ultralytics .onnx (default: the "
                        "built-in detect demo model); predict/val/benchmark: a SavedModel folder or a .pt.")
    flags.DEFINE_list("source", None, "predict: images, folders, globs or videos, comma-separated.")
    flags.DEFINE_string("data", None, "Dataset YAML (val, benchmark, INT8 calibration), an image folder or list.")
    # conversion
    flags.DEFINE_integer("imgsz", None, "Square input size (multiple of 32); default: the model's training size.")
    flags.DEFINE_integer("batch", None, "convert: largest batch (default 1); predict: images per call "
                         "(default: the model's batch); val: 1; benchmark: 8.")
    flags.DEFINE_boolean("dynamic", None, "Accept any batch up to --batch without padding (default: on for int8).")
    flags.DEFINE_enum("backend", "tensorflow", ["tensorflow", "xla", "tensorrt"], "What runs the network.")
    flags.DEFINE_enum("precision", "fp32", ["fp32", "fp16", "int8"], "TensorRT precision.")
    flags.DEFINE_float("workspace", 4.0, "TensorRT builder workspace in GiB.")
    flags.DEFINE_integer("minimum_segment_size", 3, "Smallest TensorFlow subgraph TF-TRT turns into an engine.")
    flags.DEFINE_integer("max_cached_engines", 1, "TF-TRT engines kept per subgraph.")
    flags.DEFINE_boolean("recalibrate", False, "Rebuild an INT8 conversion even if a cached one matches.")
    flags.DEFINE_float("max_map_drop", None, "Fail an fp16/int8 conversion whose mAP50-95 (top-1) drops more.")
    flags.DEFINE_string("output", "saved_models", "Root of the model repository conversions are written to.")
    flags.DEFINE_string("name", None, "Model name in the repository (default: from the model file).")
    flags.DEFINE_integer("version", None, "Model version folder (default: the next free number).")
    # prediction
    flags.DEFINE_float("conf", PREDICT_DEFAULTS["conf"], "Confidence threshold.")
    flags.DEFINE_float("iou", PREDICT_DEFAULTS["iou"], "NMS IoU threshold.")
    flags.DEFINE_integer("max_det", PREDICT_DEFAULTS["max_det"], "Most detections per image.")
    flags.DEFINE_string("save_dir", None, "predict: write annotated images here.")
    # outputs
    flags.DEFINE_string("json", None, "Write results as JSON to this file.")
    flags.DEFINE_string("markdown", None, "benchmark: write the table as Markdown to this file.")
    flags.DEFINE_string("plot", None, "benchmark: write a PNG plot to this file.")
    flags.DEFINE_list("precisions", ["fp32", "fp16", "int8"], "benchmark: TensorRT precisions to measure.")
    flags.DEFINE_integer("iterations", 10, "benchmark: timed calls per timing (after the warm-up calls).")
    flags.DEFINE_integer("warmup_iterations", 3, "benchmark: untimed warm-up calls before each timing.")
    flags.DEFINE_integer("val_images", None, "val/benchmark: score only the first N val images (default: all; "
                         "benchmark: 0 skips accuracy).")
    flags.DEFINE_list("models", None, "serve-config: SavedModel folders to put in the repository.")
    flags.DEFINE_string("repo", None, "serve-config: the TensorFlow Serving model repository to write.")
    flags.DEFINE_enum("version_policy", "latest", ["latest", "all", "specific"],
                      "serve-config: which versions the server loads (latest; all; specific: every version written).")
    flags.DEFINE_list("version_labels", None, "serve-config: version labels, LABEL=VERSION (one model) or "
                      "NAME:LABEL=VERSION, e.g. stable=1,canary=2 (labels need --version_policy=specific or all).")
    flags.DEFINE_boolean("batching", True, "serve-config: write batching_parameters.txt for the models' batch.")
    flags.DEFINE_boolean("warmup", True, "serve-config: write warmup requests so engines load with the model.")
    flags.DEFINE_string("serving_root", "/models", "serve-config: where the server sees the repository "
                        "(/models in the tensorflow/serving image; '' for this machine's path, for a local "
                        "tensorflow_model_server).")
