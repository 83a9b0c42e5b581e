"""The TF-TRT step: end-to-end SavedModel in, TF-TRT SavedModel with built engines out.

`convert_with_tensorrt()` is a thin call of TensorFlow 2.17's
`TrtGraphConverterV2` (`tf.experimental.tensorrt.Converter`); everything around
it is plain, tested Python: the input generators for `build()` and INT8
calibration, collecting calibration images, and the cache key that says when a
converted model can be reused.

The end-to-end model's `serving_default` signature takes encoded images, so
both generators yield what a serving client sends (`images`: string [N],
`conf`, `iou`, `max_det`): calibration sees exactly the inference
pre-processing, because decoding and letterboxing run in the graph.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from absl import logging

from tftrt_yolo.environment import EnvironmentReport, require_tftrt
from tftrt_yolo.errors import ConversionError, InputError
from tftrt_yolo.source import sha256_file
from tftrt_yolo.tasks import threshold_inputs

PRECISIONS = ("fp32", "fp16", "int8")  # -> trt.TrtPrecisionMode.FP32 / FP16 / INT8
# TF-TRT 2.17's strategies, less the deprecated "ImplicitBatchModeCompatible".
PROFILE_STRATEGIES = ("Range", "Optimal", "Range+Optimal")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")  # what the in-graph tf.io.decode_image reads
MIN_CALIBRATION_IMAGES = 500
SIGNATURE_KEY = "serving_default"  # TF-TRT's save() keeps only the converted signature
CACHE_KEY_VERSION = 1

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")  # JPEG, PNG, BMP

InputFn = Callable[[], Iterator[dict]]


class CalibrationDataWarning(UserWarning):
    """INT8 calibration runs, but on too little data for reliable activation ranges."""


def convert_with_tensorrt(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    precision: str,
    build_input_fn: InputFn,
    calibration_input_fn: InputFn | None = None,
    workspace_gib: float = 4,
    minimum_segment_size: int = 3,
    max_cached_engines: int = 1,
    profile_strategy: str = "Range",
) -> None:
    """Convert the `serving_default` signature of the SavedModel at `input_dir` with TF-TRT.

    Engines are built before saving (`build_input_fn`, see `build_input_fn()`) and written
    to `output_dir/assets`, so serving never builds an engine. INT8 needs
    `calibration_input_fn` (see `calibration_input_fn()`); other precisions must not get one.
    Arguments are checked first, then the machine (`require_tftrt`): nothing is written
    unless both are fine, and a failed conversion leaves no `output_dir` behind.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if profile_strategy not in PROFILE_STRATEGIES:
        raise InputError(f"unknown profile strategy {profile_strategy!r}: use one of {', '.join(PROFILE_STRATEGIES)}")
    if (precision == "int8") != (calibration_input_fn is not None):
        raise InputError("INT8 needs calibration_input_fn; fp32 and fp16 take none")
    if workspace_gib <= 0 or minimum_segment_size < 1 or max_cached_engines < 1:
        raise InputError("workspace_gib must be > 0, minimum_segment_size and max_cached_engines >= 1")
    if not (input_dir / "saved_model.pb").is_file():
        raise InputError(f"{input_dir} is not a SavedModel directory (no saved_model.pb)")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise InputError(f"{output_dir} exists and is not empty: remove it or choose another output directory")
    require_tftrt(precision)

    import tensorflow as tf
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    # Explicit-batch ("dynamic shape") mode for static and dynamic batches alike. TensorRT 8
    # deprecates implicit-batch mode, whose converters reject ops that touch the batch axis;
    # and the end-to-end graph zero-pads a static batch with a data-dependent tf.pad, so even
    # a static network sees a statically unknown batch. The shapes `build()` runs define the
    # profiles: a single [B, ...] profile for a static batch, [1, max_batch] for a dynamic one.
    # In this mode INT8 calibration is deferred to `build()`, after the profiles exist.
    #
    # allow_build_at_runtime=False: TF-TRT builds with it forced on, and `save()` then sets
    # each TRTEngineOp's `_allow_build_at_runtime` attribute to False. A served model then
    # never builds an engine (minutes, GBs of GPU memory, on the first request); an input
    # outside every profile (e.g. N > max_batch) runs the op's native TensorFlow segment.
    step = "set-up"
    try:
        converter = tf.experimental.tensorrt.Converter(
            input_saved_model_dir=str(input_dir),
            input_saved_model_signature_key=SIGNATURE_KEY,
            use_dynamic_shape=True,
            dynamic_shape_profile_strategy=profile_strategy,
            max_workspace_size_bytes=int(workspace_gib * 2**30),
            precision_mode=getattr(trt.TrtPrecisionMode, precision.upper()),
            minimum_segment_size=minimum_segment_size,
            maximum_cached_engines=max_cached_engines,
            use_calibration=precision == "int8",  # YOLOv8 has no QDQ nodes: INT8 ranges come from calibration
            allow_build_at_runtime=False,
        )
        step = "convert"
        converter.convert(calibration_input_fn=calibration_input_fn)
        step = "build (profiles" + (", INT8 calibration" if precision == "int8" else "") + ", engines)"
        converter.build(input_fn=build_input_fn)
        step = "save"
        converter.save(str(output_dir), save_gpu_specific_engines=True)
    except InputError:
        shutil.rmtree(output_dir, ignore_errors=True)
        raise
    except Exception as e:  # noqa: BLE001 - TF-TRT raises RuntimeError, ValueError and tf.errors.*
        shutil.rmtree(output_dir, ignore_errors=True)
        raise ConversionError(
            f"TF-TRT {step} failed at {precision}: {type(e).__name__}: {e}\n"
            "Run again with TF_TRT_SHOW_DETAILED_REPORT=1 for what TF-TRT converted and why."
        ) from e
    logging.info("TF-TRT %s model with built engines saved to %s", precision, output_dir)


