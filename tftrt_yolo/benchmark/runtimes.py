"""Per-runtime timers: what one timed call is for a SavedModel, Ultralytics PyTorch and ONNX Runtime.

Each `*_timers` function returns (end_to_end_fn, network_fn or None, network status).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.signatures import PREDICT_DEFAULTS
from tftrt_yolo.tasks import task_spec
from tftrt_yolo.validate import load_targets


def network_batch(files: list[Path], task: str, imgsz: int) -> np.ndarray:
    """The letterboxed (classify: resized, centre-cropped) float batch NCHW RGB in [0, 1], like predict's."""
    import cv2

    out = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"cannot read image {f}")
        if not task_spec(task).letterbox:
            from PIL import Image
            from ultralytics.data.augment import classify_transforms

            out.append(classify_transforms(imgsz)(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))).numpy())
        else:
            from ultralytics.data.augment import LetterBox

            boxed = LetterBox((imgsz, imgsz), auto=False)(image=bgr)
            out.append(np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1), np.float32) / 255.0)
    return np.stack(out).astype(np.float32)


def timing_images(data, task: str, batch: int, names: dict, imgsz: int) -> list[Path]:
    """`batch` val images of `data` (cycled when it has fewer)."""
    targets, _ = load_targets(task, data, names, imgsz)
    if not targets:
        raise InputError(f"no val images in {data}")
    files = [t.file for t in targets]
    return [files[i % len(files)] for i in range(batch)]


# --------------------------------------------------------------------------- per-row timers


def _sync_torch():
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass


def saved_model_timers(runner, files: list[Path], task: str):
    """A SavedModel runner: the serving signature on the file bytes; the wrapped network (TF-TRT: its engine)."""
    import tensorflow as tf

    conf, iou, max_det = (PREDICT_DEFAULTS[k] for k in ("conf", "iou", "max_det"))

    def end_to_end():
        runner.model.predict_encoded([f.read_bytes() for f in files], conf=conf, iou=iou, max_det=max_det)

    x = tf.constant(network_batch(files, task, runner.imgsz).transpose(0, 2, 3, 1))

    def network_only():  # waits for the device by reading one value, without copying the raw heads to the host
        for output in runner.model.run_network(x):
            tf.reshape(output, [-1])[0].numpy()

    return end_to_end, network_only, "ok"


def ultralytics_timers(runner, files: list[Path], task: str):
    """An Ultralytics runner: `predict` on the file paths; its AutoBackend (PyTorch) or ONNX Runtime session."""
    import torch

    conf, iou, max_det = (PREDICT_DEFAULTS[k] for k in ("conf", "iou", "max_det"))
    sources = [str(f) for f in files]
    args = runner.predict_args(conf, iou, max_det, len(sources))

    speeds = []

    def end_to_end():
        results = runner.yolo.predict(sources, **args)
        _sync_torch()
        speeds.append(results[0].speed)  # Ultralytics' own per-image split of this call

    end_to_end()  # sets up the predictor (and its AutoBackend) that the network timer calls
    end_to_end.speeds = speeds
    backend = runner.yolo.predictor.model
    batch = network_batch(files, task, runner.imgsz)
    if runner.kind == "onnx":
        session = backend.session
        feed = {session.get_inputs()[0].name: batch}

        def network_only():
            session.run(None, feed)
    else:
        x = torch.from_numpy(batch).to(backend.device)
        x = x.half() if getattr(backend, "fp16", False) else x

        def network_only():
            with torch.inference_mode():
                backend(x)
            _sync_torch()

    return end_to_end, network_only, "ok"


def ultralytics_onnx(pt: Path, workdir: Path, *, imgsz: int, batch: int) -> Path:
    """The ONNX Runtime row's model: Ultralytics' own export of `pt` (static batch, opset 17 as measured so far)."""
    from tftrt_yolo._ultralytics import YOLO

    local = workdir / f"{pt.stem}.pt"
    shutil.copyfile(pt, local)
    exported = YOLO(str(local)).export(format="onnx", imgsz=imgsz, batch=batch, dynamic=False, simplify=True,
                                       opset=17, verbose=False)
    return Path(exported)
