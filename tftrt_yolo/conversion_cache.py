"""When a conversion can be reused: the key of everything its result depends on, and what changed."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from tftrt_yolo.environment import EnvironmentReport
from tftrt_yolo.errors import InputError
from tftrt_yolo.files import sha256_file, version_dirs

CACHE_KEY_VERSION = 2
logger = logging.getLogger("tftrt_yolo")


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


def find_cached(model_root: Path, key: dict) -> Path | None:
    """The newest version in `model_root` made from exactly `key`; logs what changed otherwise."""
    from tftrt_yolo.metadata import read_metadata

    versions = version_dirs(model_root)[::-1]  # newest first
    for path in versions:
        try:
            old = read_metadata(path).cache_key
        except InputError:
            continue
        changes = diff_cache_keys(old, key)
        if not changes:
            return path
        if path == versions[0]:
            logger.info("converting again, %s differs from this conversion: %s", path, "; ".join(changes))
    return None
