"""val(): accuracy of a converted SavedModel, or of the Ultralytics model it came from, on a YOLO dataset.

Both kinds of model go through the same code: every val image is predicted
once (a SavedModel gets the file's bytes through its serving signature, an
Ultralytics `.pt` / `.onnx` goes through `YOLO(model).predict`), the final
detections are put in original-image pixels, and they are scored against the
labels with Ultralytics' own pieces: the labels come from its `YOLODataset` /
`ClassificationDataset` built in val mode, IoUs from `box_iou`, `mask_iou`,
`kpt_iou` (OKS, with the sigmas Ultralytics' PoseValidator picks) and
`batch_probiou`, matching from `BaseValidator.match_predictions` at IoU
0.50:0.95, and the averages from `DetMetrics` / `SegmentMetrics` /
`PoseMetrics` / `OBBMetrics` / `ClassifyMetrics`. No mAP code of our own.

Differences from `YOLO(pt).val()` (see benchmarks/README.md for numbers):
Ultralytics' validator keeps several classes per box (NMS `multi_label=True`)
where predict keeps one, scores in letterbox space (masks at a quarter of it)
instead of original pixels, resizes images with `ceil` before letterboxing, and
`YOLO.val()` letterboxes to rectangles (`rect=True`) unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from tftrt_yolo.errors import InputError

IOU_THRESHOLDS = (0.5, 0.95, 10)  # torch.linspace(0.5, 0.95, 10), as Ultralytics' validators
ULTRALYTICS_SUFFIXES = (".pt", ".pth", ".onnx")
#: What the headline columns of a table show, per task: (metric group, label)
PRIMARY = {"detect": "box", "obb": "box", "segment": "mask", "pose": "pose"}


# --------------------------------------------------------------------------- predictions


@dataclasses.dataclass
class Prediction:
    """Final results for one image, in original pixels (what both runners return)."""

    boxes: np.ndarray | None = None  # [n, 4] xyxy (obb: the axis-aligned hull)
    scores: np.ndarray | None = None  # [n], descending
    classes: np.ndarray | None = None  # [n] int
    masks: np.ndarray | None = None  # [n, H, W] bool (segment)
    keypoints: np.ndarray | None = None  # [n, K, 2 or 3] (pose)
    rboxes: np.ndarray | None = None  # [n, 5] xywhr (obb)
    probs: np.ndarray | None = None  # [nc] (classify)


class SavedModelRunner:
    """A tftrt_yolo SavedModel: encoded image bytes in, `Prediction`s out."""

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

    def predict(self, files: list[Path], *, conf: float, iou: float, max_det: int) -> list[Prediction]:
        from tftrt_yolo.results import from_outputs

        items = [(str(f), Path(f).read_bytes()) for f in files]
        outputs = self.model.predict_encoded([b for _, b in items], conf=conf, iou=iou, max_det=max_det)
        out = []
        for r in from_outputs(outputs, self.task, self.names, items):
            if self.task == "classify":
                out.append(Prediction(probs=np.asarray(r.probs, np.float32)))
            else:
                out.append(
                    Prediction(
                        boxes=r.boxes, scores=r.scores, classes=r.classes.astype(np.int64),
                        masks=r.masks, keypoints=r.keypoints, rboxes=r.rboxes,
                    )
                )
        return out


class UltralyticsRunner:
    """An Ultralytics `.pt` (PyTorch) or `.onnx` (ONNX Runtime) model through `YOLO(model).predict`.

    Predict runs with `rect=False`, so images are letterboxed to the same
    square `imgsz` input as the SavedModel gets (Ultralytics' predict default,
    `rect=True`, pads a PyTorch model's input only to a multiple of 32).
    """

    def __init__(self, path: str | Path, imgsz: int | None = None):
        from tftrt_yolo._ultralytics import YOLO

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"model file not found: {self.path}")
        self.kind = "onnx" if self.path.suffix.lower() == ".onnx" else "pytorch"
        self.backend = "onnxruntime" if self.kind == "onnx" else "pytorch"
        if self.kind == "onnx":
            from tftrt_yolo.source import read_onnx, ultralytics_metadata

            proto = read_onnx(self.path)
            meta = ultralytics_metadata(proto, self.path)
            dims = proto.graph.input[0].type.tensor_type.shape.dim  # 0: dynamic
            batch, size = (dims[0].dim_value, dims[2].dim_value) if len(dims) == 4 else (0, 0)
        try:
            self.yolo = YOLO(str(self.path), task=meta["task"] if self.kind == "onnx" else None)
        except Exception as e:  # torch.load / onnx raise many types for foreign files
            raise InputError(f"cannot read {self.path} as an Ultralytics YOLO model ({type(e).__name__}: {e})") from None
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

    def predict(self, files: list[Path], *, conf: float, iou: float, max_det: int) -> list[Prediction]:
        sources = [str(f) for f in files]
        pad = self.max_batch - len(sources) if self.static_batch else 0
        results = self.yolo.predict(sources + sources[-1:] * pad, **self.predict_args(conf, iou, max_det, len(sources) + pad))
        return [self.convert(r) for r in results[: len(sources)]]

    @staticmethod
    def convert(r) -> Prediction:
        """An Ultralytics `Results` -> Prediction in original pixels."""
        if r.probs is not None:
            return Prediction(probs=r.probs.data.float().cpu().numpy())
        if r.obb is not None:
            b = r.obb
            return Prediction(
                boxes=b.xyxy.cpu().numpy(), scores=b.conf.cpu().numpy(), classes=b.cls.cpu().numpy().astype(np.int64),
                rboxes=b.xywhr.cpu().numpy(),
            )
        b = r.boxes
        p = Prediction(boxes=b.xyxy.cpu().numpy(), scores=b.conf.cpu().numpy(), classes=b.cls.cpu().numpy().astype(np.int64))
        if r.keypoints is not None:
            p.keypoints = r.keypoints.data.cpu().numpy()
        if r.masks is not None:
            p.masks = _masks_to_original(r)
        return p


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


# --------------------------------------------------------------------------- ground truth


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
    """The val split of `data` as Targets, read with Ultralytics' own dataset classes (val mode)."""
    import os

    from tftrt_yolo._ultralytics import ultralytics  # noqa: F401 - environment first

    os.environ.setdefault("YOLO_VERBOSE", "false")
    if task == "classify":
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
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    info = _checked(lambda: check_det_dataset(str(data), autodownload=False), data, "a YOLO dataset YAML")
    split = info.get("val") or info.get("test")
    if not split:
        raise InputError(f"{data} names no val (or test) split")
    if task == "pose" and not info.get("kpt_shape"):
        raise InputError(f"{data} has no kpt_shape: a pose model needs a pose dataset")
    dataset = build_yolo_dataset(_cfg(task, imgsz), split, 1, info, mode="val", stride=32)
    targets = [_target(task, label) for label in dataset.labels]
    return targets, info


def _checked(fn, data, what):
    try:
        return fn()
    except InputError:
        raise
    except Exception as e:  # Ultralytics raises FileNotFoundError, SyntaxError, RuntimeError... for bad datasets
        raise InputError(f"cannot read dataset {data} ({type(e).__name__}: {str(e).strip()}); pass {what}") from None


def _target(task: str, label: dict) -> Target:
    from ultralytics.utils import ops

    h, w = (int(v) for v in label["shape"])
    cls = label["cls"].reshape(-1).astype(np.int64)
    scale = np.array([w, h, w, h], np.float32)
    boxes = ops.xywh2xyxy(label["bboxes"].reshape(-1, 4).astype(np.float32)) * scale
    t = Target(file=Path(label["im_file"]), shape=(h, w), cls=cls, boxes=boxes)
    segments = label.get("segments") or []
    if task == "segment":
        if len(cls):
            from ultralytics.data.utils import polygons2masks_overlap

            if len(segments) != len(cls):
                raise InputError(f"{label['im_file']}: segment labels need one polygon per object")
            polygons = [s * np.array([w, h], np.float32) for s in segments]
            overlap, order = polygons2masks_overlap((h, w), polygons, downsample_ratio=1)
            t.cls, t.boxes = cls[order], boxes[order]
            t.masks = overlap[None] == np.arange(1, len(cls) + 1)[:, None, None]
        else:
            t.masks = np.zeros((0, h, w), bool)
    elif task == "pose":
        kpts = label.get("keypoints")
        if kpts is None:
            raise InputError(f"{label['im_file']}: pose labels need keypoints")
        kpts = kpts.astype(np.float32).copy()
        kpts[..., 0] *= w
        kpts[..., 1] *= h
        t.keypoints = kpts
    elif task == "obb":
        if len(cls):
            corners = np.stack([s.reshape(-1, 2) for s in segments]).astype(np.float32) * np.array([w, h], np.float32)
            t.rboxes = ops.xyxyxyxy2xywhr(corners).astype(np.float32)
        else:
            t.rboxes = np.zeros((0, 5), np.float32)
    return t


# --------------------------------------------------------------------------- scoring


def _metrics_class(task: str):
    from ultralytics.utils import metrics

    return {
        "detect": metrics.DetMetrics,
        "segment": metrics.SegmentMetrics,
        "pose": metrics.PoseMetrics,
        "obb": metrics.OBBMetrics,
        "classify": metrics.ClassifyMetrics,
    }[task]


class _Matcher:
    """Just what `BaseValidator.match_predictions` reads from its validator: the IoU thresholds."""

    def __init__(self):
        import torch

        self.iouv = torch.linspace(*IOU_THRESHOLDS)

    def __call__(self, pred_cls, true_cls, iou) -> np.ndarray:
        from ultralytics.engine.validator import BaseValidator

        return BaseValidator.match_predictions(self, pred_cls, true_cls, iou).cpu().numpy()


def oks_sigmas(kpt_shape, data: dict) -> np.ndarray:
    """The OKS sigmas Ultralytics' PoseValidator uses: the dataset's, COCO's for 17 keypoints, else 1/K each."""
    from ultralytics.utils.metrics import OKS_SIGMA

    nkpt = int(kpt_shape[0])
    if sigmas := data.get("kpt_oks_sigmas"):
        sigma = np.array(sigmas, dtype=np.float32).flatten()
        if len(sigma) != nkpt or not np.all(sigma > 0):
            raise InputError(f"'kpt_oks_sigmas' must be {nkpt} positive values, got {sigmas}")
        return sigma
    return OKS_SIGMA if list(kpt_shape) == [17, 3] else np.ones(nkpt) / nkpt


def _mask_iou(gt: np.ndarray, pred: np.ndarray, chunk: int = 16):
    """Ultralytics' mask_iou at full resolution, a few predictions at a time (bounded memory)."""
    import torch
    from ultralytics.utils.metrics import mask_iou

    g = torch.from_numpy(gt.reshape(len(gt), -1).astype(np.float32))
    parts = [
        mask_iou(g, torch.from_numpy(pred[i : i + chunk].reshape(len(pred[i : i + chunk]), -1).astype(np.float32)))
        for i in range(0, len(pred), chunk)
    ]
    return torch.cat(parts, 1)


class Scorer:
    """Accumulates (Prediction, Target) pairs into Ultralytics' metrics object for `task`."""

    def __init__(self, task: str, names: dict, sigma=None):
        self.task, self.names, self.sigma = task, names, sigma
        self.metrics = _metrics_class(task)() if task == "classify" else _metrics_class(task)(names=names)
        self.match = _Matcher()
        self.top_pred, self.top_true = [], []
        self.images = self.instances = 0

    def add(self, pred: Prediction, target: Target) -> None:
        import torch

        self.images += 1
        self.instances += len(target.cls)
        if self.task == "classify":
            probs = torch.from_numpy(np.asarray(pred.probs, np.float32))[None]
            self.top_pred.append(probs.argsort(1, descending=True)[:, :5])  # as ClassificationValidator
            self.top_true.append(torch.from_numpy(target.cls))
            return
        order = np.argsort(-pred.scores, kind="stable")  # match_predictions wants descending confidence
        p_cls = torch.from_numpy(pred.classes[order].astype(np.int64))
        t_cls = torch.from_numpy(target.cls)
        n, m = len(order), len(target.cls)
        stat = {
            "target_cls": target.cls,
            "target_img": np.unique(target.cls),
            "conf": pred.scores[order].astype(np.float32),
            "pred_cls": pred.classes[order].astype(np.float32),
            "im_name": target.file.name,
        }
        for key, iou_fn in self._ious(pred, target, order).items():
            stat[key] = np.zeros((n, 10), bool) if n == 0 or m == 0 else self.match(p_cls, t_cls, iou_fn())
        self.metrics.update_stats(stat)

    def _ious(self, pred: Prediction, target: Target, order) -> dict:
        import torch
        from ultralytics.utils import metrics, ops

        if self.task == "obb":
            return {"tp": lambda: metrics.batch_probiou(
                torch.from_numpy(target.rboxes), torch.from_numpy(pred.rboxes[order].astype(np.float32)))}
        boxes = lambda: metrics.box_iou(  # noqa: E731
            torch.from_numpy(target.boxes), torch.from_numpy(pred.boxes[order].astype(np.float32)))
        out = {"tp": boxes}
        if self.task == "segment":
            out["tp_m"] = lambda: _mask_iou(target.masks, pred.masks[order])
        elif self.task == "pose":
            def oks():
                area = ops.xyxy2xywh(torch.from_numpy(target.boxes))[:, 2:].prod(1) * 0.53  # as PoseValidator
                return metrics.kpt_iou(
                    torch.from_numpy(target.keypoints), torch.from_numpy(pred.keypoints[order].astype(np.float32)),
                    sigma=self.sigma, area=area)
            out["tp_p"] = oks
        return out

    def results(self) -> dict:
        if self.task == "classify":
            self.metrics.process(self.top_true, self.top_pred)
            return {"top1": float(self.metrics.top1), "top5": float(self.metrics.top5),
                    "fitness": float(self.metrics.fitness)}
        self.metrics.process(save_dir=Path("."), plot=False)
        groups = {"box": self.metrics.box}
        if self.task == "segment":
            groups["mask"] = self.metrics.seg
        elif self.task == "pose":
            groups["pose"] = self.metrics.pose
        out = {
            name: {"precision": float(g.mp), "recall": float(g.mr), "mAP50": float(g.map50), "mAP50-95": float(g.map)}
            for name, g in groups.items()
        }
        out["fitness"] = float(self.metrics.fitness)
        return out


# --------------------------------------------------------------------------- val


def default_conf(task: str) -> float:
    """Ultralytics' val default: 0.001, or 0.01 for obb (its validator's choice)."""
    return 0.01 if task == "obb" else 0.001


def val(
    model,
    data=None,
    *,
    batch: int | None = None,
    imgsz: int | None = None,
    conf: float | None = None,
    iou: float = 0.7,
    max_det: int = 300,
    limit: int | None = None,
    verbose: bool = True,
) -> dict:
    """Accuracy of `model` on the val split of `data`, with Ultralytics' metric code.

    `model`: a tftrt_yolo SavedModel folder, a YOLOv8 `.pt` or an Ultralytics
    `.onnx` (or a runner from `open_model`). `data`: a dataset YAML (classify:
    a folder with `val/<class>/` images); default: the demo dataset of the
    model's task. `batch`: images per call (default: the SavedModel's batch
    when it is static, else 1; results per image do not depend on it).
    `imgsz`: SavedModels use the size they were converted for; `.pt` default:
    the size it was trained at, else 640. `conf` default: 0.001 (0.01 for
    obb), as Ultralytics' val. `limit`: only the first N val images.

    Returns a dict: `task`, `model`, `format`, `backend`, `data`, `images`,
    `instances`, `metrics` ({"box": {precision, recall, mAP50, mAP50-95},
    "mask"/"pose": same} or {"top1", "top5"}, plus "fitness"),
    `speed_ms_per_image` (predict, file read included) and `settings`.
    """
    runner = model if hasattr(model, "predict") and hasattr(model, "task") else open_model(model, imgsz)
    task = runner.task
    conf = default_conf(task) if conf is None else float(conf)
    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise InputError(f"conf and iou must lie in [0, 1], got conf={conf}, iou={iou}")
    if not isinstance(max_det, int) or max_det < 1:
        raise InputError(f"max_det must be a positive integer, got {max_det!r}")
    if batch is None:
        batch = runner.max_batch if runner.static_batch else 1
    if not isinstance(batch, int) or batch < 1 or (runner.max_batch and batch > runner.max_batch):
        raise InputError(f"batch must be between 1 and {runner.max_batch or 'any'}, got {batch!r}")
    if data is None:
        from tftrt_yolo.demo import demo_data

        data = demo_data(task, val_only=True)
    targets, info = load_targets(task, data, runner.names, runner.imgsz)
    if limit is not None:
        targets = targets[: int(limit)]
    if not targets:
        raise InputError(f"no val images in {data}")
    sigma = oks_sigmas(runner.kpt_shape or info.get("kpt_shape"), info) if task == "pose" else None
    scorer = Scorer(task, runner.names, sigma)
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(targets), desc=f"val {task}", unit="img", leave=False)
    seconds = 0.0
    try:
        for start in range(0, len(targets), batch):
            chunk = targets[start : start + batch]
            t0 = time.perf_counter()
            preds = runner.predict([t.file for t in chunk], conf=conf, iou=iou, max_det=max_det)
            seconds += time.perf_counter() - t0
            for p, t in zip(preds, chunk):
                scorer.add(p, t)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return {
        "task": task,
        "model": str(runner.path),
        "format": runner.kind,
        "backend": runner.backend,
        "data": str(data),
        "images": scorer.images,
        "instances": scorer.instances,
        "metrics": scorer.results(),
        "speed_ms_per_image": 1000.0 * seconds / max(scorer.images, 1),
        "settings": {"imgsz": runner.imgsz, "batch": batch, "conf": conf, "iou": iou, "max_det": max_det},
    }


