"""The `tftrt-yolo` command line, run as a user runs it (a child process)."""

import json
import subprocess
import sys

import pytest


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "tftrt_yolo", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.mark.slow
def test_convert_default_model_then_predict(tmp_path, demo_images):
    done = cli("convert", f"--output={tmp_path / 'models'}", "--batch=2")
    assert done.returncode == 0, done.stderr
    model_dir = tmp_path / "models" / "yolov8n-detect-demo" / "1"
    assert f"SavedModel written to {model_dir}" in done.stdout
    assert "detect" in done.stdout  # the model summary
    again = cli("convert", f"--output={tmp_path / 'models'}", "--batch=2")
    assert again.returncode == 0 and f"SavedModel written to {model_dir}" in again.stdout  # unchanged: reused
    fresh = cli("convert", f"--output={tmp_path / 'models'}", "--batch=2", "--recalibrate")
    assert fresh.returncode == 0, fresh.stderr
    assert f"SavedModel written to {model_dir.parent / '2'}" in fresh.stdout  # --recalibrate reaches convert()
    images = demo_images("detect", 3)
    out = tmp_path / "pred"
    done = cli(
        "predict",
        f"--model={model_dir}",
        f"--source={images[0]},{images[1]},{images[2]}",
        f"--save_dir={out}",
        f"--json={out / 'results.json'}",
        "--conf=0.3",
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert [r["path"] for r in results] == [str(p) for p in images]  # input order
    assert all({"box", "conf", "class", "name"} <= set(d) for r in results for d in r["detections"])
    assert all(d["conf"] > 0.3 for r in results for d in r["detections"])
    assert len(list(out.glob("*.jpg"))) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (("predict", "--model=/nonexistent", "--source=x.jpg"), "not a SavedModel folder"),
        (("convert", "--model=/nonexistent.pt"), "model file not found"),
        (("convert", "--precision=fp16"), "backend='tensorrt'"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message, tmp_path):
    done = cli(*args, f"--output={tmp_path}" if args[0] == "convert" else "--conf=0.25")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("*.pb"))


def test_usage_errors():
    done = cli("predict")
    assert done.returncode != 0 and "predict needs --model, --source" in done.stderr
    done = cli("fly")
    assert done.returncode != 0 and "usage: tftrt-yolo" in done.stderr
