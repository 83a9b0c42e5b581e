"""Deterministic synthetic datasets in Ultralytics YOLO format, for all five tasks.

No pretrained YOLOv8 weights and no COCO/DOTA/ImageNet data can be had here, so
tftrt_yolo trains its own small demo models on data drawn by this module:

* detect / segment / classify: five shape classes (circle, rectangle, triangle,
  star, hexagon) of varied size, aspect, rotation and colour, with a contrasting
  outline, overlapping one another and partly hidden under textured "occluder"
  blobs and the image border, on gradient + noise + line-clutter backgrounds.
  Labels always describe the *visible* pixels (box = visible extent, polygon =
  outer contour of the visible region); placements that would hide more than
  ~40 % of an object or cut it in two are rejected, so no unlabelled object is
  left in an image.
* pose: one class, an articulated stick figure with 5 keypoints (head, left and
  right hand, left and right foot; "left" = image-left of the upright figure,
  so horizontal flips swap them: flip_idx [0, 2, 1, 4, 3]). A keypoint hidden
  under an occluder, another figure or outside the image has visibility 0,
  visible ones 2.
* obb: four classes of elongated objects (bar, capsule, arrow, zebra), any
  rotation, labelled by their rotated rectangle (4 corners, normalised).

Each image is drawn from its own ``numpy.random.default_rng([seed, task, split,
index])``, so a split can be generated alone (``n_train=0``), in any order and
in parallel, and the same seed gives byte-identical files with the same numpy /
OpenCV versions.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.tasks import SPECS, TASKS, check_task, task_spec

GENERATOR_VERSION = 1

_TASK_ID = {t: i for i, t in enumerate(TASKS)}  # part of every image's seed
_SPLIT_ID = {"train": 0, "val": 1}

SHAPE_NAMES = ("circle", "rectangle", "triangle", "star", "hexagon")
OBB_NAMES = ("bar", "capsule", "arrow", "zebra")
POSE_NAMES = ("figure",)
KPT_NAMES = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
FLIP_IDX = (0, 2, 1, 4, 3)

DEFAULT_N_TRAIN = {t: spec.demo_n_train for t, spec in SPECS.items()}
DEFAULT_N_VAL = 300
#: Image sides are drawn uniformly from [0.5 * imgsz, 1.25 * imgsz] (320..800 px for 640).
DEFAULT_IMGSZ = {t: spec.demo_imgsz for t, spec in SPECS.items()}
JPEG_QUALITY = 95

_OCC_ID = 255  # id-map value of occluder blobs (objects are 1..254)


_CLASS_NAMES = {
    "detect": SHAPE_NAMES,
    "segment": SHAPE_NAMES,
    "classify": tuple(sorted(SHAPE_NAMES)),  # Ultralytics numbers classification folders in sorted order
    "pose": POSE_NAMES,
    "obb": OBB_NAMES,
}


def class_names(task: str) -> tuple[str, ...]:
    """Class names of ``task``'s synthetic dataset, index = class id."""
    return _CLASS_NAMES[check_task(task)]


# --------------------------------------------------------------------------- drawing helpers


def _hsv_color(rng, s_lo, s_hi, v_lo, v_hi) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(s_lo, s_hi) * 255, rng.uniform(v_lo, v_hi) * 255]]])
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _outline_color(fill: np.ndarray, rng) -> tuple:
    lum = 0.114 * fill[0] + 0.587 * fill[1] + 0.299 * fill[2]
    v = rng.uniform(0, 40) if lum > 105 else rng.uniform(215, 255)
    return (float(v), float(v), float(v))


