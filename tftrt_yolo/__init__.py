"""tftrt_yolo: Ultralytics YOLOv8 -> end-to-end TensorFlow SavedModels, TF-TRT and TensorFlow Serving.

The library is quiet: every function that can draw progress bars (convert, predict, val, benchmark, ...)
draws them on stderr only when called with `verbose=True`, as the `tftrt-yolo` command line does.
"""

from tftrt_yolo.benchmark import BenchmarkTable, benchmark
from tftrt_yolo.conversion import convert
from tftrt_yolo.demo import demo_data, demo_model
from tftrt_yolo.environment import check_environment
from tftrt_yolo.errors import ConversionError, EnvironmentNotReady, InputError, TftrtYoloError, UnreadableImageWarning
from tftrt_yolo.model import YoloModel, load
from tftrt_yolo.results import Result
from tftrt_yolo.tasks import TASKS
from tftrt_yolo.validate import val

__version__ = "0.1.0"

__all__ = [
    "TASKS",
    "BenchmarkTable",
    "ConversionError",
    "EnvironmentNotReady",
    "InputError",
    "Result",
    "TftrtYoloError",
    "UnreadableImageWarning",
    "YoloModel",
    "benchmark",
    "check_environment",
    "convert",
    "demo_data",
    "demo_model",
    "load",
    "val",
]
