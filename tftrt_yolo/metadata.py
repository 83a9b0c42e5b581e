"""The metadata stored with every converted model, so that `load` needs nothing else.

It lives in `assets.extra/tftrt_yolo.json`: TF-TRT rewrites the SavedModel
proto but the folder's extra assets are ours, and TensorFlow Serving ignores
what it does not know there.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tftrt_yolo.errors import InputError

METADATA_FILE = Path("assets.extra") / "tftrt_yolo.json"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the converted graph and `load` need to know about the source model."""

    task: str
    names: dict[int, str]
    imgsz: int
    stride: int
    kpt_shape: tuple[int, int] | None
    source: str
    source_sha256: str

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["names"] = {str(k): v for k, v in self.names.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelInfo":
        d = dict(d)
        d["names"] = {int(k): v for k, v in d["names"].items()}
        d["kpt_shape"] = tuple(d["kpt_shape"]) if d.get("kpt_shape") else None
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    info: ModelInfo
    batch: int
    dynamic: bool
    backend: str  # tensorflow | xla | tensorrt
    precision: str  # fp32 | fp16 | int8
    versions: dict  # package versions that made the model
    signatures: tuple[str, ...]
    cache_key: dict = dataclasses.field(default_factory=dict)
    report: dict = dataclasses.field(default_factory=dict)
    accuracy: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["info"] = self.info.to_dict()
        d["signatures"] = list(self.signatures)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelMetadata":
        d = dict(d)
        d["info"] = ModelInfo.from_dict(d["info"])
        d["signatures"] = tuple(d["signatures"])
        return cls(**d)


def write_metadata(model_dir: Path, metadata: ModelMetadata) -> None:
    path = Path(model_dir) / METADATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata.to_dict(), indent=2, sort_keys=True))


def read_metadata(model_dir: str | Path) -> ModelMetadata:
    model_dir = Path(model_dir)
    path = model_dir / METADATA_FILE
    if not (model_dir / "saved_model.pb").exists():
        raise InputError(
            f"{model_dir} is not a SavedModel folder (no saved_model.pb): pass the folder that "
            "`tftrt-yolo convert` printed, e.g. saved_models/NAME/1"
        )
    if not path.exists():
        raise InputError(f"{model_dir} has no {METADATA_FILE}: it was not written by tftrt_yolo; convert the model again")
    try:
        return ModelMetadata.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path} is corrupt ({e}); convert the model again") from None