def _background(rng, h: int, w: int) -> np.ndarray:
    """Low-saturation gradient + smooth noise + fine texture + line clutter (uint8 BGR)."""
    gray = rng.uniform(40, 215)
    c1 = gray + rng.uniform(-35, 35, 3)
    c2 = rng.uniform(40, 215) + rng.uniform(-35, 35, 3)
    ang = rng.uniform(0, 2 * math.pi)
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32) * math.cos(ang)
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32) * math.sin(ang)
    t = (ys[:, None] + xs[None, :]) + 0.5
    img = c1.astype(np.float32) + t[..., None] * (c2 - c1).astype(np.float32)
    # smooth blotches
    gh, gw = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    blot = rng.standard_normal((gh, gw, 3), dtype=np.float32) * np.float32(rng.uniform(8, 30))
    img += cv2.resize(blot, (w, h), interpolation=cv2.INTER_CUBIC)
    # mid-frequency texture (grain of 3..12 px), mono
    cell = int(rng.integers(3, 13))
    tex = rng.standard_normal((max(2, h // cell), max(2, w // cell)), dtype=np.float32)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(rng.uniform(3, 14))
    img += tex[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    # line clutter: thin straight lines and random-walk polylines, low saturation
    n_lines = int(rng.integers(4, 30))
    for _ in range(n_lines):
        col = tuple(float(v) for v in np.clip(rng.uniform(20, 235) + rng.uniform(-30, 30, 3), 0, 255))
        th = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            p = rng.uniform([0, 0, 0, 0], [w, h, w, h]).astype(np.int32)
            cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), col, th, cv2.LINE_AA)
        else:
            n = int(rng.integers(3, 9))
            start = rng.uniform([0, 0], [w, h])
            steps = rng.normal(0, 0.08 * min(h, w), (n, 2))
            pts = (start + np.cumsum(steps, 0)).astype(np.int32)
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, col, th, cv2.LINE_AA)
    return img


def _finish(img: np.ndarray, rng) -> np.ndarray:
    """Sensor noise and an occasional slight blur over the whole image."""
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    sigma = rng.uniform(2, 8)
    noise = rng.standard_normal(img.shape[:2], dtype=np.float32) * np.float32(sigma)
    out = img.astype(np.float32) + noise[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _rot(pts: np.ndarray, ang: float) -> np.ndarray:
    c, s = math.cos(ang), math.sin(ang)
    return pts @ np.array([[c, s], [-s, c]])


def _shape_polygon(cls: int, r: float, rng) -> np.ndarray:
    """Polygon (N, 2) of shape class ``cls`` with circumradius ~r, centred on 0, unrotated."""
    name = SHAPE_NAMES[cls]
    if name == "circle":
        a = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], 1) * r
    if name == "rectangle":
        asp = rng.uniform(1.0, 2.6)
        hh = r / math.sqrt(1 + asp * asp)
        hw = hh * asp
        return np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    if name == "triangle":
        a = np.deg2rad([-90, 30, 150])
        p = np.stack([np.cos(a), np.sin(a)], 1) * r
        p[:, 1] *= rng.uniform(0.7, 1.3)
        return p
    if name == "star":
        a = np.linspace(-math.pi / 2, 1.5 * math.pi, 10, endpoint=False)
        rad = np.where(np.arange(10) % 2 == 0, r, r * rng.uniform(0.38, 0.5))
        return np.stack([np.cos(a), np.sin(a)], 1) * rad[:, None]
    if name == "hexagon":
        a = np.linspace(0, 2 * math.pi, 6, endpoint=False)
        p = np.stack([np.cos(a), np.sin(a)], 1) * r
        p[:, 1] *= rng.uniform(0.85, 1.1)
        return p
    raise AssertionError(name)


def _blob_polygon(r: float, rng) -> np.ndarray:
    n = int(rng.integers(9, 16))
    a = np.sort(rng.uniform(0, 2 * math.pi, n))
    rad = r * rng.uniform(0.55, 1.0, n)
    return np.stack([np.cos(a) * rad, np.sin(a) * rad], 1)


def _fix(pts: np.ndarray) -> np.ndarray:
    """Float pixel coords -> int32 with 4 fractional bits for cv2 drawing (shift=4)."""
    return np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)


