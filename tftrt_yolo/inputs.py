"""Turn what a user passes to `predict` into a stream of (name, image): encoded bytes or a BGR array.

JPEG/PNG/BMP/GIF files are sent to the graph as they are (it decodes them);
every other format Ultralytics reads (TIFF, WebP, DNG, MPO, PFM, JPEG 2000) is
decoded here with OpenCV as Ultralytics decodes it, then wrapped as BMP (a
copy, not a codec, and lossless). Arrays, video frames and tf.data pixel
tensors stay arrays, in Ultralytics' convention: uint8 HxWx3 BGR (what cv2
returns); a batch of them of one size goes to the graph as pixels, and
`encoded` wraps one as BMP where bytes are needed.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from tftrt_yolo.errors import InputError

GRAPH_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}  # what tf.io.decode_image reads in the graph
CLIENT_SUFFIXES = {".tif", ".tiff", ".webp", ".dng", ".mpo", ".pfm", ".jp2"}  # Ultralytics' other OpenCV formats
IMAGE_SUFFIXES = GRAPH_SUFFIXES | CLIENT_SUFFIXES
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def encoded(image: bytes | np.ndarray) -> bytes:
    """An item of `iterate` as bytes the graph decodes: encoded bytes as they are, an array as BMP."""
    return encode_bgr(image) if isinstance(image, np.ndarray) else image


def rgb_batch(images: list[bytes | np.ndarray]) -> np.ndarray:
    """Items of `iterate` as one uint8 [N, H, W, 3] RGB batch (what `predict_images` takes): encoded images
    decoded here as the graph decodes them (OpenCV's reader), arrays as they are; all of one size."""
    arrays = [image if isinstance(image, np.ndarray) else cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
              for image in images]
    if any(array is None for array in arrays):
        raise InputError("OpenCV cannot decode an image of the batch (a GIF, or a corrupt file): send it to "
                         "serving_default, which decodes GIFs too")
    if len({array.shape for array in arrays}) > 1:
        raise InputError(f"predict_images takes images of one size per call, got {sorted({a.shape for a in arrays})}: "
                         "send these to serving_default, or one image per call (batch_size=1)")
    return np.stack([cv2.cvtColor(array, cv2.COLOR_BGR2RGB) for array in arrays])


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
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise InputError(f"{text} is a URL: tftrt_yolo reads local files only; download it first")
    if any(ch in text for ch in "*?[") and not Path(text).exists():
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


def _video_frames(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"cannot open video {path}: the file is corrupt or its codec is not supported by OpenCV")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            check_array(frame, f"{path} frame {index}")
            yield f"{path}:{index}", frame
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise InputError(f"video {path} has no readable frames")


def read_image(path: Path) -> bytes:
    """The image file as bytes the graph decodes: as it is, or decoded here as Ultralytics' imread does
    (first page of a TIFF, 16 bits cut to their high byte, alpha dropped) and wrapped as BMP."""
    try:
        if path.suffix.lower() in GRAPH_SUFFIXES:
            return path.read_bytes()
        raw = np.fromfile(path, np.uint8)
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e.strerror}") from None
    image = None
    if raw.size and path.suffix.lower() in (".tif", ".tiff"):
        ok, pages = cv2.imdecodemulti(raw, cv2.IMREAD_UNCHANGED)
        image = pages[0][..., :3] if ok and pages[0].ndim == 3 else None  # grey pages: imdecode below
        if image is not None and image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
    if image is None and raw.size:
        image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if image is None or image.dtype != np.uint8 or image.shape[2:] != (3,):
        raise InputError(f"cannot decode image {path}: the file is corrupt or not an image")
    return encode_bgr(np.ascontiguousarray(image), str(path))


def _file_items(path: Path, on_error) -> Iterator[tuple[str, bytes | np.ndarray]]:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        yield from _video_frames(path)
        return
    try:
        encoded = read_image(path)
    except InputError as e:
        if on_error is None:
            raise
        on_error(e)
        return
    yield str(path), encoded


def _dataset_items(dataset) -> Iterator[tuple[str, bytes | np.ndarray]]:
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
            yield name, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


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


def iterate(source, on_error=None) -> Iterator[tuple[str, bytes | np.ndarray]]:
    """Yield (name, image) for every image in `source`, in order: encoded bytes, or a BGR uint8 array.

    An image file that cannot be decoded here raises its InputError, or is
    passed to `on_error(error)` and skipped.
    """
    if isinstance(source, (bytes, bytearray)):
        yield "bytes", bytes(source)
    elif isinstance(source, np.ndarray):
        frames = source if source.ndim == 4 else [source]
        for i, frame in enumerate(frames):
            check_array(frame, f"image array {i}")
            yield f"array:{i}", frame
    elif isinstance(source, (str, os.PathLike)):
        for path in expand_paths(source):
            yield from _file_items(path, on_error)
    elif isinstance(source, (list, tuple)):
        if not source:
            raise InputError("the list of images is empty")
        for item in source:
            yield from iterate(item, on_error)
    elif type(source).__module__.startswith("tensorflow") and hasattr(source, "element_spec"):
        yield from _dataset_items(source)
    else:
        raise InputError(
            f"unsupported image source of type {type(source).__name__}: pass a path, folder, glob, video, "
            "list of paths, uint8 BGR numpy array(s) or a tf.data.Dataset"
        )


def batches(source, size: int, on_error=None) -> Iterator[list[tuple[str, bytes | np.ndarray]]]:
    """`iterate(source, on_error)` in lists of `size` items (the last may be shorter): one model call each."""
    items = iterate(source, on_error)
    while batch := list(itertools.islice(items, size)):
        yield batch
