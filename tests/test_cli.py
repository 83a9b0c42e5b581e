"""The `tftrt-yolo` command line, run as a user runs it (a child process)."""

import json
import subprocess
import sys

import pytest
from conftest import REAL_PHOTOS

from tftrt_yolo.demo import demo_model


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
    assert "detect, 5 classes, 640x640, static batch 2, tensorflow fp32" in done.stdout
    assert not [line for line in ("Unable to register cu", "I0000 ", "TF-TRT") if line in done.stdout + done.stderr]
    again = cli("convert", f"--output={tmp_path / 'models'}", "--batch=2")
    assert again.returncode == 0 and f"SavedModel reused: {model_dir}" in again.stdout  # unchanged: reused
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
        (("predict", "--model=/nonexistent", f"--source={REAL_PHOTOS[0]}"), "not a SavedModel folder"),
        (("convert", "--model=/nonexistent.pt"), "model file not found"),
        (("convert", "--precision=fp16", "--backend=xla"), "backend='tensorrt'"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message, tmp_path):
    done = cli(*args, f"--output={tmp_path}" if args[0] == "convert" else "--conf=0.25")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("*.pb"))


def test_usage_errors():
    done = cli("predict")
    assert done.returncode == 2 and "predict needs --model, --source" in done.stderr
    done = cli("fly")
    assert done.returncode == 2 and "no command 'fly'" in done.stderr and "tftrt-yolo --help" in done.stderr


@pytest.mark.slow
def test_convert_dry_run_reports_and_writes_nothing(tmp_path):
    """TF-TRT's own segmentation on a machine without TensorRT: one engine holding the whole network."""
    from tftrt_yolo.report import ConversionReport

    out, path = tmp_path / "models", tmp_path / "r.json"
    model = demo_model("detect")
    done = cli("convert", f"--model={model}", "--backend=tensorrt", "--precision=fp16", "--dry_run",
               f"--output={out}", f"--json={path}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "TF-TRT conversion report" in done.stdout and "DRY RUN" in done.stdout
    assert "non-converted OP Report" not in done.stderr and "Could not find any TF GPUs" not in done.stderr
    assert not out.exists()
    data = json.loads(path.read_text())
    report = ConversionReport.from_dict(data)
    assert report.dry_run and report.problems == [], report.format()
    (engine,) = data["engines"]
    assert engine["precision_mode"] == "FP16" and engine["ops"]["Conv2D"] == 64  # every conv of YOLOv8n's network
    assert not engine["allow_build_at_runtime"]  # as save() will mark it
    assert data["stayed"] == []  # no compute op of the network left in TensorFlow


# flags the CLI itself turns into a call's arguments: predict loads --model and passes --source positionally
CLI_HANDLED = {("predict", "model"), ("predict", "source")}


def test_every_flag_reaches_the_library():
    """Each command's flags are its library function's parameters (or the CLI's own), so none is defined and ignored."""
    import inspect

    from tftrt_yolo.flags import CLI_ONLY, COMMANDS

    for name, command in COMMANDS.items():
        parameters = inspect.signature(command.target()).parameters
        for flag in command.flags:
            if flag in CLI_ONLY or (name, flag) in CLI_HANDLED:
                continue
            assert command.parameter(flag) in parameters, f"{name} --{flag} reaches no parameter of {command.function}"