class _Canvas:
    """An image plus an instance-id map; tracks what is visible of every object."""

    def __init__(self, img: np.ndarray):
        self.img = img
        self.h, self.w = img.shape[:2]
        self.ids = np.zeros((self.h, self.w), np.uint8)
        self.scratch = np.zeros((self.h, self.w), np.uint8)
        self.full = {}  # id -> rasterised in-image area when placed
        self.vis = {}  # id -> currently visible area
        self.box = {}  # id -> (x0, y0, x1, y1) integer bbox of its full in-image mask
        self.next_id = 1

    def _bbox(self, pts: np.ndarray, pad: float):
        x0 = max(0, int(math.floor(pts[:, 0].min() - pad)))
        y0 = max(0, int(math.floor(pts[:, 1].min() - pad)))
        x1 = min(self.w, int(math.ceil(pts[:, 0].max() + pad)) + 1)
        y1 = min(self.h, int(math.ceil(pts[:, 1].max() + pad)) + 1)
        return x0, y0, x1, y1

    def try_place(self, draw_mask, bbox_pts, pad, max_hide, need_connected, min_area=30):
        """Rasterise a candidate with ``draw_mask(mask)`` (drawing 1s on the scratch mask).

        Returns the candidate's (bbox, mask crop) if it hides at most ``max_hide`` of each
        object's full area (and, with ``need_connected``, leaves each in one piece), else None.
        """
        x0, y0, x1, y1 = self._bbox(bbox_pts, pad)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        draw_mask(self.scratch)
        m = self.scratch[y0:y1, x0:x1].copy()
        self.scratch[y0:y1, x0:x1] = 0
        area = int(m.sum())
        if area < min_area:
            return None
        under = self.ids[y0:y1, x0:x1][m > 0]
        hit = np.bincount(under, minlength=256)
        for j in np.nonzero(hit[1:_OCC_ID])[0] + 1:
            j = int(j)
            if self.vis[j] - hit[j] < (1.0 - max_hide) * self.full[j]:
                return None
            if need_connected:
                bx0, by0, bx1, by1 = self.box[j]
                ux0, uy0, ux1, uy1 = min(bx0, x0), min(by0, y0), max(bx1, x1), max(by1, y1)
                vis = (self.ids[uy0:uy1, ux0:ux1] == j).astype(np.uint8)
                vis[y0 - uy0 : y1 - uy0, x0 - ux0 : x1 - ux0] &= 1 - m
                if cv2.connectedComponents(vis, connectivity=8)[0] != 2:
                    return None
        return (x0, y0, x1, y1), m, hit

    def commit(self, placed, is_object: bool) -> int:
        (x0, y0, x1, y1), m, hit = placed
        for j in np.nonzero(hit[1:_OCC_ID])[0] + 1:
            self.vis[int(j)] -= int(hit[j])
        oid = self.next_id if is_object else _OCC_ID
        region = self.ids[y0:y1, x0:x1]
        region[m > 0] = oid
        if is_object:
            self.next_id += 1
            self.full[oid] = self.vis[oid] = int(m.sum())
            self.box[oid] = (x0, y0, x1, y1)
        return oid

    def visible(self, oid: int):
        """(x0, y0, mask crop) of object ``oid``'s visible pixels."""
        x0, y0, x1, y1 = self.box[oid]
        return x0, y0, (self.ids[y0:y1, x0:x1] == oid)


def _paint_texture(img, m, x0, y0, rng):
    """Fill mask crop ``m`` at (x0, y0) with a low-saturation noisy texture (an occluder)."""
    h, w = m.shape
    base = rng.uniform(30, 225) + rng.uniform(-25, 25, 3)
    cell = int(rng.integers(2, 8))
    tex = rng.standard_normal((max(2, h // cell), max(2, w // cell)), dtype=np.float32)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_NEAREST if rng.random() < 0.5 else cv2.INTER_LINEAR)
    patch = np.clip(base.astype(np.float32) + tex[..., None] * np.float32(rng.uniform(10, 35)), 0, 255)
    sub = img[y0 : y0 + h, x0 : x0 + w]
    sel = m > 0
    sub[sel] = patch.astype(np.uint8)[sel]


def _add_occluders(cv: _Canvas, rng, n: int, r_lo: float, r_hi: float, max_hide: float, need_connected: bool):
    for _ in range(n):
        for _try in range(8):
            r = rng.uniform(r_lo, r_hi)
            c = rng.uniform([0, 0], [cv.w, cv.h])
            poly = _blob_polygon(r, rng) + c

            def draw(mask, poly=poly):
                cv2.fillPoly(mask, [_fix(poly)], 1, cv2.LINE_8, 4)

            placed = cv.try_place(draw, poly, 1, max_hide, need_connected)
            if placed is not None:
                cv.commit(placed, is_object=False)
                (x0, y0, _, _), m, _ = placed
                _paint_texture(cv.img, m, x0, y0, rng)
                break


def _image_size(rng, imgsz: int) -> tuple[int, int]:
    lo, hi = round(0.5 * imgsz), round(1.25 * imgsz)
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))  # h, w


def _place_shape(cv: _Canvas, rng, cls: int, r: float, center, ang: float, max_hide: float, need_connected: bool,
                 min_inside: float = 0.75):
    """Try to draw one shape; returns its object id or None."""
    poly = _rot(_shape_polygon(cls, r, rng), ang) + center
    fill = _hsv_color(rng, 0.55, 1.0, 0.45, 1.0)
    th = max(1, int(round(r * rng.uniform(0.04, 0.09))))
    bx0, by0 = poly.min(0)
    bx1, by1 = poly.max(0)
    inside_x = (min(bx1, cv.w) - max(bx0, 0)) / max(bx1 - bx0, 1e-6)
    inside_y = (min(by1, cv.h) - max(by0, 0)) / max(by1 - by0, 1e-6)
    if inside_x < min_inside or inside_y < min_inside:
        return None
    pts = _fix(poly)

    def draw(mask):
        cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, 4)
        cv2.polylines(mask, [pts], True, 1, th, cv2.LINE_8, 4)

    placed = cv.try_place(draw, poly, th, max_hide, need_connected)
    if placed is None:
        return None
    oid = cv.commit(placed, is_object=True)
    cv2.fillPoly(cv.img, [pts], tuple(float(v) for v in fill), cv2.LINE_AA, 4)
    cv2.polylines(cv.img, [pts], True, _outline_color(fill, rng), th, cv2.LINE_AA, 4)
    return oid


