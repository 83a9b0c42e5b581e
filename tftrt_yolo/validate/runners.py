"""Runners: one interface (`predict(files, conf=, iou=, max_det=)` -> Results) over every kind of model.

val() and benchmark() run a tftrt_yolo SavedModel and the Ultralytics model it
came from through these, so both are predicted and scored the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.results import Result, from_outputs

ULTRALYTICS_SUFFIXES = (".pt", ".pth", ".onnx")


class SavedModelRunner:
    """A tftrt_yolo SavedModel: encoded image bytes in, `Result`s out (those of its `predict`)."""

    kind = "saved_model"

    def __init__(self, path: str | Path):
        from tftrt_yolo.model import load

        self.model = load(path)
        self.path = Path(path)
        m = self.model.metadata
        self.task, self.names, self.imgsz = m.info.task, m.info.names, m.info.imgsz
        self.kpt_shape = m.info.kpt_shape
        self.max_batch, self.static_batch = m.batch, not m.dynamic
        self.backend = m.backend if m.backend != "tensorrt" else f"tensorrt-{m.precision}"

    def predict(self, files: list[Path], *, conf: float, iou: float, max_det: int) -> list[Result]:
        items = [(str(f), Path(f).read_bytes()) for f in files]
        outputs = self.model.predict_encoded([b for _, b in items], conf=conf, iou=iou, max_det=max_det)
        return from_outputs(outputs, self.task, self.names, items)


class UltralyticsRunner:
    """An Ultralytics `.pt` (PyTorch) or `.onnx` (ONNX Runtime) model through `YOLO(model).predict`.

    Predict runs with `rect=False`, so images are letterboxed to the same
    square `imgsz` input as the SavedModel gets (Ultralytics' predict default,
    `rect=True`, pads a PyTorch model's input only to a multiple of 32).
    """

    def __init__(self, path: str | Path, imgsz: int | None = None):
        from tftrt_yolo._ultralytics import YOLO

        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder, not a model file: pass a YOLOv8 .pt or an Ultralytics .onnx")
        if not self.path.is_file():
            raise InputError(f"model file not found: {self.path}")
        self.kind = "onnx" if self.path.suffix.lower() == ".onnx" else "pytorch"
        self.backend = "onnxruntime" if self.kind == "onnx" else "pytorch"
        if self.kind == "onnx":
            from tftrt_yolo.onnx_export import read_onnx, ultralytics_metadata

            proto = read_onnx(self.path)
            meta = ultralytics_metadata(proto, self.path)
            dims = proto.graph.input[0].type.tensor_type.shape.dim  # 0: dynamic
            batch, size = (dims[0].dim_value, dims[2].dim_value) if len(dims) == 4 else (0, 0)
        try:
            self.yolo = YOLO(str(self.path), task=meta["task"] if self.kind == "onnx" else None)
        except Exception as e:  # torch.load / onnx raise many types for foreign files
            raise InputError(_checkpoint_problem(self.path) or f"cannot read {self.path} as an Ultralytics YOLO "
                             f"model ({type(e).__name__}: {e})") from None
        if self.kind == "pytorch":
            from ultralytics.nn.tasks import BaseModel

            if not isinstance(self.yolo.model, BaseModel):  # Ultralytics loads any module saved under "model"
                raise InputError(_checkpoint_problem(self.path) or f"{self.path} holds no Ultralytics YOLO model")
        self.task = self.yolo.task
        if self.kind == "pytorch":
            trained = (getattr(self.yolo, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
            self.names = dict(self.yolo.names)
            self.kpt_shape = tuple(getattr(self.yolo.model, "kpt_shape", None) or ()) or None
            self.max_batch, self.static_batch = None, False
        else:
            if size and imgsz and imgsz != size:
                raise InputError(f"{self.path} takes {size}x{size} images, not imgsz={imgsz}")
            trained = size or meta["imgsz"][0]
            self.names, self.kpt_shape = meta["names"], meta["kpt_shape"]
            self.max_batch, self.static_batch = batch or None, bool(batch)
        self.imgsz = int(imgsz or (trained if isinstance(trained, int) else 640))

    def predict_args(self, conf: float, iou: float, max_det: int, batch: int) -> dict:
        return dict(
            imgsz=self.imgsz, conf=conf, iou=iou, max_det=max_det, batch=batch,
            rect=False, retina_masks=False, verbose=False, save=False,
        )

    def predict(self, files: list[Path], *, conf: float, iou: float, max_det: int) -> list[Result]:
        sources = [str(f) for f in files]
        pad = self.max_batch - len(sources) if self.static_batch else 0
        results = self.yolo.predict(sources + sources[-1:] * pad, **self.predict_args(conf, iou, max_det, len(sources) + pad))
        return [self.convert(r) for r in results[: len(sources)]]

    def convert(self, r) -> Result:
        """An Ultralytics `Results` -> a tftrt_yolo Result in original pixels."""
        out = Result(task=self.task, names=self.names, orig_shape=tuple(r.orig_shape), path=r.path)
        if r.probs is not None:
            out.probs = r.probs.data.float().cpu().numpy()
            out.top5, out.top5_scores = np.array(r.probs.top5), r.probs.top5conf.float().cpu().numpy()
            return out
        b = r.boxes if r.obb is None else r.obb
        out.boxes, out.scores, out.classes = b.xyxy.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy().astype(np.int64)
        if r.obb is not None:
            out.rboxes = b.xywhr.cpu().numpy()
        if r.keypoints is not None:
            out.keypoints = r.keypoints.data.cpu().numpy()
        if r.masks is not None:
            out.masks = _masks_to_original(r)
        return out


def _checkpoint_problem(path: Path) -> str | None:
    """What a .pt holds when it is not an Ultralytics checkpoint (a state_dict, another model), else None."""
    import torch

    if path.suffix.lower() not in (".pt", ".pth"):
        return None
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - not a PyTorch file at all
        return f"{path} is not a PyTorch checkpoint ({type(e).__name__}: {e}): pass a YOLOv8 .pt"
    fix = "pass the checkpoint Ultralytics saves (runs/<task>/<name>/weights/best.pt, or YOLO(...).save(path))"
    if isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return f"{path} holds a state_dict (weights without the model): {fix}"
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt
    what = f"a {type(model).__module__}.{type(model).__name__}" if model is not None else "no 'model' entry"
    from ultralytics.nn.tasks import BaseModel

    if not isinstance(model, BaseModel):
        return f"{path} holds {what}, not an Ultralytics YOLO model: {fix}"
    return None


def _masks_to_original(r) -> np.ndarray:
    """Ultralytics' letterbox-sized masks (retina_masks=False) -> bool [n, H, W] at the image's size."""
    from ultralytics.utils import ops

    h, w = r.orig_shape
    if r.masks is None:
        return np.zeros((0, h, w), bool)
    masks = r.masks.data.float()
    return (ops.scale_masks(masks[None], (h, w))[0] > 0.5).cpu().numpy()


def open_model(model: str | Path, imgsz: int | None = None):
    """A runner for a tftrt_yolo SavedModel folder, or an Ultralytics .pt / .onnx file."""
    path = Path(model)
    if path.is_dir():
        runner = SavedModelRunner(path)
        if imgsz is not None and imgsz != runner.imgsz:
            raise InputError(f"{path} was converted for imgsz={runner.imgsz}; pass imgsz={runner.imgsz} or leave it out")
        return runner
    if path.suffix.lower() in ULTRALYTICS_SUFFIXES:
        return UltralyticsRunner(path, imgsz)
    if not path.exists():
        raise InputError(f"model not found: {path} (pass a SavedModel folder, a YOLOv8 .pt or an Ultralytics .onnx)")
    raise InputError(f"unsupported model {path}: pass a tftrt_yolo SavedModel folder, a YOLOv8 .pt or an Ultralytics .onnx")
