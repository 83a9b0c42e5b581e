"""tftrt_yolo: Ultralytics YOLOv8 -> end-to-end TensorFlow SavedModels, TF-TRT and TensorFlow Serving."""

from tftrt_yolo.convert import convert
from tftrt_yolo.errors import ConversionError, EnvironmentNotReady, InputError, TftrtYoloError
from tftrt_yolo.model import YoloModel, load
from tftrt_yolo.results import Result
from tftrt_yolo.tasks import TASKS

__version__ = "0.1.0"

__all__ = [
    "TASKS",
    "ConversionError",
    "EnvironmentNotReady",
    "InputError",
    "Result",
    "TftrtYoloError",
    "YoloModel",
    "convert",
    "load",
]