def _visible_polygon(cv: _Canvas, oid: int) -> np.ndarray | None:
    x0, y0, m = cv.visible(oid)
    cnts, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not cnts:
        return None
    c = max(cnts, key=cv2.contourArea)
    c = cv2.approxPolyDP(c, 0.7, True).reshape(-1, 2).astype(np.float64)
    if len(c) < 3:
        return None
    return c + [x0 + 0.5, y0 + 0.5]


def _visible_box(cv: _Canvas, oid: int):
    x0, y0, m = cv.visible(oid)
    ys = np.nonzero(m.any(1))[0]
    xs = np.nonzero(m.any(0))[0]
    if len(xs) == 0:
        return None
    return x0 + xs[0], y0 + ys[0], x0 + xs[-1] + 1, y0 + ys[-1] + 1


def _fmt(v: float) -> str:
    return f"{min(max(v, 0.0), 1.0):.6f}"


def _box_line(cls: int, box, w: int, h: int) -> str:
    x0, y0, x1, y1 = box
    return f"{cls} {_fmt((x0 + x1) / 2 / w)} {_fmt((y0 + y1) / 2 / h)} {_fmt((x1 - x0) / w)} {_fmt((y1 - y0) / h)}"


# --------------------------------------------------------------------------- per-task images


def _shapes_image(rng, imgsz: int, polygons: bool):
    """Shapes labelled by boxes, or (segment) by the polygons of their visible parts, which must be connected."""
    h, w = _image_size(rng, imgsz)
    cv = _Canvas(_background(rng, h, w))
    m = min(h, w)
    n = int(rng.integers(2, 11))
    objs = []
    r_lo, r_hi = max(11.0, 0.035 * m), 0.3 * m
    for _ in range(n):
        cls = int(rng.integers(0, len(SHAPE_NAMES)))
        for _try in range(12):
            r = math.exp(rng.uniform(math.log(r_lo), math.log(r_hi)))
            c = rng.uniform([-0.2 * r, -0.2 * r], [w + 0.2 * r, h + 0.2 * r])
            oid = _place_shape(cv, rng, cls, r, c, rng.uniform(0, 2 * math.pi), 0.4, polygons)
            if oid is not None:
                objs.append((oid, cls))
                break
    _add_occluders(cv, rng, int(rng.integers(0, 4)), 0.04 * m, 0.14 * m, 0.4, polygons)
    img = _finish(cv.img, rng)
    lines = []
    for oid, cls in objs:
        if polygons:
            poly = _visible_polygon(cv, oid)
            if poly is None:
                continue
            xy = (poly / [w, h]).ravel()
            lines.append(f"{cls} " + " ".join(_fmt(v) for v in xy))
        else:
            box = _visible_box(cv, oid)
            if box is not None:
                lines.append(_box_line(cls, box, w, h))
    return img, lines


