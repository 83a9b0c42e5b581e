"""benchmark(): latency and accuracy of one YOLOv8 model through every runtime, measured in one run.

Rows: one per TF-TRT precision, the plain TensorFlow SavedModel, the same
graph with XLA, and two references measured on the same images in the same
process: Ultralytics' PyTorch predict and ONNX Runtime (Ultralytics' ONNX
export through `YOLO(model.onnx).predict`, i.e. ONNX Runtime plus Ultralytics'
own pre- and post-processing). A row that cannot run on this machine says
"unavailable: <reason>" instead of failing the whole benchmark.

Each row gets two timings, both in ms per image at batch `batch`:

- end-to-end: encoded image files in, final detections out (SavedModels: the
  file bytes through the serving signature; Ultralytics: `predict` on the file
  paths, letterboxed to the same square input as the SavedModel);
- network: the network alone on a letterboxed float batch (SavedModels: the
  graph's wrapped onnx2tf network, with XLA where the model has it; PyTorch:
  Ultralytics' AutoBackend; ONNX: the ONNX Runtime session).

Timing follows tensorflow/tensorrt's benchmark runner: `warmup` calls are not
counted, every call is synchronised (end to end: the final outputs copied to
host numpy; network: one value read back, so the raw heads stay on the
device), and the table reports mean, min, max, the 10 %-trimmed mean, median
and p99 (lower).
Accuracy comes from `tftrt_yolo.validate.val` on each row's model.

Modules: `stats` (Stats, time_calls; numpy alone), `table` (BenchmarkTable and
its rows, JSON), `presentation` (Markdown, plot), `machine` (what it ran on),
`runtimes` (per-runtime timers), `run` (benchmark() itself).
"""

from tftrt_yolo.benchmark.machine import machine_info
from tftrt_yolo.benchmark.run import RUNTIMES, benchmark
from tftrt_yolo.benchmark.runtimes import network_batch
from tftrt_yolo.benchmark.stats import Stats, time_calls
from tftrt_yolo.benchmark.table import BenchmarkTable, Row

__all__ = ["RUNTIMES", "BenchmarkTable", "Row", "Stats", "benchmark", "machine_info", "network_batch", "time_calls"]
