"""benchmark(): one small real run (detect demo model, batch 2) gives a complete table, JSON, Markdown and plot."""

import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tftrt_yolo.benchmark import BenchmarkTable, Stats, benchmark, time_calls
from tftrt_yolo.demo import demo_data, demo_model
from tftrt_yolo.errors import InputError

BATCH = 2  # the batch conftest's `converted` fixture converts for, so the session's conversions are reused
ROWS = [
    ("TF-TRT FP32", "tensorrt"),
    ("TF-TRT FP16", "tensorrt"),
    ("TF-TRT INT8", "tensorrt"),
    ("TensorFlow SavedModel", "tensorflow"),
    ("TensorFlow + XLA", "xla"),
    ("Ultralytics PyTorch", "pytorch"),
    ("ONNX Runtime (Ultralytics)", "onnxruntime"),
]
STATS = ("mean", "min", "max", "trimmed_mean", "median", "p99")


@pytest.fixture(scope="module")
def run(converted, tmp_path_factory):
    """One tiny benchmark of the detect demo model: 4 val images, 1 warm-up + 3 timed calls, val on 4 images."""
    from tftrt_yolo.environment import check_environment

    out = tmp_path_factory.mktemp("bench")
    data = demo_data("detect", root=out / "data", val_only=True, n_val=4)
    saved = {"tensorflow": converted("detect"), "xla": converted("detect", backend="xla")}
    table = benchmark(demo_model("detect"), batch=BATCH, data=data, warmup=1, iterations=3, val_images=4,
                      saved_models=saved, verbose=False)
    return table, out, check_environment()


@pytest.mark.slow
def test_complete_table(run):
    table, _, env = run
    assert [(r.name, r.backend) for r in table.rows] == ROWS
    assert table.task == "detect" and table.batch == BATCH and table.imgsz == 640 and len(table.images) == BATCH
    for r in table.rows:
        if r.backend == "tensorrt" and not env.tftrt_usable:
            assert r.status == f"unavailable: {env.reason()}"  # the reason from check_environment()
            assert r.end_to_end is None and r.val is None
            continue
        assert r.ok, r.status
        for s in (r.end_to_end, r.network):
            assert s.iterations == 3 and s.batch == BATCH
            values = [getattr(s, k) for k in STATS]
            assert all(math.isfinite(v) and v > 0 for v in values)
            assert s.min <= s.median <= s.max and s.min <= s.trimmed_mean <= s.max and s.min <= s.mean <= s.max
        assert r.val is not None and r.val["images"] == 4
        assert r.val["metrics"]["box"]["mAP50-95"] > 0.5
    ultra = table.row("pytorch").ultralytics_speed
    assert set(ultra) == {"preprocess", "inference", "postprocess"}
    # every runtime scores the same images the same way (same model, same letterbox and NMS)
    maps = [r.val["metrics"]["box"]["mAP50-95"] for r in table.rows if r.ok]
    assert max(maps) - min(maps) <= 0.002


@pytest.mark.slow
def test_json_round_trip(run):
    table, out, _ = run
    path = out / "table.json"
    text = table.to_json(path)
    data = json.loads(path.read_text())
    assert text == path.read_text()
    assert {"model", "task", "batch", "rows", "machine", "goals", "created"} <= set(data)
    assert data["machine"]["cpu_count"] >= 1 and "tensorflow" in data["machine"]["versions"]
    ok = [r for r in data["rows"] if r["status"] == "ok"]
    assert ok and all(r["end_to_end"]["images_per_second"] > 0 for r in ok)
    goals = {(g["row"], g["goal"]) for g in data["goals"]}
    assert ("TensorFlow SavedModel", "throughput >= 2x PyTorch predict") in goals
    again = BenchmarkTable.from_json(path)
    assert again.to_dict() == table.to_dict()


@pytest.mark.slow
def test_markdown(run):
    table, _, env = run
    md = table.to_markdown()
    for name, _ in ROWS:
        assert f"| {name} |" in md
    assert "| Goal |" in md and "PyTorch" in md
    if not env.tftrt_usable:
        assert "unavailable [1]" in md and env.reason() in md  # the long reason once, as a note


@pytest.mark.slow
def test_plot_is_a_png(run):
    table, out, _ = run
    path = table.plot(out / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] >= 600 and image.shape[0] >= 300
    assert image.std() > 10  # bars and text, not a blank canvas


def test_stats_like_the_tftrt_runner():
    seconds = [0.010 * i for i in range(1, 21)]  # 10..200 ms, batch 2 -> 5..100 ms per image
    s = Stats.from_seconds(seconds, batch=2)
    assert s.iterations == 20 and s.batch == 2
    assert s.min == pytest.approx(5.0) and s.max == pytest.approx(100.0)
    assert s.mean == pytest.approx(52.5) and s.median == pytest.approx(52.5)
    assert s.trimmed_mean == pytest.approx(np.mean(np.arange(3, 19) * 5.0))  # 10 % cut at each end
    assert s.p99 == pytest.approx(95.0)  # numpy percentile 99, method "lower"
    assert s.images_per_second == pytest.approx(1000.0 / s.trimmed_mean)


def test_time_calls_skips_warmup():
    calls = []
    s = time_calls(lambda: calls.append(1), warmup=2, iterations=5, batch=1)
    assert len(calls) == 7 and s.iterations == 5
    with pytest.raises(InputError):
        time_calls(lambda: None, warmup=0, iterations=0, batch=1)


def test_benchmark_needs_a_pt(tmp_path):
    with pytest.raises(InputError, match=r"\.pt"):
        benchmark(tmp_path / "model.onnx", verbose=False)
    with pytest.raises(InputError, match="precision"):
        benchmark(demo_model("detect"), precisions=("fp64",), verbose=False)


def _bad_models(tmp_path) -> dict:
    """Real files that are no YOLOv8 checkpoint, each with what its InputError must say."""
    import torch

    from tftrt_yolo._ultralytics import YOLO

    (tmp_path / "folder.pt").mkdir()
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")
    torch.save(YOLO(str(demo_model("detect"))).model.state_dict(), tmp_path / "weights.pt")
    return {
        tmp_path / "nope.pt": "not found",
        tmp_path / "folder.pt": "is a folder",
        tmp_path / "module.pt": "holds a torch.nn.modules.linear.Linear, not an Ultralytics YOLO model",
        tmp_path / "weights.pt": "holds a state_dict",
    }


def test_benchmark_refuses_what_is_no_checkpoint(tmp_path):
    for path, message in _bad_models(tmp_path).items():
        with pytest.raises(InputError, match=message):
            benchmark(path, verbose=False)


def test_cli_benchmark_reports_bad_model(tmp_path):
    for path, message in _bad_models(tmp_path).items():
        proc = subprocess.run(
            [sys.executable, "-m", "tftrt_yolo", "benchmark", f"--model={path}"],
            capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300,
        )
        assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
        assert message in proc.stderr, proc.stderr[-2000:]


def test_device_scripts_time_with_numpy_alone():
    """benchmarks/gpu/timing.py runs where cv2, TensorFlow, torch (and so tftrt_yolo's __init__) are missing."""
    script = (
        "import sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'cv2', 'tensorflow', 'torch', 'ultralytics', 'tftrt_yolo', 'tqdm'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "sys.path.insert(0, 'benchmarks/gpu')\n"
        "import timing\n"
        "s = timing.time_calls(lambda: None, warmup=1, iterations=4, batch=2)\n"
        "print(sorted(timing.stats_dict(s)))\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=repo, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "images_per_second" in proc.stdout and "trimmed_mean" in proc.stdout