def _figure_parts(rng, hf: float):
    """Stick figure in its upright frame (y down, origin at pelvis): lines, head, keypoints."""
    u = hf / 5.0
    neck = np.array([0.0, -1.4 * u])
    pelvis = np.array([0.0, 0.6 * u])
    head = np.array([0.0, -2.05 * u]) + rng.normal(0, 0.08 * u, 2)
    head_r = 0.5 * u
    segs = [(neck, pelvis)]
    ends = []
    # arms from the neck, legs from the pelvis; left = image-left (cos < 0)
    for root, lo, hi, length in (
        (neck + [0, 0.2 * u], 105, 240, 1.7 * u),  # left hand
        (neck + [0, 0.2 * u], -60, 75, 1.7 * u),  # right hand
        (pelvis, 100, 150, 2.0 * u),  # left foot
        (pelvis, 30, 80, 2.0 * u),  # right foot
    ):
        a = math.radians(rng.uniform(lo, hi))
        l1 = length * rng.uniform(0.45, 0.55)
        mid = root + l1 * np.array([math.cos(a), math.sin(a)])
        a2 = a + math.radians(rng.uniform(-45, 45))
        end = mid + (length - l1) * np.array([math.cos(a2), math.sin(a2)])
        segs += [(root, mid), (mid, end)]
        ends.append(end)
    kpts = np.stack([head] + ends)
    return segs, head, head_r, kpts, u


