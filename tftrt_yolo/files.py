"""Where tftrt_yolo writes: staging folders, atomic publishing, version folders.

Every model is written into a hidden staging folder beside its destination and
renamed into place (one rename: atomic on one filesystem), so a reader such as
TensorFlow Serving never sees half a model. A staging folder is owned through a
lock file next to it (`.tmp-ID.lock`, flock-ed for the owner's lifetime); the
kernel drops the lock when the owner dies, even by kill -9, so the next run can
tell an abandoned folder from one a running conversion still writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from tftrt_yolo.errors import InputError

STAGING_PREFIX = ".tmp-"
WORK_PREFIX = "tftrt_yolo-work-"  # in the system temp dir; other tftrt_yolo- folders there are not ours


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e}") from e
    return digest.hexdigest()


def read_saved_model(model_dir: str | os.PathLike):
    """The SavedModel proto of `model_dir/saved_model.pb`, read without loading a graph."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(model_dir) / "saved_model.pb"
    try:
        return saved_model_pb2.SavedModel.FromString(path.read_bytes())
    except (OSError, DecodeError) as e:
        raise InputError(f"{model_dir} is not a SavedModel directory: cannot read {path.name} ({e})") from None


def version_dirs(model_root: Path) -> list[Path]:
    """The numbered version folders of `model_root` (TensorFlow Serving's layout), oldest first."""
    found = [p for p in Path(model_root).glob("*") if p.is_dir() and p.name.isdigit()]
    return sorted(found, key=lambda p: int(p.name))


def next_version(model_root: Path) -> int:
    versions = version_dirs(model_root)
    return int(versions[-1].name) + 1 if versions else 1


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """`path` as a folder that can be created or written; InputError (before any work) otherwise."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())  # "." or "/" at the latest
    if not existing.is_dir():
        raise InputError(f"{what} {path}: {existing} is a file, not a folder; pass a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: {existing} is not writable; pass a folder you can write to")
    return path


def check_writable_file(path: str | os.PathLike, what: str) -> Path:
    """`path` as a file that can be (over)written; InputError (before any work) otherwise."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; pass a file path")
    check_writable_dir(path.parent, what)
    return path


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in the way, read-only filesystem, no permission
        raise InputError(f"cannot create folder {path}: {e.strerror}") from None


def _try_lock(lock_path: Path):
    """The open, exclusively flock-ed lock file, or None when another process holds it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale_staging(parent: Path, prefix: str = STAGING_PREFIX) -> list[Path]:
    """Remove the staging folders in `parent` that no living process owns; return them.

    A folder is abandoned when its lock file is missing (the owner creates and
    locks it before the folder) or when its lock can be taken.
    """
    removed = []
    for folder in Path(parent).glob(f"{prefix}*"):
        if not folder.is_dir():
            continue
        lock_path = folder.with_name(folder.name + ".lock")
        try:
            fd = _try_lock(lock_path)
        except OSError:  # someone else's lock file we may not open: not ours to judge
            continue
        if fd is None:
            continue  # a running conversion owns it
        try:
            shutil.rmtree(folder, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)
        removed.append(folder)
    return removed


@contextlib.contextmanager
def staging_dir(parent: Path, prefix: str = STAGING_PREFIX):
    """A hidden folder under `parent` owned by this process, removed unless its content was moved away.

    Abandoned staging folders of killed runs in `parent` are removed first.
    """
    parent = Path(parent)
    _mkdir(parent)
    remove_stale_staging(parent, prefix)
    path = parent / f"{prefix}{uuid.uuid4().hex[:12]}"
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = _try_lock(lock_path)  # locked before the folder exists: see remove_stale_staging
    except OSError as e:
        raise InputError(f"cannot write to {parent}: {e.strerror}") from None
    try:
        path.mkdir()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        lock_path.unlink(missing_ok=True)
        os.close(fd)


def work_dir():
    """A private working folder in the system temp dir (staging_dir there: cleaned up the same way)."""
    return staging_dir(Path(tempfile.gettempdir()), prefix=WORK_PREFIX)


def publish(stage: Path, model_root: Path, version: int | None) -> Path:
    """Move a finished model from its staging folder to `model_root/version` (rename: atomic)."""
    _mkdir(model_root)
    destination = model_root / str(version or next_version(model_root))
    if destination.exists():
        raise InputError(f"{destination} already exists: pass another version or remove it")
    stage.rename(destination)
    return destination
