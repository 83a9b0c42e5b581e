"""Runs ON THE GPU MACHINE in its own python3 (torch with CUDA): the Ultralytics PyTorch reference rows.

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl
    PYTHONPATH=/tmp/site:$PWD python3 benchmarks/gpu/torch_rows.py --root .gpu --out $OUT/torch.json

Per task, batch 8, the same 8 images as the SavedModel rows (.gpu/images/<task>/), mirroring
tftrt_yolo.benchmark's `_ultralytics_timers`:
- end_to_end: YOLO(pt).predict(8 paths, imgsz=S, batch=8, conf=0.25, iou=0.7, max_det=300, rect=False,
  device=0, half=False, verbose=False) then torch.cuda.synchronize();
- end_to_end_arrays: the same on the 8 images as decoded BGR arrays of one size (what `predict_images` gets);
- network: the predictor's AutoBackend (`yolo.predictor.model(x)`) under torch.inference_mode() on the
  [8, 3, S, S] float32 CUDA tensor of .gpu/net/<task>.npz, then torch.cuda.synchronize().
"""
from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from timing import BATCH, CONF, IOU, MAX_DET, REPO, TASKS, image_files, same_size_batch, stats_dict, time_calls

from tftrt_yolo._ultralytics import configure

configure()  # offline, no auto-install, private config dirs: before Ultralytics is imported


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def load_net(path: Path) -> np.ndarray:
    z = np.load(path)
    return z["u8"].astype(np.float32) / 255.0 if "u8" in z.files else z["f16"].astype(np.float32)


def one(root: Path, task: str, device, warmup: int, iterations: int) -> dict:
    from ultralytics import YOLO

    pt = REPO / "tftrt_yolo" / "weights" / f"yolov8n-{task}-demo.pt"
    imgsz = 224 if task == "classify" else 640
    files = image_files(root, task)
    sources = [str(f) for f in files]
    args = dict(imgsz=imgsz, batch=BATCH, conf=CONF, iou=IOU, max_det=MAX_DET, rect=False, retina_masks=False,
                device=device, half=False, verbose=False, save=False)
    row = {"task": task, "backend": "pytorch", "model": str(pt.relative_to(REPO)), "imgsz": imgsz,
           "images": [f.name for f in files], "predict_args": {k: str(v) for k, v in args.items()}}
    yolo = YOLO(str(pt), task=task)
    speeds = []
    last = {}

    def e2e():
        results = yolo.predict(sources, **args)
        sync()
        speeds.append(results[0].speed)
        last["r"] = results

    t0 = time.perf_counter()
    e2e()  # sets up the predictor and its AutoBackend
    row["end_to_end_first_call_s"] = time.perf_counter() - t0
    speeds.clear()
    s = time_calls(e2e, warmup=warmup, iterations=iterations, batch=BATCH)
    row["end_to_end"] = stats_dict(s)
    timed = speeds[warmup:]
    row["ultralytics_speed_mean"] = {k: float(np.mean([sp[k] for sp in timed])) for k in timed[0]} if timed else None
    r = last["r"]
    if r[0].boxes is not None:
        row["num_detections"] = [len(x.boxes) for x in r]
    elif r[0].obb is not None:
        row["num_detections"] = [len(x.obb) for x in r]
    elif r[0].probs is not None:
        row["top1"] = [int(x.probs.top1) for x in r]
    print(f"  {task}-pytorch e2e mean {s.mean:.3f} trimmed {s.trimmed_mean:.3f} ms/img", flush=True)

    arrays = [np.ascontiguousarray(a[..., ::-1]) for a in same_size_batch(files)]  # BGR, as Ultralytics takes

    def e2e_arrays():
        yolo.predict(arrays, **args)
        sync()

    s = time_calls(e2e_arrays, warmup=warmup, iterations=iterations, batch=BATCH)
    row["end_to_end_arrays"] = stats_dict(s)
    print(f"  {task}-pytorch e2e (arrays) mean {s.mean:.3f} trimmed {s.trimmed_mean:.3f} ms/img", flush=True)

    backend = yolo.predictor.model
    x = torch.from_numpy(load_net(root / "net" / f"{task}.npz")).to(backend.device)
    x = x.half() if getattr(backend, "fp16", False) else x
    row["network_input"] = {"shape": list(x.shape), "dtype": str(x.dtype), "device": str(x.device)}

    def net():
        with torch.inference_mode():
            backend(x)
        sync()

    s = time_calls(net, warmup=warmup, iterations=iterations, batch=BATCH)
    row["network"] = stats_dict(s)
    print(f"  {task}-pytorch net mean {s.mean:.3f} trimmed {s.trimmed_mean:.3f} ms/img", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=".gpu")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--device", default="0")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import logging

    import ultralytics
    from ultralytics.utils import LOGGER

    LOGGER.setLevel(logging.ERROR)  # 8.4.190 warns "'half' is deprecated" on every predict call

    device = int(a.device) if a.device.isdigit() else a.device
    res = {
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "ultralytics": ultralytics.__version__,
            "numpy": np.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        },
        "settings": {"batch": BATCH, "warmup": a.warmup, "iterations": a.iterations, "conf": CONF, "iou": IOU,
                     "max_det": MAX_DET, "device": a.device},
        "rows": [],
    }
    print(json.dumps(res["environment"]), flush=True)
    out = Path(a.out)
    for task in a.tasks:
        try:
            res["rows"].append(one(Path(a.root), task, device, a.warmup, a.iterations))
        except Exception as e:
            traceback.print_exc()
            res["rows"].append({"task": task, "backend": "pytorch", "status": f"failed: {type(e).__name__}: {str(e)[:2000]}"})
        out.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
