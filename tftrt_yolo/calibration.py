"""The images INT8 calibration runs on, found from what a user passes as `data`.

TensorRT's entropy calibrator sets every activation range from these images, so
they should be the deployment's own (a dataset's val split, 500+ images); the
model's own pre-processing turns them into network batches (`tensorrt.calibration_input_fn`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from tftrt_yolo.errors import InputError
from tftrt_yolo.inputs import IMAGE_SUFFIXES  # every format Ultralytics reads
from tftrt_yolo.tasks import task_spec

MIN_CALIBRATION_IMAGES = 500


class CalibrationDataWarning(UserWarning):
    """INT8 calibration runs, but on too little data for reliable activation ranges."""


def collect_calibration_images(data: str | os.PathLike | Sequence[str | os.PathLike], task: str = "detect") -> list[Path]:
    """The INT8 calibration images named by `data`, sorted.

    `data` is a dataset YAML (its `val` split: a folder, an image, a .txt list of images,
    or a list of those; `path:` resolved against the YAML's folder, then the working
    directory; no `path:` means the YAML's folder), an image folder (searched recursively;
    for `task="classify"` a dataset root's `val/` folder), or a list of image files.
    `None` raises InputError: picking default (demo) data is the caller's business. Warns with
    CalibrationDataWarning below MIN_CALIBRATION_IMAGES images.
    """
    if data is None:
        raise InputError("no calibration data given: pass a dataset YAML, an image folder or a list of images")
    if isinstance(data, (str, os.PathLike)):
        source = Path(data)
        if not source.exists():
            raise InputError(f"calibration data {source} does not exist: pass a dataset YAML, an image folder or images")
        if source.suffix.lower() in (".yaml", ".yml"):
            found = _yaml_images(source)
        elif source.is_dir():
            root = source / "val" if task_spec(task).class_folders and (source / "val").is_dir() else source
            found = _folder_images(root)
        else:
            found = _listed_images([source], source.parent)
    else:
        found = _listed_images([Path(p) for p in data], Path.cwd())
    if not found:
        raise InputError(
            f"no calibration images in {data}: calibration reads {', '.join(sorted(IMAGE_SUFFIXES))} files; "
            "pass a dataset YAML, an image folder or a list of images"
        )
    found = sorted({p.resolve() for p in found})
    if len(found) < MIN_CALIBRATION_IMAGES:
        warnings.warn(
            f"INT8 calibration on {len(found)} images; {MIN_CALIBRATION_IMAGES}+ representative images give "
            "more reliable activation ranges (e.g. a dataset's val split)",
            CalibrationDataWarning,
            stacklevel=2,
        )
    return found


def _folder_images(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def _listed_images(paths: list[Path], base: Path) -> list[Path]:
    out = []
    for p in paths:
        p = p if p.is_absolute() else base / p
        if p.is_dir():
            out += _folder_images(p)
        elif p.suffix.lower() == ".txt" and p.is_file():  # Ultralytics image list, one path a line
            lines = [x.strip() for x in p.read_text().splitlines() if x.strip()]
            out += _listed_images([Path(x) for x in lines], p.parent)
        elif not p.is_file():
            raise InputError(f"calibration image {p} does not exist")
        elif p.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"calibration image {p}: calibration reads {', '.join(sorted(IMAGE_SUFFIXES))} files only")
        else:
            out.append(p)
    return out


def _yaml_images(yaml_path: Path) -> list[Path]:
    import yaml

    try:
        spec = yaml.safe_load(yaml_path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"cannot read dataset YAML {yaml_path}: {e}") from e
    if not isinstance(spec, dict) or not spec.get("val"):
        raise InputError(f"{yaml_path} has no `val:` split to calibrate on")
    root = Path(spec.get("path") or ".")
    if not root.is_absolute():  # next to the YAML first, else relative to the working directory
        root = root.resolve() if root.exists() and not (yaml_path.parent / root).exists() else yaml_path.parent / root
    vals = spec["val"] if isinstance(spec["val"], list) else [spec["val"]]
    paths = []
    for v in map(str, vals):
        p = root / v
        if not p.exists() and v.startswith("../"):  # Ultralytics' fallback for older YAMLs
            p = root / v[3:]
        if not p.exists():
            raise InputError(f"val split {p} named by {yaml_path} does not exist (datasets are not downloaded)")
        paths.append(p)
    return _listed_images(paths, root)
