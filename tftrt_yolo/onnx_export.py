"""Read a YOLOv8 model (.pt, .yaml or Ultralytics .onnx) and export it to ONNX.

The ONNX export always has a fixed image size (onnx2tf cannot convert a fully
dynamic graph); a dynamic batch is kept dynamic.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
from pathlib import Path

from tftrt_yolo.errors import ConversionError, InputError
from tftrt_yolo.files import sha256_file
from tftrt_yolo.metadata import ModelInfo
from tftrt_yolo.tasks import TASKS, task_spec

ONNX_OPSET = 17  # what onnx2tf 1.28 converts without surprises
DEFAULT_IMGSZ = 640


MODEL_SUFFIXES = (".pt", ".pth", ".yaml", ".yml", ".onnx")


def resolve_model_path(model: str | Path) -> Path:
    """The model file, checked as far as it can be without torch or TensorFlow; a bare architecture name
    such as `yolov8n-seg.yaml` resolves to Ultralytics' own yaml."""
    path = Path(model)
    if path.is_dir():
        hint = "; it is a SavedModel already: predict or val it" if (path / "saved_model.pb").exists() else ""
        raise InputError(f"{model} is a folder: pass a model file (a YOLOv8 .pt, model .yaml or Ultralytics .onnx)"
                         f"{hint}")  # fmt: skip
    if path.is_file():
        _check_model_file(path)
        return path
    if path.suffix.lower() in (".yaml", ".yml") and path.name == str(model):
        if _shipped_yaml(path.name).is_file():
            return path  # Ultralytics reads the scale from the name
    raise InputError(f"model file not found: {model} (pass a YOLOv8 .pt, model .yaml or Ultralytics .onnx)")


def _unsupported(path: Path) -> InputError:
    return InputError(
        f"unsupported model file {path.name}: expected a .pt checkpoint, a model .yaml or an .onnx export"
    )