def headline(result: dict) -> dict:
    """The two numbers a table shows for a val result: mAP50 / mAP50-95 of the task's main metric, or top1 / top5."""
    m = result["metrics"]
    if result["task"] == "classify":
        return {"top1": m["top1"], "top5": m["top5"]}
    group = PRIMARY[result["task"]]
    return {f"{group} mAP50": m[group]["mAP50"], f"{group} mAP50-95": m[group]["mAP50-95"]}


def format_result(result: dict) -> str:
    """A few lines for people: what was measured and the metrics."""
    s = result["settings"]
    lines = [
        f"{result['task']} {result['format']} ({result['backend']}) {result['model']}",
        f"  data {result['data']}: {result['images']} images, {result['instances']} instances",
        f"  imgsz {s['imgsz']}, batch {s['batch']}, conf {s['conf']}, iou {s['iou']}, max_det {s['max_det']}",
    ]
    m = result["metrics"]
    if result["task"] == "classify":
        lines.append(f"  top1 {m['top1']:.4f}  top5 {m['top5']:.4f}")
    else:
        for group in ("box", "mask", "pose"):
            if group in m:
                g = m[group]
                lines.append(
                    f"  {group:<4} P {g['precision']:.4f}  R {g['recall']:.4f}  "
                    f"mAP50 {g['mAP50']:.4f}  mAP50-95 {g['mAP50-95']:.4f}"
                )
    lines.append(f"  speed {result['speed_ms_per_image']:.1f} ms/image (predict, file read included)")
    return "\n".join(lines)


