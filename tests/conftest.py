"""Session fixtures: converted demo models are built once per test session (about 20 s each)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import tftrt_yolo  # noqa: E402
from tftrt_yolo._ultralytics import ultralytics  # noqa: E402

ULTRALYTICS_ASSETS = Path(ultralytics.__file__).parent / "assets"
REAL_PHOTOS = (ULTRALYTICS_ASSETS / "bus.jpg", ULTRALYTICS_ASSETS / "zidane.jpg")


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """convert(task, **kwargs) -> SavedModel folder of the task's demo model, converted once per session."""
    from tftrt_yolo.demo import demo_model

    root = tmp_path_factory.mktemp("converted")
    cache = {}

    def convert_once(task, **kwargs):
        kwargs = {"batch": 2, **kwargs}
        key = (task, tuple(sorted(kwargs.items())))
        if key not in cache:  # one model folder per set of arguments: "detect", "detect-backend_xla", ...
            name = "-".join([task] + [f"{k}_{v}" for k, v in key[1] if (k, v) != ("batch", 2)])
            cache[key] = tftrt_yolo.convert(demo_model(task), output=root, name=name, verbose=False, **kwargs)
        return cache[key]

    return convert_once


@pytest.fixture(scope="session")
def loaded(converted):
    """load(task) -> the loaded default conversion of the task's demo model."""
    cache = {}

    def load_once(task):
        if task not in cache:
            cache[task] = tftrt_yolo.load(converted(task))
        return cache[task]

    return load_once


@pytest.fixture(scope="session")
def demo_images():
    """demo_images(task, n) -> the first n val images of the task's demo dataset (sorted paths)."""
    from tftrt_yolo.demo import demo_data

    def images(task, n=4):
        root = demo_data(task, val_only=True)
        folder = root / "val" if task == "classify" else root.parent / "images" / "val"
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".png"})
        return files[:n]

    return images


@pytest.fixture(scope="session")
def network(tmp_path_factory):
    """network(task, dynamic=False) -> (onnx2tf network SavedModel folder, ModelInfo) of the task's demo model
    at batch 2 (what conversion makes before wrapping it; TF-TRT converts exactly this), made once."""
    from tftrt_yolo.demo import demo_model
    from tftrt_yolo.onnx_to_tf import onnx_to_saved_model
    from tftrt_yolo.onnx_export import export_onnx

    cache = {}

    def make(task, dynamic=False):
        if (task, dynamic) not in cache:
            work = tmp_path_factory.mktemp(f"network-{task}-{'dynamic' if dynamic else 'static'}")
            onnx_path, info = export_onnx(demo_model(task), work, imgsz=None, batch=2, dynamic=dynamic)
            cache[task, dynamic] = onnx_to_saved_model(onnx_path, work / "network", work), info
        return cache[task, dynamic]

    return make