def _pose_image(rng, imgsz: int):
    h, w = _image_size(rng, imgsz)
    cv = _Canvas(_background(rng, h, w))
    m = min(h, w)
    # a few unlabelled shapes as distractors first (figures may cover them)
    for _ in range(int(rng.integers(0, 4))):
        cls = int(rng.integers(0, len(SHAPE_NAMES)))
        r = rng.uniform(0.03, 0.09) * m
        pts = _fix(_rot(_shape_polygon(cls, r, rng), rng.uniform(0, 6.3)) + rng.uniform([0, 0], [w, h]))
        cv2.fillPoly(cv.img, [pts], tuple(float(v) for v in _hsv_color(rng, 0.4, 1, 0.4, 1)), cv2.LINE_AA, 4)
    figs = []
    for _ in range(int(rng.integers(1, 5))):
        for _try in range(12):
            hf = math.exp(rng.uniform(math.log(max(60.0, 0.18 * m)), math.log(0.9 * m)))
            segs, head, head_r, kpts, u = _figure_parts(rng, hf)
            ang = math.radians(rng.uniform(-30, 30))
            c = rng.uniform([0, 0], [w, h])
            segs = [(_rot(a[None], ang)[0] + c, _rot(b[None], ang)[0] + c) for a, b in segs]
            head = _rot(head[None], ang)[0] + c
            kpts = _rot(kpts, ang) + c
            th = max(2, int(round(0.22 * u)))
            blob = max(2, int(round(0.2 * u)))
            allpts = np.concatenate([np.array([p for s in segs for p in s]), [head - head_r, head + head_r]])
            bx0, by0 = allpts.min(0)
            bx1, by1 = allpts.max(0)
            if (min(bx1, w) - max(bx0, 0)) < 0.7 * (bx1 - bx0) or (min(by1, h) - max(by0, 0)) < 0.7 * (by1 - by0):
                continue

            def draw(mask, segs=segs, head=head, head_r=head_r, kpts=kpts, th=th, blob=blob):
                for a, b in segs:
                    cv2.line(mask, tuple(_fix(a)[0, 0]), tuple(_fix(b)[0, 0]), 1, th, cv2.LINE_8, 4)
                cv2.circle(mask, tuple(_fix(head)[0, 0]), int(round(head_r * 16)), 1, -1, cv2.LINE_8, 4)
                for k in kpts[1:]:
                    cv2.circle(mask, tuple(_fix(k)[0, 0]), blob * 16, 1, -1, cv2.LINE_8, 4)

            placed = cv.try_place(draw, allpts, th + blob, 0.35, False)
            if placed is None:
                continue
            oid = cv.commit(placed, is_object=True)
            col = _hsv_color(rng, 0.6, 1.0, 0.45, 1.0)
            colt = tuple(float(v) for v in col)
            for a, b in segs:
                cv2.line(cv.img, tuple(_fix(a)[0, 0]), tuple(_fix(b)[0, 0]), colt, th, cv2.LINE_AA, 4)
            cv2.circle(cv.img, tuple(_fix(head)[0, 0]), int(round(head_r * 16)), colt, -1, cv2.LINE_AA, 4)
            cv2.circle(cv.img, tuple(_fix(head)[0, 0]), int(round(head_r * 16)), _outline_color(col, rng),
                       max(1, th // 2), cv2.LINE_AA, 4)
            for k in kpts[1:]:
                cv2.circle(cv.img, tuple(_fix(k)[0, 0]), blob * 16, colt, -1, cv2.LINE_AA, 4)
            figs.append((oid, kpts, th))
            break
    _add_occluders(cv, rng, int(rng.integers(0, 4)), 0.04 * m, 0.13 * m, 0.4, False)
    img = _finish(cv.img, rng)
    lines = []
    for oid, kpts, th in figs:
        box = _visible_box(cv, oid)
        if box is None:
            continue
        parts = [_box_line(0, box, w, h)]
        rad = max(1, th // 2)
        for x, y in kpts:
            xi, yi = int(math.floor(x)), int(math.floor(y))
            vis = 0
            if 0 <= xi < w and 0 <= yi < h:
                win = cv.ids[max(0, yi - rad) : yi + rad + 1, max(0, xi - rad) : xi + rad + 1]
                vis = 2 if (win == oid).mean() >= 0.5 else 0
            parts.append(f"{_fmt(x / w)} {_fmt(y / h)} 2" if vis else "0.000000 0.000000 0")
        lines.append(" ".join(parts))
    return img, lines


def _obb_object(cv: _Canvas, rng, cls: int, length: float, width: float, c, ang: float):
    """Draw one elongated object; returns its 4 rotated-rectangle corners or None."""
    name = OBB_NAMES[cls]
    th = max(1, int(round(width * rng.uniform(0.05, 0.1))))
    hl, hw = length / 2, width / 2
    rect = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw]])
    polys, circles = [], []
    if name in ("bar", "zebra"):
        polys = [rect]
    elif name == "capsule":
        polys = [np.array([[-hl + hw, -hw], [hl - hw, -hw], [hl - hw, hw], [-hl + hw, hw]])]
        circles = [(np.array([-hl + hw, 0.0]), hw), (np.array([hl - hw, 0.0]), hw)]
    elif name == "arrow":
        head = min(1.3 * width, 0.4 * length)
        sw = width * rng.uniform(0.35, 0.5) / 2
        polys = [np.array([[-hl, -sw], [hl - head, -sw], [hl - head, -hw], [hl, 0], [hl - head, hw],
                           [hl - head, sw], [-hl, sw]])]
    polys = [_rot(p, ang) + c for p in polys]
    circles = [(_rot(p[None], ang)[0] + c, r) for p, r in circles]
    corners = _rot(rect * [(length + th) / length, (width + th) / width], ang) + c
    if corners.min() < 0 or (corners[:, 0] > cv.w).any() or (corners[:, 1] > cv.h).any():
        return None

    def draw(mask):
        for p in polys:
            cv2.fillPoly(mask, [_fix(p)], 1, cv2.LINE_8, 4)
        for p, r in circles:
            cv2.circle(mask, tuple(_fix(p)[0, 0]), int(round(r * 16)), 1, -1, cv2.LINE_8, 4)

    placed = cv.try_place(draw, corners, 1, 0.25, False)
    if placed is None:
        return None
    cv.commit(placed, is_object=True)
    fill = _hsv_color(rng, 0.55, 1.0, 0.45, 1.0)
    fillt = tuple(float(v) for v in fill)
    out = _outline_color(fill, rng)
    for p in polys:
        cv2.fillPoly(cv.img, [_fix(p)], fillt, cv2.LINE_AA, 4)
    for p, r in circles:
        cv2.circle(cv.img, tuple(_fix(p)[0, 0]), int(round(r * 16)), fillt, -1, cv2.LINE_AA, 4)
    if name == "zebra":  # stripes across the long axis
        n = max(3, int(round(length / (0.6 * width))))
        edges = np.linspace(-hl, hl, n + 1)
        for i in range(0, n, 2):
            s = np.array([[edges[i], -hw], [edges[i + 1], -hw], [edges[i + 1], hw], [edges[i], hw]])
            cv2.fillPoly(cv.img, [_fix(_rot(s, ang) + c)], out, cv2.LINE_AA, 4)
    if name == "capsule":
        for p, r in circles:
            cv2.circle(cv.img, tuple(_fix(p)[0, 0]), int(round(r * 16)), out, th, cv2.LINE_AA, 4)
        cv2.fillPoly(cv.img, [_fix(polys[0])], fillt, cv2.LINE_AA, 4)
        for a, b in ((0, 1), (2, 3)):
            cv2.line(cv.img, tuple(_fix(polys[0][a])[0, 0]), tuple(_fix(polys[0][b])[0, 0]), out, th, cv2.LINE_AA, 4)
    else:
        for p in polys:
            cv2.polylines(cv.img, [_fix(p)], True, out, th, cv2.LINE_AA, 4)
    return corners


