"""Scoring with Ultralytics' own pieces: IoUs, `match_predictions` at IoU 0.50:0.95, its metrics classes.

No mAP code of our own: `Scorer` feeds (Result, Target) pairs to the
metrics class the task table names, and `metrics_dict` reads the averages out
of it (ours and Ultralytics' own val give the same dict).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.tasks import task_spec

IOU_THRESHOLDS = (0.5, 0.95, 10)  # torch.linspace(0.5, 0.95, 10), as Ultralytics' validators
#: The `update_stats` key of each metric group's true positives (Ultralytics' names)
_TP_KEYS = {"box": "tp", "mask": "tp_m", "pose": "tp_p"}


def metrics_class(task: str):
    """The ultralytics.utils.metrics class that averages `task`'s val results."""
    from ultralytics.utils import metrics

    return getattr(metrics, task_spec(task).metrics_class)


def metrics_dict(task: str, metrics) -> dict:
    """An Ultralytics metrics object -> {group: {precision, recall, mAP50, mAP50-95}, fitness} or {top1, top5, fitness}."""
    groups = task_spec(task).metric_groups
    if not groups:
        return {"top1": float(metrics.top1), "top5": float(metrics.top5), "fitness": float(metrics.fitness)}
    out = {}
    for name, attribute in groups:
        g = getattr(metrics, attribute)
        out[name] = {"precision": float(g.mp), "recall": float(g.mr), "mAP50": float(g.map50), "mAP50-95": float(g.map)}
    out["fitness"] = float(metrics.fitness)
    return out


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


def _box_iou(pred, target, order, sigma):
    """Rotated boxes (probiou) where the labels have them, else axis-aligned IoU."""
    import torch
    from ultralytics.utils import metrics

    if target.rboxes is not None:
        return metrics.batch_probiou(torch.from_numpy(target.rboxes), torch.from_numpy(pred.rboxes[order].astype(np.float32)))
    return metrics.box_iou(torch.from_numpy(target.boxes), torch.from_numpy(pred.boxes[order].astype(np.float32)))


def _oks(pred, target, order, sigma):
    import torch
    from ultralytics.utils import metrics, ops

    area = ops.xyxy2xywh(torch.from_numpy(target.boxes))[:, 2:].prod(1) * 0.53  # as PoseValidator
    return metrics.kpt_iou(torch.from_numpy(target.keypoints), torch.from_numpy(pred.keypoints[order].astype(np.float32)),
                           sigma=sigma, area=area)


#: IoU of each metric group between a target's labels and the predictions (in `order`)
_IOUS = {"box": _box_iou, "mask": lambda pred, target, order, sigma: _mask_iou(target.masks, pred.masks[order]),
         "pose": _oks}


class Scorer:
    """Accumulates (Result, Target) pairs into Ultralytics' metrics object for `task`."""

    def __init__(self, task: str, names: dict, sigma=None):
        self.task, self.names, self.sigma = task, names, sigma
        self.groups = [name for name, _ in task_spec(task).metric_groups]
        self.metrics = metrics_class(task)(names=names) if self.groups else metrics_class(task)()
        self.match = _Matcher()
        self.top_pred, self.top_true = [], []
        self.images = self.instances = 0

    def add(self, pred, target) -> None:
        import torch

        self.images += 1
        self.instances += len(target.cls)
        if not self.groups:  # classification: top-5 classes against the label
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
        for group in self.groups:
            stat[_TP_KEYS[group]] = (np.zeros((n, 10), bool) if n == 0 or m == 0
                                     else self.match(p_cls, t_cls, _IOUS[group](pred, target, order, self.sigma)))
        self.metrics.update_stats(stat)

    def results(self) -> dict:
        if self.groups:
            self.metrics.process(save_dir=Path("."), plot=False)
        else:
            self.metrics.process(self.top_true, self.top_pred)
        return metrics_dict(self.task, self.metrics)
