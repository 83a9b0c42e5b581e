"""One Result per image: detections in original pixels, drawable and serialisable."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.signatures import IMAGE_SIZES
from tftrt_yolo.tasks import task_spec

# Ultralytics' default palette (ultralytics.utils.plotting.Colors), RGB
_PALETTE = [
    (4, 42, 255), (11, 219, 235), (243, 243, 243), (0, 223, 183), (17, 31, 104), (255, 111, 221),
    (255, 68, 79), (204, 237, 0), (0, 243, 68), (189, 0, 255), (0, 180, 255), (221, 0, 186),
    (0, 255, 255), (38, 192, 0), (1, 255, 179), (125, 36, 255), (123, 0, 104), (255, 27, 108),
    (252, 109, 47), (162, 255, 11),
]  # fmt: skip


def color(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[int(class_id) % len(_PALETTE)]


@dataclasses.dataclass
class Result:
    """Results for one image. Boxes are xyxy in original pixels; arrays have one row per detection.

    `masks` (segment) are boolean [n, H, W]; `keypoints` (pose) are [n, K, 3] as
    (x, y, visibility); `rboxes` (obb) are [n, 5] as (cx, cy, w, h, angle in
    radians) and `boxes` their axis-aligned hulls; `probs` (classify) are the
    class probabilities with `top5`/`top5_scores` the best five.
    """

    task: str
    names: dict[int, str]
    orig_shape: tuple[int, int]  # (height, width)
    path: str | None = None
    encoded: bytes | None = dataclasses.field(default=None, repr=False)
    bgr: np.ndarray | None = dataclasses.field(default=None, repr=False)  # the array predicted on, not a copy
    boxes: np.ndarray | None = None
    scores: np.ndarray | None = None
    classes: np.ndarray | None = None
    masks: np.ndarray | None = dataclasses.field(default=None, repr=False)
    keypoints: np.ndarray | None = None
    rboxes: np.ndarray | None = None
    probs: np.ndarray | None = dataclasses.field(default=None, repr=False)
    top5: np.ndarray | None = None
    top5_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return 0 if self.scores is None else len(self.scores)

    @property
    def image(self) -> np.ndarray:
        """The original image, RGB uint8 [H, W, 3]."""
        if self.bgr is not None:
            return cv2.cvtColor(self.bgr, cv2.COLOR_BGR2RGB)
        if self.encoded is None:
            raise InputError("this result has no image attached: pass one to plot(image=...)")
        bgr = cv2.imdecode(np.frombuffer(self.encoded, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def to_dict(self) -> dict:
        """JSON-ready: `detections` (box, conf, class, name + task fields) or `top5` for classify."""
        out = {"path": self.path, "task": self.task, "height": self.orig_shape[0], "width": self.orig_shape[1]}
        if not task_spec(self.task).has_detections:
            out["top5"] = [
                {"class": int(c), "name": self.names[int(c)], "conf": round(float(s), 5)}
                for c, s in zip(self.top5, self.top5_scores)
            ]
            return out
        detections = []
        for i in range(len(self)):
            det = {
                "box": [round(float(v), 2) for v in self.boxes[i]],
                "conf": round(float(self.scores[i]), 5),
                "class": int(self.classes[i]),
                "name": self.names[int(self.classes[i])],
            }
            if self.keypoints is not None:
                det["keypoints"] = [[round(float(v), 2) for v in kpt] for kpt in self.keypoints[i]]
            if self.rboxes is not None:
                det["rbox"] = [round(float(v), 4) for v in self.rboxes[i]]
                det["polygon"] = [[round(float(x), 2), round(float(y), 2)] for x, y in rbox_corners(self.rboxes[i])]
            if self.masks is not None:
                det["polygon"] = mask_polygon(self.masks[i])
            detections.append(det)
        out["detections"] = detections
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def plot(self, image: np.ndarray | None = None, line_width: int | None = None) -> np.ndarray:
        """The image (RGB uint8) with the results drawn on it."""
        canvas = np.ascontiguousarray(self.image if image is None else image).copy()
        lw = line_width or max(round(sum(canvas.shape[:2]) / 2 * 0.003), 2)
        if not task_spec(self.task).has_detections:
            for row, (c, s) in enumerate(zip(self.top5, self.top5_scores)):
                _text(canvas, f"{self.names[int(c)]} {s:.2f}", (lw * 4, (row + 1) * lw * 12), (255, 255, 255), lw)
            return canvas
        if self.masks is not None and len(self):
            overlay = canvas.copy()
            for mask, c in zip(self.masks, self.classes):
                overlay[mask.astype(bool)] = color(c)
            canvas = cv2.addWeighted(overlay, 0.5, canvas, 0.5, 0)
        for i in range(len(self)):
            c = color(self.classes[i])
            if self.rboxes is not None:
                cv2.polylines(canvas, [rbox_corners(self.rboxes[i]).astype(np.int32)], True, c, lw, cv2.LINE_AA)
            else:
                x1, y1, x2, y2 = (int(round(v)) for v in self.boxes[i])
                cv2.rectangle(canvas, (x1, y1), (x2, y2), c, lw, cv2.LINE_AA)
            label = f"{self.names[int(self.classes[i])]} {self.scores[i]:.2f}"
            _text(canvas, label, (int(self.boxes[i][0]), max(int(self.boxes[i][1]) - lw, lw * 6)), c, lw)
            if self.keypoints is not None:
                for x, y, *vis in self.keypoints[i]:
                    if not vis or vis[0] >= 0.5:
                        cv2.circle(canvas, (int(x), int(y)), lw + 2, color(i + 7), -1, cv2.LINE_AA)
        return canvas

    def save(self, path: str | Path, image: np.ndarray | None = None) -> Path:
        """Write the annotated image to `path` (format from its extension)."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file in the way, no permission
            raise InputError(f"cannot write an image to {path}: {e.strerror} ({e.filename})") from None
        if not cv2.imwrite(str(path), cv2.cvtColor(self.plot(image), cv2.COLOR_RGB2BGR)):
            raise InputError(f"cannot write an image to {path}: use a .jpg or .png path in a writable folder")
        return path


