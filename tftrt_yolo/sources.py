"""Turn what a user passes to `predict` into a stream of (name, encoded image bytes).

Files are sent to the graph as they are (JPEG/PNG/BMP/GIF decode in-graph);
arrays and video frames are wrapped as BMP, which costs a copy, not a codec.
Arrays follow Ultralytics' convention: uint8 HxWx3 BGR (what cv2 returns).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from tftrt_yolo.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def encode_bgr(array: np.ndarray, name: str = "array") -> bytes:
    check_array(array, name)
    ok, buffer = cv2.imencode(".bmp", array)
    if not ok:
        raise InputError(f"cannot encode {name} as an image")
    return buffer.tobytes()


def check_array(array: np.ndarray, name: str) -> None:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise InputError(
            f"{name} has dtype {array.dtype} and shape {array.shape}; images must be uint8 arrays of shape "
            "(H, W, 3) in BGR order, as cv2.imread returns (convert with cv2.cvtColor / astype(np.uint8))"
        )


def _files_in(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if not files:
        raise InputError(f"no images or videos in folder {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def expand_paths(source: str | os.PathLike) -> list[Path]:
    """A file, folder (recursive, sorted) or glob pattern -> the files it names."""
    text = str(source)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(f"no files match {text}")
        return files
    path = Path(text)
    if path.is_dir():
        return _files_in(path)
    if not path.exists():
        raise InputError(f"image source not found: {path}")
    if path.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise InputError(
            f"unsupported file type {path.suffix or path.name!r}: pass images "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}) or videos ({', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    return [path]


def _video_frames(path: Path) -> Iterator[tuple[str, bytes]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"cannot open video {path}: the file is corrupt or its codec is not supported by OpenCV")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield f"{path}:{index}", encode_bgr(frame, f"{path} frame {index}")
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise InputError(f"video {path} has no readable frames")


def _file_items(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        yield from _video_frames(path)
    else:
        yield str(path), path.read_bytes()


def _dataset_items(dataset) -> Iterator[tuple[str, bytes]]:
    import tensorflow as tf

    for index, element in enumerate(dataset.unbatch() if _is_batched(dataset) else dataset):
        if isinstance(element, dict):
            element = element.get("images", element.get("image"))
        name = f"dataset:{index}"
        if element.dtype == tf.string:
            yield name, element.numpy()
        else:
            rgb = element.numpy()
            check_array(rgb, name)
            yield name, encode_bgr(rgb[..., ::-1], name)


def _is_batched(dataset) -> bool:
    import tensorflow as tf

    spec = dataset.element_spec
    if isinstance(spec, dict):
        spec = spec.get("images", spec.get("image"))
    if not isinstance(spec, tf.TensorSpec):
        raise InputError("a tf.data.Dataset source must yield image tensors (uint8 HxWx3 RGB) or encoded image strings")
    return (spec.dtype == tf.string and spec.shape.rank == 1) or spec.shape.rank == 4


def count(source) -> int | None:
    """How many images `iterate(source)` yields, when known without reading them."""
    if isinstance(source, np.ndarray):
        return source.shape[0] if source.ndim == 4 else 1
    if isinstance(source, (str, os.PathLike)):
        files = expand_paths(source)
        return None if any(p.suffix.lower() in VIDEO_SUFFIXES for p in files) else len(files)
    if isinstance(source, (list, tuple)):
        counts = [count(s) for s in source]
        return None if None in counts else sum(counts)
    return None


def iterate(source) -> Iterator[tuple[str, bytes]]:
    """Yield (name, encoded bytes) for every image in `source`, in order."""
    if isinstance(source, (bytes, bytearray)):
        yield "bytes", bytes(source)
    elif isinstance(source, np.ndarray):
        frames = source if source.ndim == 4 else [source]
        for i, frame in enumerate(frames):
            yield f"array:{i}", encode_bgr(frame, f"image array {i}")
    elif isinstance(source, (str, os.PathLike)):
        for path in expand_paths(source):
            yield from _file_items(path)
    elif isinstance(source, (list, tuple)):
        if not source:
            raise InputError("the list of images is empty")
        for item in source:
            yield from iterate(item)
    elif type(source).__module__.startswith("tensorflow") and hasattr(source, "element_spec"):
        yield from _dataset_items(source)
    else:
        raise InputError(
            f"unsupported image source of type {type(source).__name__}: pass a path, folder, glob, video, "
            "list of paths, uint8 BGR numpy array(s) or a tf.data.Dataset"
        )