def _obb_image(rng, imgsz: int):
    h, w = _image_size(rng, imgsz)
    cv = _Canvas(_background(rng, h, w))
    m = min(h, w)
    objs = []
    for _ in range(int(rng.integers(2, 9))):
        cls = int(rng.integers(0, len(OBB_NAMES)))
        for _try in range(12):
            length = math.exp(rng.uniform(math.log(max(50.0, 0.14 * m)), math.log(0.65 * m)))
            width = max(14.0, 0.035 * m, length / rng.uniform(2.5, 5.0))
            width = min(width, length / 2.2)
            c = rng.uniform([0, 0], [w, h])
            corners = _obb_object(cv, rng, cls, length, width, c, rng.uniform(0, math.pi))
            if corners is not None:
                objs.append((cls, corners))
                break
    _add_occluders(cv, rng, int(rng.integers(0, 3)), 0.03 * m, 0.08 * m, 0.2, False)
    img = _finish(cv.img, rng)
    lines = [f"{cls} " + " ".join(_fmt(v) for v in (corners / [w, h]).ravel()) for cls, corners in objs]
    return img, lines


def _classify_image(rng, imgsz: int, cls: int):
    h, w = _image_size(rng, imgsz)
    cv = _Canvas(_background(rng, h, w))
    m = min(h, w)
    r_dom = rng.uniform(0.22, 0.45) * m
    # small distractors of any class first, then the dominant shape on top
    for _ in range(int(rng.integers(0, 4))):
        dc = int(rng.integers(0, len(SHAPE_NAMES)))
        r = rng.uniform(0.2, 0.33) * r_dom
        _place_shape(cv, rng, dc, r, rng.uniform([0, 0], [w, h]), rng.uniform(0, 6.3), 0.3, False)
    for _try in range(50):
        c = rng.uniform([0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h])
        if _place_shape(cv, rng, cls, r_dom, c, rng.uniform(0, 2 * math.pi), 1.0, False, min_inside=0.9):
            break
        r_dom *= 0.97
    _add_occluders(cv, rng, int(rng.integers(0, 3)), 0.04 * m, 0.1 * m, 0.25, False)
    return _finish(cv.img, rng)


# --------------------------------------------------------------------------- dataset writing


def _rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _TASK_ID[task], _SPLIT_ID[split], int(index)])


