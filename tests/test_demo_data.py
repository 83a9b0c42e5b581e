"""Synthetic demo datasets (tftrt_yolo.data) and the demo registry (tftrt_yolo.demo)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import tftrt_yolo._ultralytics  # noqa: F401 - Ultralytics offline, before the tests import it
from tftrt_yolo import demo
from tftrt_yolo.data import synthetic
from tftrt_yolo.data import (
    FLIP_IDX,
    KPT_NAMES,
    TASKS,
    class_names,
    generate_dataset,
)
from tftrt_yolo.errors import InputError

DET_TASKS = ("detect", "segment", "pose", "obb")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny dataset per task: 6 train, 6 val images."""
    base = tmp_path_factory.mktemp("tiny")
    return {t: (base / t, generate_dataset(t, base / t, n_train=6, n_val=6, seed=3)) for t in TASKS}


def _labels(root: Path, split: str = "val"):
    out = []
    for img in sorted((root / "images" / split).glob("*.jpg")):
        lab = root / "labels" / split / (img.stem + ".txt")
        rows = [list(map(float, ln.split())) for ln in lab.read_text().splitlines() if ln.strip()]
        out.append((img, rows))
    return out


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("task", ["detect", "classify"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, task):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate_dataset(task, tmp_path / name, n_train=3, n_val=2, seed=seed)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert len([k for k in a if k.endswith(".jpg")]) == 5
    differing = [k for k in a if k.endswith(".jpg") and a[k] != c.get(k)]
    assert differing, "another seed must give other images"


def test_val_split_independent_of_train_size_and_workers(tmp_path):
    generate_dataset("segment", tmp_path / "a", n_train=0, n_val=4, seed=1, workers=0)
    generate_dataset("segment", tmp_path / "b", n_train=5, n_val=4, seed=1, workers=2)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    val_a = {k: v for k, v in a.items() if "/val/" in k}
    val_b = {k: v for k, v in b.items() if "/val/" in k}
    assert len(val_a) == 8 and val_a == val_b
    assert not any("/train/" in k for k in a)


# --------------------------------------------------------------------------- label validity


@pytest.mark.parametrize("task", DET_TASKS)
def test_labels_valid(tiny, task):
    root, yaml_path = tiny[task]
    assert yaml_path == root / "data.yaml"
    data = yaml.safe_load(yaml_path.read_text())
    nc = len(class_names(task))
    assert data["nc"] == nc and [data["names"][i] for i in range(nc)] == list(class_names(task))
    assert "path" not in data  # relative to the YAML: the folder can move
    n_obj = 0
    for split in ("train", "val"):
        for img_path, rows in _labels(root, split):
            img = cv2.imread(str(img_path))
            assert img is not None
            h, w = img.shape[:2]
            assert 320 <= h <= 800 and 320 <= w <= 800
            for r in rows:
                n_obj += 1
                assert r[0] == int(r[0]) and 0 <= r[0] < nc
                v = np.array(r[1:])
                coords = np.concatenate([v[:4], v[4:].reshape(-1, 3)[:, :2].ravel()]) if task == "pose" else v
                assert ((coords >= 0) & (coords <= 1)).all()
                if task in ("detect", "pose"):
                    cx, cy, bw, bh = v[:4]
                    assert bw > 0 and bh > 0
                    assert cx - bw / 2 >= -1e-6 and cx + bw / 2 <= 1 + 1e-6
                    assert cy - bh / 2 >= -1e-6 and cy + bh / 2 <= 1 + 1e-6
                    assert bw * w >= 4 and bh * h >= 4
                if task == "detect":
                    assert len(v) == 4
                elif task == "segment":
                    assert len(v) % 2 == 0 and len(v) >= 6
                    poly = v.reshape(-1, 2) * [w, h]
                    assert cv2.contourArea(poly.astype(np.float32)) > 10
                elif task == "pose":
                    assert len(v) == 4 + 3 * len(KPT_NAMES)
                    k = v[4:].reshape(-1, 3)
                    assert set(np.unique(k[:, 2])) <= {0.0, 2.0}
                    assert (k[k[:, 2] == 0, :2] == 0).all()
                    x0, y0 = (cx - bw / 2) * w, (cy - bh / 2) * h
                    x1, y1 = (cx + bw / 2) * w, (cy + bh / 2) * h
                    for x, y, vis in k:
                        if vis:  # a visible keypoint lies on its figure's visible pixels
                            assert x0 - 2 <= x * w <= x1 + 2 and y0 - 2 <= y * h <= y1 + 2
                elif task == "obb":
                    assert len(v) == 8
                    p = v.reshape(4, 2) * [w, h]
                    e = np.roll(p, -1, 0) - p  # 4 edge vectors
                    lens = np.linalg.norm(e, axis=1)
                    assert lens.min() > 5
                    assert np.allclose(lens[0], lens[2], rtol=1e-3, atol=0.05)
                    assert np.allclose(lens[1], lens[3], rtol=1e-3, atol=0.05)
                    for i in range(4):  # right angles
                        cos = abs(e[i] @ e[(i + 1) % 4]) / (lens[i] * lens[(i + 1) % 4])
                        assert cos < 1e-3
                    assert max(lens) / min(lens) >= 2.0  # elongated: the angle means something
    assert n_obj >= 12


def test_pose_yaml_keypoints_consistent(tiny):
    data = yaml.safe_load(tiny["pose"][1].read_text())
    assert data["kpt_shape"] == [len(KPT_NAMES), 3]
    flip = data["flip_idx"]
    assert flip == list(FLIP_IDX)
    assert sorted(flip) == list(range(len(KPT_NAMES)))
    assert all(flip[flip[i]] == i for i in range(len(flip)))  # an involution
    for i, j in enumerate(flip):  # left <-> right names
        assert KPT_NAMES[j] == KPT_NAMES[i].replace("left", "@").replace("right", "left").replace("@", "right")
    assert data["kpt_names"][0] == list(KPT_NAMES)


def test_classify_layout(tiny):
    root, entry = tiny["classify"]
    assert entry == root
    for split in ("train", "val"):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(class_names("classify"))
        n = sum(1 for _ in (root / split).rglob("*.jpg"))
        assert n == 6
    img = cv2.imread(str(next((root / "val").rglob("*.jpg"))))
    assert 112 <= min(img.shape[:2]) and max(img.shape[:2]) <= 280  # default imgsz 224


# --------------------------------------------------------------------------- Ultralytics loads them


@pytest.mark.parametrize("task", DET_TASKS)
def test_ultralytics_loads_dataset(tiny, task):
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    root, yaml_path = tiny[task]
    data = check_det_dataset(str(yaml_path), autodownload=False)
    assert data["nc"] == len(class_names(task))
    if task == "pose":
        assert data["kpt_shape"] == [5, 3]
    cfg = get_cfg(overrides={"task": task, "imgsz": 320})
    ds = build_yolo_dataset(cfg, data["val"], 2, data, mode="val", stride=32)
    rows = sum(len(r) for _, r in _labels(root, "val"))
    assert len(ds) == 6
    assert sum(len(lb["cls"]) for lb in ds.labels) == rows
    item = ds[0]
    assert item["img"].shape[0] == 3
    if task == "segment":
        assert sum(len(lb["segments"]) for lb in ds.labels) == rows
        assert item["masks"].ndim == 3
    if task == "pose":
        assert item["keypoints"].shape[1:] == (5, 3)


def test_ultralytics_loads_classify(tiny):
    from ultralytics.data.utils import check_cls_dataset

    root, _ = tiny["classify"]
    data = check_cls_dataset(str(root))
    assert data["nc"] == 5
    assert sorted(data["names"].values()) == sorted(class_names("classify"))


# --------------------------------------------------------------------------- generation hygiene


def test_existing_root_refused_and_failure_leaves_nothing(tmp_path, monkeypatch):
    generate_dataset("obb", tmp_path / "x", n_train=0, n_val=1)
    with pytest.raises(InputError, match="already exists"):
        generate_dataset("obb", tmp_path / "x", n_train=0, n_val=1)

    calls = []

    def boom(args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(args)

    real = synthetic._write_sample
    monkeypatch.setattr(synthetic, "_write_sample", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset("detect", tmp_path / "y", n_train=2, n_val=2, workers=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_generation_is_fast():
    import time

    t = time.perf_counter()
    for i in range(10):
        synthetic.make_sample("segment", 0, "train", i)
    assert (time.perf_counter() - t) / 10 < 0.25  # ~20 ms on one core


# --------------------------------------------------------------------------- demo registry


def test_demo_data_cached_val_only(tmp_path):
    y = demo.demo_data("pose", root=tmp_path, val_only=True, n_val=3)
    assert y == tmp_path / "pose-seed0-val" / "data.yaml"
    assert len(list((y.parent / "images" / "val").glob("*.jpg"))) == 3
    mtime = y.stat().st_mtime_ns
    assert demo.demo_data("pose", root=tmp_path, val_only=True, n_val=3) == y
    assert y.stat().st_mtime_ns == mtime  # reused, not regenerated
    c = demo.demo_data("classify", root=tmp_path, val_only=True, n_val=5)
    assert c == tmp_path / "classify-seed0-val" and (c / "val").is_dir() and (c / "train").is_dir()
    from ultralytics.data.utils import check_cls_dataset

    assert check_cls_dataset(str(c))["nc"] == 5  # Ultralytics wants train images: one per class is kept
    assert len(list((c / "train").rglob("*.jpg"))) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_demo_data_val_matches_training_data(tmp_path):
    """The val-only copy holds the same images as the full dataset the models train on."""
    full = generate_dataset("detect", tmp_path / "full", n_train=2, n_val=3, seed=0)
    y = demo.demo_data("detect", root=tmp_path / "cache", val_only=True, n_val=3)
    a = {k: v for k, v in _files(full.parent).items() if "/val/" in k}
    b = {k: v for k, v in _files(y.parent).items() if "/val/" in k}
    assert a == b and len(a) == 6


def test_demo_data_uses_full_cache_dir_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TFTRT_YOLO_CACHE", str(tmp_path / "c"))
    assert demo.cache_dir() == tmp_path / "c"
    y = demo.demo_data("obb", val_only=True, n_val=2)
    assert y.is_relative_to(tmp_path / "c")


@pytest.mark.parametrize("bad", ["detection", "", "seg", "DETECT"])
def test_unknown_task(bad, tmp_path):
    for fn in (demo.demo_model, lambda t: demo.demo_data(t, root=tmp_path),
               lambda t: generate_dataset(t, tmp_path / "z")):
        with pytest.raises(InputError) as e:
            fn(bad)
        for t in TASKS:
            assert t in str(e.value)


def test_tasks_exported():
    assert demo.TASKS == ("detect", "segment", "classify", "pose", "obb")


@pytest.mark.parametrize("task", TASKS)
def test_demo_model_loads(task):
    from ultralytics import YOLO

    path = demo.demo_model(task)
    assert path.name == f"yolov8n-{task}-demo.pt" and path.is_file()
    assert path.stat().st_size < 10e6
    assert path.with_suffix(".md").is_file()
    m = YOLO(str(path))
    assert m.task == task
    assert [m.names[i] for i in range(len(m.names))] == list(class_names(task))
    if task == "pose":
        assert list(m.model.kpt_shape) == [5, 3]