def _check_model_file(path: Path) -> None:
    """Reject what is plainly not a model in milliseconds (torch and onnx take seconds to say so)."""
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise _unsupported(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise InputError(f"{path} is empty")
    if path.suffix.lower() in (".pt", ".pth") and head != b"PK\x03\x04" and head[:1] != b"\x80":
        raise InputError(
            f"cannot read {path} as an Ultralytics YOLO checkpoint: it is neither a zip archive nor a pickle, "
            "as torch.save writes; pass a .pt saved by Ultralytics (model.save or training's best.pt)"
        )


def _shipped_yaml(name: str) -> Path:
    from tftrt_yolo._ultralytics import ultralytics

    scale_free = re.sub(r"^(yolov8)[nslmx]", r"\1", name)  # yolov8n-seg.yaml -> yolov8-seg.yaml
    return Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / scale_free


def source_checksum(path: Path) -> str:
    """sha256 of the model file (of the shipped yaml plus the name, for a bare architecture name)."""
    if path.is_file():
        return sha256_file(path)
    return hashlib.sha256(path.name.encode() + _shipped_yaml(path.name).read_bytes()).hexdigest()


def export_onnx(
    model: str | Path, workdir: Path, *, imgsz: int | None, batch: int, dynamic: bool
) -> tuple[Path, ModelInfo]:
    """Write `workdir/prepared.onnx` for `model` and return it with the model's info.

    `imgsz=None` takes the size the model was trained at (what Ultralytics
    predict uses), else 640.
    """
    path = Path(model)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return _export_ultralytics(_load_checkpoint(path, workdir), path, workdir, imgsz, batch, dynamic)
    if suffix in (".yaml", ".yml"):
        return _export_ultralytics(_build_from_yaml(path), path, workdir, imgsz, batch, dynamic)
    if suffix == ".onnx":
        return _prepare_onnx(path, workdir, imgsz, batch, dynamic)
    raise _unsupported(path)


def _load_checkpoint(path: Path, workdir: Path):
    from tftrt_yolo._ultralytics import YOLO
    from ultralytics.nn.tasks import BaseModel

    local = workdir / "model.pt"  # Ultralytics exports next to the checkpoint: keep that inside workdir
    shutil.copyfile(path, local)
    advice = "pass a .pt saved by Ultralytics (model.save or training's best.pt)"
    try:
        yolo = YOLO(str(local))
    except Exception as e:  # torch.load raises many types for truncated or foreign files
        if _is_state_dict(local):
            raise InputError(
                f"cannot read {path} as an Ultralytics YOLO checkpoint: it holds only weights (a state_dict), "
                f"not the model; {advice}, or load the weights into the model of its .yaml and save that"
            ) from None
        reason = str(e).split("\n")[0].replace(str(local), path.name)
        raise InputError(
            f"cannot read {path} as an Ultralytics YOLO checkpoint ({type(e).__name__}: {reason}); {advice}"
        ) from None
    if not isinstance(yolo.model, BaseModel):
        raise InputError(f"{path} holds a {type(yolo.model).__name__}, not an Ultralytics YOLO model: {advice}")
    return yolo


def _is_state_dict(path: Path) -> bool:
    """Whether `path` is a dict of tensors only (torch's weights-only loader reads nothing else)."""
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a weights-only file
        return False
    return isinstance(content, dict) and bool(content) and all(isinstance(v, torch.Tensor) for v in content.values())


def _build_from_yaml(path: Path):
    import torch

    from tftrt_yolo._ultralytics import YOLO

    torch.manual_seed(0)  # random init, but the same one every time
    try:
        return YOLO(str(path))
    except Exception as e:
        raise InputError(f"cannot build a YOLO model from {path} ({type(e).__name__}: {e})") from None


def _export_ultralytics(yolo, path: Path, workdir: Path, imgsz: int | None, batch: int, dynamic: bool):
    if imgsz is None:
        trained = yolo.overrides.get("imgsz", DEFAULT_IMGSZ)
        imgsz = int(trained if isinstance(trained, int) else max(trained))
    task = getattr(yolo, "task", None)
    if task not in TASKS:
        raise InputError(f"unsupported task {task!r} in {path}: tftrt_yolo converts YOLOv8 {', '.join(TASKS)} models")
    net = yolo.model
    if getattr(net, "end2end", False) or getattr(getattr(net, "model", [None])[-1], "end2end", False):
        raise InputError(
            f"{path} has an NMS-free (end-to-end) head (YOLOv10/YOLO26 style); tftrt_yolo converts YOLOv8-style heads"
        )
    net.pt_path = str(workdir / "model.pt")  # where the exporter writes model.onnx
    try:
        onnx_file = yolo.export(
            format="onnx", imgsz=imgsz, batch=batch, dynamic=dynamic, simplify=True, opset=ONNX_OPSET, verbose=False
        )
    except Exception as e:
        raise ConversionError(f"ONNX export of {path} failed: {type(e).__name__}: {e}") from e
    onnx_path = Path(onnx_file)
    if onnx_path != workdir / "model.onnx":
        shutil.move(onnx_path, workdir / "model.onnx")
    return _prepare_onnx(workdir / "model.onnx", workdir, imgsz, batch, dynamic, source=path)


def read_onnx(path: Path):
    """The ModelProto at `path`; InputError when it is not ONNX."""
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf and onnx raise many types for foreign files
        raise InputError(f"cannot read {path} as ONNX ({type(e).__name__}: {e})") from None


def ultralytics_metadata(proto, path: Path) -> dict:
    """The metadata Ultralytics writes into an ONNX export, with task, names {int: str}, kpt_shape (tuple or
    None) and imgsz ([h, w]) parsed; InputError when it is missing (not an Ultralytics export)."""
    meta = {p.key: p.value for p in proto.metadata_props}
    if "task" not in meta or "names" not in meta:
        raise InputError(f"{path} has no Ultralytics metadata (task, names): export it with `yolo export format=onnx`")
    meta["names"] = {int(k): str(v) for k, v in ast.literal_eval(meta["names"]).items()}
    kpt_shape = ast.literal_eval(meta["kpt_shape"]) if "kpt_shape" in meta else None
    meta["kpt_shape"] = tuple(kpt_shape) if kpt_shape else None
    meta["imgsz"] = ast.literal_eval(meta.get("imgsz", f"[{DEFAULT_IMGSZ}, {DEFAULT_IMGSZ}]"))
    return meta


def _prepare_onnx(
    path: Path, workdir: Path, imgsz: int | None, batch: int, dynamic: bool, source: Path | None = None
):
    """Fix H and W (and a static batch), fold shapes, and read Ultralytics' metadata."""
    import onnx
    import onnxslim

    proto = read_onnx(path)
    meta = ultralytics_metadata(proto, path)
    task = meta["task"]
    if task not in TASKS:
        raise InputError(f"unsupported task {task!r} in {path}: tftrt_yolo converts {', '.join(TASKS)} models")
    if meta.get("end2end", "False") == "True" or ast.literal_eval(meta.get("args", "{}")).get("nms"):
        raise InputError(f"{path} was exported with NMS inside; export it without `nms=True` so tftrt_yolo adds its own")
    exported_imgsz = meta["imgsz"]
    if len(set(exported_imgsz)) != 1:
        raise InputError(f"{path} has a non-square input {exported_imgsz}; export it with a square imgsz")
    imgsz = imgsz or exported_imgsz[0]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise InputError(f"{path} input has rank {len(dims)}; a YOLO image model takes NCHW images")
    if source is None:  # a user's ONNX: its own fixed sizes win over the arguments
        if dims[2].dim_value:
            imgsz = dims[2].dim_value
        if dims[0].dim_value:
            batch, dynamic = dims[0].dim_value, False
    dims[2].dim_value, dims[3].dim_value = imgsz, imgsz
    if not dynamic:
        dims[0].dim_value = batch
    proto = onnxslim.slim(proto)  # folds the anchor grid now that H and W are known
    _check_head(proto, task, len(meta["names"]), meta["kpt_shape"], path)
    onnx.save(proto, str(workdir / "prepared.onnx"))
    src = Path(source or path)
    info = ModelInfo(
        task=task,
        names=meta["names"],
        imgsz=int(imgsz),
        stride=int(meta.get("stride", 32)),
        kpt_shape=meta["kpt_shape"],
        source=str(src.resolve()) if src.is_file() else src.name,
        source_sha256=source_checksum(src),
    )
    return workdir / "prepared.onnx", info


def _check_head(proto, task: str, nc: int, kpt_shape, path: Path) -> None:
    """Outputs that are not a YOLOv8 head of `task` fail here, with a reason, not later inside TensorFlow."""
    shapes = [tuple(d.dim_value or None for d in o.type.tensor_type.shape.dim) for o in proto.graph.output]
    spec = task_spec(task)
    if not spec.has_detections:
        expected = [f"(batch, {nc})"]
        ok = len(shapes) == 1 and len(shapes[0]) == 2 and shapes[0][1] == nc
    else:
        protos = "masks" in spec.outputs  # a second output: the mask prototypes
        masks = (shapes[1][1] or 0) if protos and len(shapes) == 2 and len(shapes[1]) == 4 else 0
        # what each anchor carries for an output beyond its 4 box values and nc class scores
        per_anchor = {"masks": masks, "keypoints": kpt_shape[0] * kpt_shape[1] if kpt_shape else 0, "rboxes": 1}
        extra = sum(per_anchor.get(output, 0) for output in spec.outputs)
        expected = [f"(batch, 4 + {nc} classes{f' + {extra}' if extra else ''}, anchors)"]
        if protos:
            expected.append("(batch, mask channels, height, width)")
        ok = len(shapes) == len(expected) and len(shapes[0]) == 3 and shapes[0][1] == 4 + nc + extra
        ok = ok and (not protos or bool(masks))
    if not ok:
        raise ConversionError(
            f"{path} is not a YOLOv8 {task} model: its outputs have shapes {shapes} (None: any), a YOLOv8 {task} "
            f"head with {nc} classes gives {', '.join(expected)}; export the model with Ultralytics (format=onnx)"
        )