def _write_image(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _classify_sample(rng, imgsz: int, index: int):
    cls = index % len(SHAPE_NAMES)  # balanced classes
    return _classify_image(rng, imgsz, cls), [SHAPE_NAMES[cls]]


#: (rng, imgsz, index) -> (BGR image, label lines) per task
_SAMPLERS = {
    "detect": lambda rng, imgsz, index: _shapes_image(rng, imgsz, polygons=False),
    "segment": lambda rng, imgsz, index: _shapes_image(rng, imgsz, polygons=True),
    "classify": _classify_sample,
    "pose": lambda rng, imgsz, index: _pose_image(rng, imgsz),
    "obb": lambda rng, imgsz, index: _obb_image(rng, imgsz),
}


def make_sample(task: str, seed: int, split: str, index: int, imgsz: int | None = None):
    """Draw one sample: (BGR uint8 image, label lines) — for classify, lines = [class name]."""
    spec = task_spec(task)
    return _SAMPLERS[spec.name](_rng(seed, task, split, index), imgsz or spec.demo_imgsz, index)


def _write_sample(args) -> None:
    task, seed, split, index, imgsz, root = args
    cv2.setNumThreads(1)
    img, lines = make_sample(task, seed, split, index, imgsz)
    root = Path(root)
    name = f"{split}_{index:06d}"
    if task_spec(task).class_folders:
        _write_image(root / split / lines[0] / f"{name}.jpg", img)
        return
    _write_image(root / "images" / split / f"{name}.jpg", img)
    (root / "labels" / split / f"{name}.txt").write_text("".join(ln + "\n" for ln in lines))


def _yaml_text(task: str, seed: int, n_train: int, n_val: int, imgsz: int) -> str:
    names = class_names(task)
    out = [
        f"# tftrt_yolo synthetic '{task}' dataset (generator v{GENERATOR_VERSION}, seed {seed}, "
        f"{n_train} train / {n_val} val images, sides {round(0.5 * imgsz)}..{round(1.25 * imgsz)} px).",
        "# Paths are relative to this file's folder (no 'path:' key), so the folder can be moved.",
        "train: images/train",
        "val: images/val",
        f"nc: {len(names)}",
        "names:",
        *(f"  {i}: {n}" for i, n in enumerate(names)),
    ]
    if "keypoints" in task_spec(task).outputs:
        out += [
            f"kpt_shape: [{len(KPT_NAMES)}, 3]",
            f"flip_idx: [{', '.join(map(str, FLIP_IDX))}]",
            "kpt_names:",
            f"  0: [{', '.join(KPT_NAMES)}]",
        ]
    return "\n".join(out) + "\n"


def dataset_entry(task: str, root: str | os.PathLike) -> Path:
    """What Ultralytics' ``data=`` takes for a dataset folder: its YAML, or the folder for classify."""
    root = Path(root)
    return root if task_spec(task).class_folders else root / "data.yaml"


def read_meta(root: str | os.PathLike) -> dict | None:
    p = Path(root) / "meta.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def generate_dataset(
    task: str,
    root: str | os.PathLike,
    *,
    n_train: int | None = None,
    n_val: int = DEFAULT_N_VAL,
    seed: int = 0,
    imgsz: int | None = None,
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``task``'s synthetic dataset into folder ``root`` and return its YAML (folder for classify).

    Layout: ``root/data.yaml``, ``root/images/{train,val}/*.jpg``, ``root/labels/{train,val}/*.txt``
    (classify: ``root/{train,val}/<class>/*.jpg``), plus ``root/meta.json`` with the parameters.
    The folder is written under a temporary name beside ``root`` and renamed at the end, so an
    interrupted run leaves no half-written ``root``. ``imgsz`` (default 640, 224 for classify) sets
    the image sides, drawn from [0.5, 1.25] * imgsz. ``n_train=0`` writes the val split only.
    """
    spec = task_spec(task)
    n_train = spec.demo_n_train if n_train is None else int(n_train)
    n_val = int(n_val)
    imgsz = int(imgsz or spec.demo_imgsz)
    if n_train < 0 or n_val < 1:
        raise InputError(f"need n_train >= 0 and n_val >= 1, got n_train={n_train}, n_val={n_val}")
    if imgsz < 64:
        raise InputError(f"imgsz must be at least 64, got {imgsz}")
    root = Path(root).expanduser().absolute()
    if root.exists():
        if not overwrite:
            raise InputError(f"{root} already exists: remove it or pass overwrite=True")
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        splits = {"train": n_train, "val": n_val}
        for split in splits:
            if spec.class_folders:
                for n in SHAPE_NAMES:
                    (tmp / split / n).mkdir(parents=True)
            else:
                (tmp / "images" / split).mkdir(parents=True)
                (tmp / "labels" / split).mkdir(parents=True)
        jobs = [(task, seed, s, i, imgsz, str(tmp)) for s, n in splits.items() for i in range(n)]
        if workers is None:
            workers = min(os.cpu_count() or 1, 16) if len(jobs) >= 64 else 0
        if workers and workers > 1:
            import multiprocessing as mp

            # fork: workers need only numpy/cv2 and must not re-import the caller's __main__ (spawn does)
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with ProcessPoolExecutor(workers, mp_context=mp.get_context(method)) as ex:
                list(ex.map(_write_sample, jobs, chunksize=16))
        else:
            for j in jobs:
                _write_sample(j)
        if not spec.class_folders:
            (tmp / "data.yaml").write_text(_yaml_text(task, seed, n_train, n_val, imgsz))
        meta = {
            "task": task,
            "seed": seed,
            "n_train": n_train,
            "n_val": n_val,
            "imgsz": imgsz,
            "generator_version": GENERATOR_VERSION,
            "names": list(class_names(task)),
        }
        if "keypoints" in spec.outputs:
            meta.update(kpt_names=list(KPT_NAMES), flip_idx=list(FLIP_IDX))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        os.chmod(tmp, 0o755)
        os.rename(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataset_entry(task, root)