def _labelled(data) -> bool:
    """Whether `data` is something val() scores against: a dataset YAML, or a folder with val/ (classify)."""
    if data is None:
        return True
    if isinstance(data, (list, tuple)):
        return False
    path = Path(data)
    return path.suffix.lower() in (".yaml", ".yml") or (path.is_dir() and (path / "val").is_dir())


def accuracy_drop(reference_dir, converted_dir, *, data=None, max_drop: float | None = None,
                  verbose: bool = False) -> dict:
    """How much accuracy a conversion (TF-TRT fp16/int8) loses against its fp32 graph, both run through val().

    The metric is mAP50-95 of the task's main kind (box; mask for segment, pose
    for pose) or top-1 for classify. `data`: a dataset YAML (classify: folder
    with val/); None: the task's demo data; an image folder or list carries no
    labels and gives {"skipped": reason}. A drop larger than `max_drop` raises
    ConversionError.
    """
    from tftrt_yolo.errors import ConversionError

    if not _labelled(data):
        if max_drop is not None:
            raise InputError(
                f"max_map_drop needs labelled data to measure accuracy on: pass a dataset YAML (classify: a "
                f"folder with val/<class>/ images), not {data}"
            )
        return {"skipped": f"{data} has no labels: pass a dataset YAML to measure the accuracy drop"}
    converted, reference = SavedModelRunner(converted_dir), SavedModelRunner(reference_dir)
    kwargs = dict(data=data, verbose=verbose)
    before, after = val(reference, **kwargs), val(converted, **kwargs)
    key = "top1" if converted.task == "classify" else f"{PRIMARY[converted.task]} mAP50-95"
    b, a = headline(before)[key], headline(after)[key]
    precision = converted.model.metadata.precision
    result = {
        "metric": key,
        "reference": b,
        "converted": a,
        "precision": precision,
        "drop": b - a,
        "data": before["data"],
        "images": before["images"],
        "reference_metrics": before["metrics"],
        "converted_metrics": after["metrics"],
    }
    if max_drop is not None and b - a > max_drop:
        raise ConversionError(
            f"{precision} loses {b - a:.4f} {key} against fp32 ({b:.4f} -> {a:.4f} on {before['images']} images "
            f"of {before['data']}), more than max_map_drop={max_drop}: calibrate on more representative data, "
            "convert at a higher precision or raise max_map_drop"
        )
    return result


