"""val(): a converted SavedModel scores like the Ultralytics .pt it came from, with Ultralytics' metric code."""

import json
import logging
import os
import subprocess
import sys

import pytest

from tftrt_yolo.data import generate_dataset
from tftrt_yolo.demo import demo_data, demo_model
from tftrt_yolo.errors import InputError
from tftrt_yolo.tasks import TASKS
from tftrt_yolo.validate import accuracy_drop, headline, open_model, ultralytics_val, val

N_VAL = 24  # the first 24 images of each demo val split: same seeds, same images as the shipped split

GROUPS = {"detect": {"box"}, "segment": {"box", "mask"}, "pose": {"box", "pose"}, "obb": {"box"}}


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """small_data(task) -> a dataset with the first N_VAL val images of the task's demo data (generated once)."""
    root = tmp_path_factory.mktemp("val-data")
    cache = {}

    def get(task):
        if task not in cache:
            cache[task] = demo_data(task, root=root, val_only=True, n_val=N_VAL)
        return cache[task]

    return get


@pytest.fixture(scope="module")
def both(converted, small_data):
    """both(task) -> (val of the converted SavedModel, val of the .pt), computed once per task."""
    cache = {}

    def get(task):
        if task not in cache:
            data = small_data(task)
            cache[task] = (val(converted(task), data, verbose=False), val(demo_model(task), data, verbose=False))
        return cache[task]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_saved_model_scores_like_the_pt(both, task):
    saved, pt = both(task)
    assert saved["format"] == "saved_model" and pt["format"] == "pytorch"
    assert saved["images"] == pt["images"] == N_VAL
    assert saved["instances"] == pt["instances"]
    assert saved["settings"]["imgsz"] == pt["settings"]["imgsz"]
    if task == "classify":
        assert saved["metrics"]["top1"] == pt["metrics"]["top1"]
        assert saved["metrics"]["top5"] == pt["metrics"]["top5"]
        return
    for group in GROUPS[task]:
        s, p = saved["metrics"][group], pt["metrics"][group]
        assert abs(s["mAP50-95"] - p["mAP50-95"]) <= 0.002, (group, s, p)
        assert abs(s["mAP50"] - p["mAP50"]) <= 0.002, (group, s, p)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_metric_keys_and_values(both, task):
    saved, _ = both(task)
    assert set(saved) >= {"task", "model", "format", "backend", "data", "images", "instances", "metrics",
                          "speed_ms_per_image", "settings"}
    assert saved["task"] == task and saved["speed_ms_per_image"] > 0
    assert saved["settings"]["conf"] == (0.01 if task == "obb" else 0.001)
    metrics = saved["metrics"]
    if task == "classify":
        assert set(metrics) == {"top1", "top5", "fitness"}
        assert metrics["top1"] >= 0.9 and metrics["top5"] == 1.0  # the demo model's card: top1 1.0
        assert set(headline(saved)) == {"top1", "top5"}
        return
    assert set(metrics) == GROUPS[task] | {"fitness"}
    for group in GROUPS[task]:
        assert set(metrics[group]) == {"precision", "recall", "mAP50", "mAP50-95"}
        assert all(0.0 <= v <= 1.0 for v in metrics[group].values())
        assert metrics[group]["mAP50-95"] >= 0.6, (group, metrics[group])  # the demo cards' bar
    assert len(headline(saved)) == 2
    json.dumps(saved)  # JSON-ready


@pytest.mark.slow
def test_matches_ultralytics_own_val(both, small_data):
    """Same data, Ultralytics' YOLO.val(rect=False, batch=1): the only differences are documented ones."""
    _, pt = both("detect")
    reference = ultralytics_val(demo_model("detect"), small_data("detect"), batch=1, rect=False)
    assert abs(pt["metrics"]["box"]["mAP50-95"] - reference["box"]["mAP50-95"]) <= 0.01
    assert abs(pt["metrics"]["box"]["mAP50"] - reference["box"]["mAP50"]) <= 0.01