def build_input_fn(
    max_batch: int, dynamic: bool, sample_images: Sequence[bytes | os.PathLike | str], conf, iou, max_det
) -> InputFn:
    """A generator function for `Converter.build()` covering every batch the model accepts.

    Static batch B: one batch of exactly B images (the network always runs B; no padding).
    Dynamic batch: one batch of every size 1..max_batch. With the "Range" strategy TF-TRT
    takes the min and max of the shapes it sees (one profile [1, max_batch]; the sizes in
    between cost a few TensorFlow runs, no engine time); with "Optimal" and "Range+Optimal"
    each size seen gets its own profile, so every size must be seen. The samples are cycled
    to fill each batch.
    """
    if max_batch < 1:
        raise InputError(f"max_batch must be >= 1, got {max_batch}")
    if not sample_images:
        raise InputError("build_input_fn needs at least one sample image")
    sizes = range(1, max_batch + 1) if dynamic else (max_batch,)

    def input_fn():
        for n in sizes:
            yield _inputs([sample_images[i % len(sample_images)] for i in range(n)], conf, iou, max_det)

    return input_fn


def calibration_input_fn(
    images: Sequence[bytes | os.PathLike | str], batch: int, *, max_batch: int, conf, iou, max_det
) -> InputFn:
    """A generator function for INT8 calibration: every image once, in order, equal batches.

    Batches hold 2 x `batch` images (the seed's calibration batch), capped at `max_batch`:
    the model accepts at most `max_batch` images per call (static: it pads up to B;
    dynamic: the engine profile ends there). The last batch is filled up by wrapping around
    to the first images, so no image is left out and every batch has the same shape, as
    TF-TRT requires. Paths are read lazily; bytes are used as they are.
    """
    if batch < 1 or max_batch < 1:
        raise InputError(f"batch and max_batch must be >= 1, got {batch} and {max_batch}")
    if not images:
        raise InputError("INT8 calibration needs at least one image")
    size = min(2 * batch, max_batch)
    count = math.ceil(len(images) / size)

    def input_fn():
        for b in range(count):
            yield _inputs([images[(b * size + i) % len(images)] for i in range(size)], conf, iou, max_det)

    return input_fn