def ultralytics_val(model, data, *, imgsz: int | None = None, batch: int = 1, conf: float | None = None,
                    iou: float = 0.7, max_det: int = 300, rect: bool = False) -> dict:
    """Ultralytics' own `YOLO(model).val(...)` in the same shape as `val()`'s `metrics` (for cross-checks)."""
    from tftrt_yolo._ultralytics import YOLO

    yolo = YOLO(str(model))
    kwargs = dict(data=str(data), batch=batch, conf=conf, iou=iou, max_det=max_det, rect=rect, plots=False,
                  verbose=False, device="cpu", workers=0, save_json=False)
    if imgsz:
        kwargs["imgsz"] = imgsz
    m = yolo.val(**kwargs)
    if yolo.task == "classify":
        return {"top1": float(m.top1), "top5": float(m.top5), "fitness": float(m.fitness)}
    groups = {"box": m.box}
    if yolo.task == "segment":
        groups["mask"] = m.seg
    elif yolo.task == "pose":
        groups["pose"] = m.pose
    out = {k: {"precision": float(g.mp), "recall": float(g.mr), "mAP50": float(g.map50), "mAP50-95": float(g.map)}
           for k, g in groups.items()}
    out["fitness"] = float(m.fitness)
    return out


__all__ = ["val", "accuracy_drop", "open_model", "headline", "format_result", "ultralytics_val", "Prediction", "Target", "Scorer"]
