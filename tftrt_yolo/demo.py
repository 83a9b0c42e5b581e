"""Built-in demo models and data: small YOLOv8n models trained here on synthetic data.

``demo_model(task)`` is the path of the shipped checkpoint for ``task``;
``demo_data(task)`` generates (once, cached) the same seeded synthetic dataset the
model was trained on and returns what Ultralytics' ``data=`` takes: the dataset
YAML, or for classify the dataset folder (``train/`` and ``val/``, one
subfolder per class). See ``tftrt_yolo/weights/*.md`` for how each model was
trained and how well it does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tftrt_yolo.data.synthetic import (
    DEFAULT_N_VAL,
    GENERATOR_VERSION,
    class_names,
    dataset_entry,
    generate_dataset,
    read_meta,
)
from tftrt_yolo.errors import InputError
from tftrt_yolo.tasks import TASKS, check_task, task_spec

__all__ = ["TASKS", "DEMO_SEED", "WEIGHTS_DIR", "cache_dir", "demo_data", "demo_model", "check_task"]

#: Seed of the datasets the shipped demo models were trained and validated on.
DEMO_SEED = 0
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def demo_model(task: str) -> Path:
    """Path of the shipped demo checkpoint for ``task`` (``yolov8n-<task>-demo.pt``)."""
    check_task(task)
    path = WEIGHTS_DIR / f"yolov8n-{task}-demo.pt"
    if not path.is_file():
        raise InputError(
            f"demo model {path} is missing: reinstall tftrt_yolo, or train one with "
            f"'tools/train_demo_models.py --task {task}' from tftrt_yolo's repository"
        )
    return path


def cache_dir() -> Path:
    """Per-user cache for generated datasets: $TFTRT_YOLO_CACHE, else $XDG_CACHE_HOME or ~/.cache, /tftrt_yolo/data."""
    env = os.environ.get("TFTRT_YOLO_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "tftrt_yolo" / "data"


def _matches(meta: dict | None, task: str, seed: int, n_train: int, n_val: int, imgsz: int) -> bool:
    return bool(meta) and meta.get("task") == task and meta.get("seed") == seed and meta.get(
        "n_train"
    ) == n_train and meta.get("n_val") == n_val and meta.get("imgsz") == imgsz and meta.get(
        "generator_version"
    ) == GENERATOR_VERSION


def demo_data(
    task: str,
    root: str | os.PathLike | None = None,
    *,
    val_only: bool = False,
    seed: int = DEMO_SEED,
    n_train: int | None = None,
    n_val: int = DEFAULT_N_VAL,
    workers: int | None = None,
) -> Path:
    """The seeded synthetic dataset of ``task``, generated on first use; returns its ``data=`` entry.

    The dataset lives in ``<root or cache_dir()>/<task>-seed<seed>`` (``...-val`` with ``val_only``,
    which writes the val split alone: same val images, no train images (classify: one per class,
    as Ultralytics requires some), seconds instead of a minute). With the defaults it is the dataset the demo models were trained on. Generation is
    atomic: a temporary folder renamed at the end, so an interrupted run leaves nothing behind.
    Returns the dataset YAML, or for classify the dataset folder.
    """
    spec = task_spec(task)
    base = Path(root).expanduser() if root is not None else cache_dir()
    imgsz = spec.demo_imgsz
    full_n_train = spec.demo_n_train if n_train is None else int(n_train)
    full = base / f"{task}-seed{seed}"
    if _matches(read_meta(full), task, seed, full_n_train, n_val, imgsz):
        return dataset_entry(task, full)
    if val_only:
        # Ultralytics' check_cls_dataset refuses a classification folder without training images:
        # keep the first train image of each class (train indices 0..nc-1 are one per class)
        target, want_train = base / f"{task}-seed{seed}-val", (len(class_names(task)) if spec.class_folders else 0)
    else:
        target, want_train = full, full_n_train
    if _matches(read_meta(target), task, seed, want_train, n_val, imgsz):
        return dataset_entry(task, target)
    if target.exists():  # stale (other parameters or generator version): replace it
        shutil.rmtree(target)
    try:
        return generate_dataset(
            task, target, n_train=want_train, n_val=n_val, seed=seed, imgsz=imgsz, workers=workers
        )
    except (InputError, OSError) as e:
        if _matches(read_meta(target), task, seed, want_train, n_val, imgsz):
            return dataset_entry(task, target)  # another process generated it at the same time
        if isinstance(e, InputError):
            raise
        raise InputError(f"could not write the demo dataset to {target}: {e}; pass root= a writable folder") from e