@pytest.mark.slow
def test_batch_does_not_change_results(converted, small_data):
    data = small_data("detect")
    one = val(converted("detect"), data, batch=1, verbose=False)
    two = val(converted("detect"), data, batch=2, verbose=False)
    assert one["settings"]["batch"] == 1 and two["settings"]["batch"] == 2
    assert one["metrics"] == two["metrics"]


@pytest.mark.slow
def test_accuracy_drop_of_a_model_against_itself(converted, small_data):
    path = converted("detect")
    result = accuracy_drop(path, path, data=small_data("detect"), max_drop=0.0)
    assert result["metric"] == "box mAP50-95" and result["drop"] == 0.0
    assert result["images"] == N_VAL
    folder = small_data("detect").parent / "images" / "val"
    assert "skipped" in accuracy_drop(path, path, data=folder)
    with pytest.raises(InputError, match="labelled"):
        accuracy_drop(path, path, data=folder, max_drop=0.01)


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_model(tmp_path / "missing.pt")
    with pytest.raises(InputError, match="unsupported model"):
        (tmp_path / "model.txt").write_text("x")
        open_model(tmp_path / "model.txt")
    with pytest.raises(InputError, match="cannot read dataset"):
        val(demo_model("detect"), tmp_path / "missing.yaml", verbose=False)
    with pytest.raises(InputError, match="val/"):
        val(demo_model("classify"), tmp_path, verbose=False)
    with pytest.raises(InputError, match="conf"):
        val(demo_model("detect"), conf=2.0, verbose=False)


@pytest.fixture
def labelled(tmp_path):
    """Three real detect val images with their labels: (data.yaml, image paths, label paths)."""
    data = generate_dataset("detect", tmp_path / "data", n_train=0, n_val=3, seed=5)
    images = sorted((data.parent / "images" / "val").glob("*.jpg"))
    return data, images, [data.parent / "labels" / "val" / f"{p.stem}.txt" for p in images]


def test_empty_val_folder_is_one_input_error(labelled):
    data, images, _ = labelled
    for p in images:
        p.unlink()
    with pytest.raises(InputError, match="no val images in .*images/val"):
        val(demo_model("detect"), data, verbose=False)


def test_all_labels_malformed_is_one_input_error(labelled):
    data, _, labels = labelled
    for p in labels:
        p.write_text("0 0.5 0.5\n")  # 3 columns instead of 5
    with pytest.raises(InputError, match="readable label .*3 malformed"):
        val(demo_model("detect"), data, verbose=False)


def test_a_malformed_label_among_good_ones_is_named(labelled, caplog):
    data, images, labels = labelled
    labels[1].write_text("0 0.5 0.5 0.2 0.2\n7 x y 0.1 0.1\n")
    with caplog.at_level(logging.WARNING, logger="tftrt_yolo"):
        result = val(demo_model("detect"), data, verbose=False)
    assert result["images"] == 2
    named = [r.getMessage() for r in caplog.records if r.name == "tftrt_yolo"]
    assert len(named) == 1 and str(labels[1]) in named[0] and str(images[1]) in named[0]


@pytest.mark.slow
def test_saved_model_arguments(converted):
    path = converted("detect")
    with pytest.raises(InputError, match="batch"):
        val(path, batch=3, verbose=False)  # converted for at most 2
    with pytest.raises(InputError, match="imgsz"):
        open_model(path, imgsz=320)


@pytest.mark.slow
def test_cli_val_writes_json(converted, small_data, tmp_path):
    out = tmp_path / "val.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "tftrt_yolo", "val", f"--model={converted('detect')}",
         f"--data={small_data('detect')}", "--val_images=4", f"--json={out}"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mAP50-95" in proc.stdout
    result = json.loads(out.read_text())
    assert result["images"] == 4 and result["settings"]["conf"] == 0.001 and "box" in result["metrics"]