def _text(canvas, text, origin, rgb, lw):
    scale = lw / 3
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(lw - 1, 1))
    x, y = origin
    cv2.rectangle(canvas, (x, y - h - 3), (x + w, y + 3), rgb, -1, cv2.LINE_AA)
    ink = (0, 0, 0) if sum(rgb) > 382 else (255, 255, 255)
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, max(lw - 1, 1), cv2.LINE_AA)


def rbox_corners(rbox) -> np.ndarray:
    """(cx, cy, w, h, angle) -> 4 x 2 corners, in Ultralytics' xywhr2xyxyxyxy order."""
    cx, cy, w, h, a = (float(v) for v in rbox)
    v1 = np.array([w / 2 * np.cos(a), w / 2 * np.sin(a)])
    v2 = np.array([-h / 2 * np.sin(a), h / 2 * np.cos(a)])
    ctr = np.array([cx, cy])
    return np.stack([ctr + v1 + v2, ctr + v1 - v2, ctr - v1 - v2, ctr - v1 + v2])


def mask_polygon(mask: np.ndarray) -> list[list[int]]:
    """The outline of a mask's largest part, as [[x, y], ...]."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    return max(contours, key=len).reshape(-1, 2).tolist()


def from_outputs(outputs: dict, task: str, names: dict, items: list) -> list[Result]:
    """Split a batch of signature outputs (numpy) into Results; `items` are (path, image) per image, the image
    as sent: encoded bytes or a BGR array."""
    detections, results = task_spec(task).has_detections, []
    for i, (path, image) in enumerate(items):
        h, w = (int(v) for v in outputs[IMAGE_SIZES][i])
        r = Result(task=task, names=names, orig_shape=(h, w), path=path)
        if isinstance(image, np.ndarray):
            r.bgr = image
        else:
            r.encoded = image
        if detections:
            n = int(outputs["num_detections"][i])
            r.boxes, r.scores, r.classes = outputs["boxes"][i, :n], outputs["scores"][i, :n], outputs["classes"][i, :n]
            if "masks" in outputs:
                r.masks = outputs["masks"][i, :n, :h, :w].astype(bool)
            if "keypoints" in outputs:
                r.keypoints = outputs["keypoints"][i, :n]
            if "rboxes" in outputs:
                r.rboxes = outputs["rboxes"][i, :n]
        else:
            r.probs, r.top5, r.top5_scores = outputs["probs"][i], outputs["top5_classes"][i], outputs["top5_scores"][i]
        results.append(r)
    return results