def _inputs(items, conf, iou, max_det) -> dict:
    return {"images": np.array([_encoded(x) for x in items], dtype=object)} | threshold_inputs(
        len(items), conf, iou, max_det
    )


def _encoded(item) -> bytes:
    if isinstance(item, bytes):
        data, name = item, f"an image of {len(item)} bytes"
    else:
        try:
            data, name = Path(item).read_bytes(), str(item)
        except OSError as e:
            raise InputError(f"cannot read image {item}: {e}") from e
    if not data.startswith(_MAGIC):
        raise InputError(f"{name} is not a JPEG, PNG or BMP image (the formats the model decodes)")
    return data


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
            root = source / "val" if task == "classify" and (source / "val").is_dir() else source
            found = _folder_images(root)
        else:
            found = _listed_images([source], source.parent)
    else:
        found = _listed_images([Path(p) for p in data], Path.cwd())
    if not found:
        raise InputError(
            f"no calibration images in {data}: the model decodes {', '.join(IMAGE_SUFFIXES)} files; "
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
            raise InputError(f"calibration image {p}: the model decodes {', '.join(IMAGE_SUFFIXES)} files only")
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


def conversion_cache_key(
    model_sha256: str,
    *,
    precision: str,
    max_batch: int,
    dynamic: bool,
    imgsz: int,
    environment: EnvironmentReport,
    calibration_images: Sequence[str | os.PathLike] | None = None,
    calibration_batch: int | None = None,
    workspace_gib: float = 4,
    minimum_segment_size: int = 3,
    max_cached_engines: int = 1,
    profile_strategy: str = "Range",
) -> dict:
    """Everything a TF-TRT conversion's result depends on, as a JSON-ready dict.

    Engines are specific to the GPU and the TensorRT that built them, so both are part of
    the key. The calibration data counts only for INT8: its fingerprint hashes the content
    of each image in calibration order (not names or mtimes, which change on a copy
    without changing the calibration; reordering does change the INT8 batches).
    """
    int8 = precision == "int8"
    if int8 and not calibration_images:
        raise InputError("an INT8 cache key needs the calibration images")
    return {
        "version": CACHE_KEY_VERSION,
        "model_sha256": model_sha256,
        "precision": precision,
        "max_batch": max_batch,
        "dynamic": dynamic,
        "imgsz": imgsz,
        "calibration_data_sha256": _fingerprint(calibration_images) if int8 else None,
        "calibration_images": len(calibration_images) if int8 else None,
        "calibration_batch": calibration_batch if int8 else None,
        "tensorflow": environment.tensorflow_version,
        "tensorrt_linked": _version(environment.linked_tensorrt_version),
        "tensorrt_loaded": _version(environment.loaded_tensorrt_version),
        "gpus": [str(g) for g in environment.gpus],
        "workspace_gib": workspace_gib,
        "minimum_segment_size": minimum_segment_size,
        "max_cached_engines": max_cached_engines,
        "profile_strategy": profile_strategy,
    }


_LABELS = {
    "version": "cache format",
    "model_sha256": "model file",
    "calibration_data_sha256": "calibration images (content)",
    "calibration_images": "number of calibration images",
    "tensorrt_linked": "TensorRT version TensorFlow links",
    "tensorrt_loaded": "loaded TensorRT version",
    "gpus": "GPU",
}


def diff_cache_keys(old: dict, new: dict) -> list[str]:
    """What changed between two cache keys, one human sentence each; empty: reuse the old result."""
    out = []
    for key in list(new) + [k for k in old if k not in new]:
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if a != b:
            short = [v[:12] + "..." if isinstance(v, str) and len(v) == 64 else v for v in (a, b)]
            out.append(f"{_LABELS.get(key, key.replace('_', ' '))} changed: {short[0]} -> {short[1]}")
    return out


def _version(v) -> str | None:
    return ".".join(map(str, v)) if v else None


def _fingerprint(images: Sequence[str | os.PathLike]) -> str:
    digest = hashlib.sha256()
    for p in images:
        digest.update(sha256_file(Path(p)).encode())
    return digest.hexdigest()
