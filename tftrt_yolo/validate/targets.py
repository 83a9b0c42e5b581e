"""Ground truth: the val split of a dataset as Targets in original pixels, read by Ultralytics' dataset classes.

Datasets that Ultralytics would stop on with a traceback (no val images, no
readable label) raise one InputError; a label file Ultralytics drops among
good ones is named in a warning of the `tftrt_yolo` logger.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.tasks import task_spec

logger = logging.getLogger("tftrt_yolo")


@dataclasses.dataclass
class Target:
    """Labels of one image in original pixels."""

    file: Path
    shape: tuple[int, int]  # (h, w)
    cls: np.ndarray  # [m] int
    boxes: np.ndarray | None = None  # [m, 4] xyxy
    masks: np.ndarray | None = None  # [m, H, W] bool, overlaps resolved as Ultralytics does (overlap_mask=True)
    keypoints: np.ndarray | None = None  # [m, K, 3]
    rboxes: np.ndarray | None = None  # [m, 5] xywhr


def _cfg(task: str, imgsz: int):
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    return get_cfg(DEFAULT_CFG, dict(task=task, imgsz=imgsz, rect=False, cache=False, fraction=1.0, mode="val"))


def load_targets(task: str, data: str | Path, names: dict, imgsz: int) -> tuple[list[Target], dict]:
    """The val split of `data` as Targets, read with Ultralytics' own dataset classes (val mode).

    Returns the targets and the dataset's info (its YAML as Ultralytics reads it;
    class folders: {"path": the val folder}).
    """
    import tftrt_yolo._ultralytics  # noqa: F401 - its environment before Ultralytics' first import

    if task_spec(task).class_folders:
        return _class_folder_targets(task, data, names, imgsz)
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    info = _checked(lambda: check_det_dataset(str(data), autodownload=False), data, "a YOLO dataset YAML")
    split = info.get("val") or info.get("test")
    if not split:
        raise InputError(f"{data} names no val (or test) split")
    if "keypoints" in task_spec(task).outputs and not info.get("kpt_shape"):
        raise InputError(f"{data} has no kpt_shape: a pose model needs a pose dataset")
    try:
        dataset = build_yolo_dataset(_cfg(task, imgsz), split, 1, info, mode="val", stride=32)
    except Exception as e:  # noqa: BLE001 - Ultralytics raises FileNotFoundError / RuntimeError without labels
        raise InputError(_unusable_split(data, split, e)) from None
    _warn_dropped(dataset, split)
    targets = [_target(task, label) for label in dataset.labels]
    return targets, info


def _class_folder_targets(task: str, data, names: dict, imgsz: int) -> tuple[list[Target], dict]:
    from ultralytics.data.dataset import ClassificationDataset

    # check_cls_dataset would insist on train images (and download what it cannot find): only val is needed
    folder = Path(data)
    root = next((folder / s for s in ("val", "test") if (folder / s).is_dir()), None)
    if root is None:
        raise InputError(f"{data} has no val/ (or test/) folder with one subfolder of images per class")
    dataset = _checked(
        lambda: ClassificationDataset(root=str(root), args=_cfg(task, imgsz), augment=False, prefix="val",
                                      names=names),
        data, "a folder with val/<class>/ images")
    targets = [Target(file=Path(s[0]), shape=(0, 0), cls=np.array([int(s[1])])) for s in dataset.samples]
    return targets, {"path": str(root)}


def _checked(fn, data, what):
    try:
        return fn()
    except InputError:
        raise
    except Exception as e:  # Ultralytics raises FileNotFoundError, SyntaxError, RuntimeError... for bad datasets
        raise InputError(f"cannot read dataset {data} ({type(e).__name__}: {str(e).strip()}); pass {what}") from None


def _unusable_split(data, split, e: Exception) -> str:
    """One message for Ultralytics' errors about a split without images or without one readable label."""
    cause = e.__cause__ or e.__context__
    if isinstance(cause, AssertionError) and "No images found" in str(cause):
        return f"no val images in {split} (the val split of {data}): put the images there, labels in ../labels/"
    if "No valid images found" in str(e):
        problems = [line.strip() for line in str(e).splitlines()[1:] if "ignoring corrupt" in line]
        first = f"; the first: {problems[0]}" if problems else ""
        return (f"no val image of {data} has a readable label ({len(problems) or 'all'} malformed{first}): "
                "each label line is 'class x y w h' normalised to 0-1 (segment: polygon points, pose: keypoints)")
    first_line = (str(e).strip().splitlines() or [""])[0]
    return f"cannot read the val split {split} of {data} ({type(e).__name__}: {first_line})"


def _warn_dropped(dataset, split) -> None:
    """Name every image Ultralytics left out of the split because its image or label is corrupt."""
    kept = set(dataset.im_files)
    dropped = [f for f in dataset.get_img_files(split) if f not in kept]
    if not dropped:
        return
    from ultralytics.data.utils import img2label_paths

    for image, label in zip(dropped, img2label_paths(dropped)):
        logger.warning("skipping %s: its label %s (or the image) is malformed", image, label)


def _target(task: str, label: dict) -> Target:
    from ultralytics.utils import ops

    h, w = (int(v) for v in label["shape"])
    cls = label["cls"].reshape(-1).astype(np.int64)
    scale = np.array([w, h, w, h], np.float32)
    boxes = ops.xywh2xyxy(label["bboxes"].reshape(-1, 4).astype(np.float32)) * scale
    t = Target(file=Path(label["im_file"]), shape=(h, w), cls=cls, boxes=boxes)
    for output in task_spec(task).outputs:
        if output in _LABEL_PARTS:
            _LABEL_PARTS[output](t, label)
    return t


def _masks(t: Target, label: dict) -> None:
    h, w = t.shape
    segments = label.get("segments") or []
    if not len(t.cls):
        t.masks = np.zeros((0, h, w), bool)
        return
    from ultralytics.data.utils import polygons2masks_overlap

    if len(segments) != len(t.cls):
        raise InputError(f"{label['im_file']}: segment labels need one polygon per object")
    polygons = [s * np.array([w, h], np.float32) for s in segments]
    overlap, order = polygons2masks_overlap((h, w), polygons, downsample_ratio=1)
    t.cls, t.boxes = t.cls[order], t.boxes[order]
    t.masks = overlap[None] == np.arange(1, len(t.cls) + 1)[:, None, None]


def _keypoints(t: Target, label: dict) -> None:
    kpts = label.get("keypoints")
    if kpts is None:
        raise InputError(f"{label['im_file']}: pose labels need keypoints")
    h, w = t.shape
    kpts = kpts.astype(np.float32).copy()
    kpts[..., 0] *= w
    kpts[..., 1] *= h
    t.keypoints = kpts


def _rboxes(t: Target, label: dict) -> None:
    if not len(t.cls):
        t.rboxes = np.zeros((0, 5), np.float32)
        return
    from ultralytics.utils import ops

    h, w = t.shape
    corners = np.stack([s.reshape(-1, 2) for s in label.get("segments") or []]).astype(np.float32)
    t.rboxes = ops.xyxyxyxy2xywhr(corners * np.array([w, h], np.float32)).astype(np.float32)


#: What a task's labels add to its boxes, by the signature output they are scored against.
_LABEL_PARTS = {"masks": _masks, "keypoints": _keypoints, "rboxes": _rboxes}
