"""Train tftrt_yolo's demo YOLOv8n models on the synthetic datasets, and write their model cards.

This is how the shipped ``tftrt_yolo/weights/yolov8n-<task>-demo.pt`` were made; it is a tool of
this repository, not part of the installed package. One task or all; ``--time`` bounds each run in
hours instead of epochs::

    .venv/bin/python tools/train_demo_models.py --task detect --epochs 30 --device 0 --out tftrt_yolo/weights
    .venv/bin/python tools/train_demo_models.py --task all --validate-only --device cpu

Models are built from Ultralytics' own ``yolov8n*.yaml`` (random init, ``pretrained=False``).
Nothing is downloaded: Ultralytics' AMP check would fetch a YOLO26 checkpoint, so AMP is
either ``'bf16'`` (no check in Ultralytics 8.4) on a CUDA GPU that supports it, or off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import tftrt_yolo._ultralytics  # noqa: F401 - Ultralytics offline and out of ~/.config, before its import
from tftrt_yolo.data.synthetic import (
    DEFAULT_N_VAL,
    FLIP_IDX,
    GENERATOR_VERSION,
    KPT_NAMES,
    dataset_entry,
    generate_dataset,
    read_meta,
)
from tftrt_yolo.demo import WEIGHTS_DIR, cache_dir, demo_data
from tftrt_yolo.errors import InputError
from tftrt_yolo.tasks import TASKS, check_task, task_spec


def _default_amp(device) -> bool | str:
    import torch

    if str(device).lower() in {"cpu", "mps"} or not torch.cuda.is_available():
        return False
    try:
        return "bf16" if torch.cuda.is_bf16_supported() else False
    except Exception:  # noqa: BLE001 - any CUDA query failure: train in fp32
        return False


def ensure_dataset(task: str, data_root, *, seed: int = 0, n_train=None, n_val: int = DEFAULT_N_VAL,
                   imgsz=None, workers=None) -> Path:
    """The dataset of ``task`` under ``data_root/<task>-seed<seed>``, generated if missing; its ``data=`` entry."""
    spec = task_spec(task)
    n_train = spec.demo_n_train if n_train is None else int(n_train)
    gen_imgsz = spec.demo_imgsz if imgsz is None else int(imgsz)
    root = Path(data_root).expanduser() / f"{task}-seed{seed}"
    meta = read_meta(root)
    want = {"task": task, "seed": seed, "n_train": n_train, "n_val": n_val, "imgsz": gen_imgsz,
            "generator_version": GENERATOR_VERSION}
    if meta and all(meta.get(k) == v for k, v in want.items()):
        return dataset_entry(task, root)
    if root.exists():
        raise InputError(
            f"{root} holds a dataset made with other parameters ({meta}); remove it or choose another data_root"
        )
    return generate_dataset(task, root, n_train=n_train, n_val=n_val, seed=seed, imgsz=gen_imgsz, workers=workers)


def train_demo_model(
    task: str,
    *,
    data_root,
    epochs: int,
    imgsz: int | None = None,
    batch: int = 32,
    device=None,
    seed: int = 0,
    workers: int = 4,
    n_train: int | None = None,
    n_val: int = DEFAULT_N_VAL,
    project=None,
    name: str | None = None,
    amp=None,
    cache="ram",
    time_hours: float | None = None,
    gen_workers: int | None = None,
    **overrides,
) -> Path:
    """Train a random-init YOLOv8n for ``task`` on its synthetic dataset; return the best checkpoint.

    The dataset (``data_root/<task>-seed<seed>``) is generated first if missing. ``imgsz`` defaults
    to 640 (224 for classify) and also sets the generated image sizes. ``time_hours``, if given,
    bounds the run by time (Ultralytics' ``time``) and overrides ``epochs``. ``overrides`` go to
    Ultralytics' ``train`` as they are. Training ends with Ultralytics' validation of the (fp16,
    optimizer-stripped) best checkpoint; its metrics are written to ``<run dir>/final_metrics.json``.
    """
    spec = task_spec(task)
    imgsz = int(imgsz or spec.demo_imgsz)
    data = ensure_dataset(task, data_root, seed=seed, n_train=n_train, n_val=n_val, imgsz=imgsz,
                          workers=gen_workers)
    from ultralytics import YOLO

    if device is None:
        import torch

        device = 0 if torch.cuda.is_available() else "cpu"
    if amp is None:
        amp = _default_amp(device)
    model = YOLO(spec.ultralytics_yaml, task=task)
    args = dict(
        data=str(data),
        epochs=int(epochs),
        imgsz=imgsz,
        batch=batch,
        device=device,
        seed=seed,
        workers=workers,
        pretrained=False,
        amp=amp,
        cache=cache,
        project=str(Path(project or "runs/tftrt_yolo_demo").absolute()),
        name=name or task,
        exist_ok=True,
        plots=False,
        deterministic=False,
        verbose=True,
    )
    if time_hours:
        args["time"] = float(time_hours)
    args.update(overrides)
    t0 = time.time()
    model.train(**args)
    trainer = model.trainer
    best = Path(trainer.best)
    if not best.is_file():
        best = Path(trainer.last)
    metrics = {k: float(v) for k, v in (trainer.metrics or {}).items()}
    info = {
        "task": task,
        "weights": str(best),
        "train_seconds": round(time.time() - t0, 1),
        "device": _device_name(device),
        "metrics": metrics,
        "measured_by": "Ultralytics val at the end of training, on the stripped fp16 best.pt",
    }
    (best.parent.parent / "final_metrics.json").write_text(json.dumps(info, indent=1) + "\n")
    return best


def _device_name(device) -> str:
    import torch

    if str(device).lower() != "cpu" and torch.cuda.is_available():
        return f"CUDA {torch.cuda.get_device_name(0)}"
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def ultralytics_val(task: str, weights, data, *, imgsz=None, batch: int = 32, device="cpu") -> dict:
    """Ultralytics val of ``weights`` on ``data``'s val split; returns ``results_dict`` as floats."""
    spec = task_spec(task)
    from ultralytics import YOLO

    model = YOLO(str(weights), task=task)
    imgsz = int(imgsz or model.ckpt.get("train_args", {}).get("imgsz") or spec.demo_imgsz)
    r = model.val(data=str(data), imgsz=imgsz, batch=batch, device=device, plots=False, split="val",
                  verbose=False, workers=0)
    return {k: float(v) for k, v in r.results_dict.items()}


def _ckpt_info(weights) -> dict:
    import torch

    ck = torch.load(str(weights), map_location="cpu", weights_only=False)
    a = ck.get("train_args", {}) or {}
    res = ck.get("train_results") or {}
    epochs_run = len(res.get("epoch", [])) if isinstance(res, dict) else None
    return {
        "args": a,
        "epochs_run": epochs_run,
        "train_metrics": ck.get("train_metrics") or {},
        "version": ck.get("version"),
        "date": ck.get("date"),
        "names": getattr(ck.get("model"), "names", None),
        "tftrt_yolo": ck.get("tftrt_yolo") or {},
    }


def model_card(task: str, weights, *, metrics: dict, measured_by: str, data_meta: dict | None,
               extra_sections: str = "", filename: str | None = None) -> str:
    """Markdown model card for a trained demo checkpoint (``filename``: the name it ships under)."""
    spec = task_spec(task)
    weights = Path(weights)
    filename = filename or weights.name
    ci = _ckpt_info(weights)
    a = ci["args"]
    names = ci["names"] or {}
    meta = data_meta or ci["tftrt_yolo"].get("data") or {}
    lines = [
        f"# {Path(filename).stem}",
        "",
        f"YOLOv8n {task} model trained by tftrt_yolo from random init (Ultralytics "
        f"`{spec.ultralytics_yaml}`, `pretrained=False`) on tftrt_yolo's synthetic `{task}` dataset. "
        "A demo model for the conversion pipeline: it only knows the synthetic data below.",
        "",
        f"- file: `{filename}` ({weights.stat().st_size / 1e6:.1f} MB, fp16 weights, optimizer stripped)",
        f"- classes ({len(names)}): " + ", ".join(f"{k}: {v}" for k, v in sorted(dict(names).items())),
    ]
    if "keypoints" in spec.outputs:
        lines.append(f"- keypoints ({len(KPT_NAMES)}, visibility 0/2): {', '.join(KPT_NAMES)}; "
                     f"flip_idx [{', '.join(map(str, FLIP_IDX))}]")
    lines += [
        f"- trained with Ultralytics {ci['version']} on {ci['date'] or '?'}",
        "",
        "## Data",
        "",
        f"- generator: `tftrt_yolo.data.synthetic.generate_dataset('{task}', ...)` "
        f"version {meta.get('generator_version', '?')}, seed {meta.get('seed', a.get('seed', '?'))}",
        f"- n_train {meta.get('n_train', '?')}, n_val {meta.get('n_val', '?')}; image sides drawn from "
        f"{round(0.5 * meta.get('imgsz', 0))}..{round(1.25 * meta.get('imgsz', 0))} px",
        f"- regenerate it with `tftrt_yolo.demo.demo_data('{task}')` (same seed; byte-identical with the same "
        "numpy/OpenCV versions, statistically identical otherwise)",
        "",
        "## Training",
        "",
        f"- epochs {ci['epochs_run'] or a.get('epochs')} (time budget {a.get('time')} h)"
        if a.get("time") else f"- epochs {a.get('epochs')}",
        f"- imgsz {a.get('imgsz')}, batch {a.get('batch')} (nbs {a.get('nbs')}), optimizer {a.get('optimizer')}, "
        f"amp {a.get('amp')}, cache {a.get('cache')}, seed {a.get('seed')}, close_mosaic {a.get('close_mosaic')}",
        "- default Ultralytics augmentation and hyperparameters otherwise",
        "",
        "## Validation (Ultralytics val, own val split)",
        "",
        f"Measured by: {measured_by}.",
        "",
        "| metric | value | bar |",
        "| --- | --- | --- |",
    ]
    bars = dict(spec.quality_bars)
    for key, label in spec.card_metrics:
        v = metrics.get(key)
        bar = f">= {bars[key]}" if key in bars else ""
        lines.append(f"| {label} | {v:.4f} | {bar} |" if v is not None else f"| {label} | n/a | {bar} |")
    tm = ci["train_metrics"]
    if tm:
        lines += [
            "",
            "Best epoch during training (Ultralytics val on the training device, EMA weights before the fp16 strip): "
            + ", ".join(f"{label} {float(tm[k]):.4f}" for k, label in spec.card_metrics if k in tm),
        ]
    fv = ci["tftrt_yolo"].get("final_val") or {}
    if fv.get("metrics") and fv["metrics"] != metrics:
        lines += [
            "",
            f"At the end of training ({fv.get('measured_by')}, {fv.get('device')}): "
            + ", ".join(f"{label} {fv['metrics'][k]:.4f}" for k, label in spec.card_metrics if k in fv["metrics"]),
        ]
    if extra_sections:
        lines += ["", extra_sections.rstrip()]
    return "\n".join(lines) + "\n"


def meets_bars(task: str, metrics: dict) -> bool:
    return all(metrics.get(k, 0.0) >= v for k, v in task_spec(task).quality_bars)


def _parse(argv):
    p = argparse.ArgumentParser(prog="tools/train_demo_models.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="all", help=f"one of {', '.join(TASKS)}, or 'all' (default)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--time", type=float, default=None, help="hours per run; overrides --epochs")
    p.add_argument("--imgsz", type=int, default=None, help="default 640 (224 for classify)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default=None, help="e.g. 0 or cpu (default: GPU 0 if there is one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=4, help="dataloader workers per run")
    p.add_argument("--gen-workers", type=int, default=None, help="processes generating the dataset")
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--n-val", type=int, default=DEFAULT_N_VAL)
    p.add_argument("--data-root", default=None, help="where datasets go (default: tftrt_yolo's cache dir)")
    p.add_argument("--project", default="runs/tftrt_yolo_demo", help="Ultralytics project folder for runs")
    p.add_argument("--cache", default="ram", help="Ultralytics cache: ram, disk or false")
    p.add_argument("--amp", default=None, help="true/fp16 (runs Ultralytics' AMP check), bf16 or false")
    p.add_argument("--out", default=None,
                   help="copy each best.pt to OUT/yolov8n-<task>-demo.pt and write OUT/yolov8n-<task>-demo.md")
    p.add_argument("--validate-only", action="store_true",
                   help="train nothing: re-validate WEIGHTS_DIR/yolov8n-<task>-demo.pt and rewrite its card")
    p.add_argument("--weights-dir", default=None, help="with --validate-only (default: the shipped weights)")
    p.add_argument("--val-batch", type=int, default=16)
    return p.parse_args(argv)


def _amp_arg(s):
    if s is None:
        return None
    low = str(s).lower()
    return {"true": True, "false": False, "fp32": False, "fp16": True}.get(low, low)


def main(argv=None) -> int:
    a = _parse(argv)
    tasks = TASKS if a.task == "all" else (a.task,)
    for t in tasks:
        check_task(t)
    data_root = Path(a.data_root).expanduser() if a.data_root else cache_dir()
    cache = False if str(a.cache).lower() in {"false", "0", "none", ""} else a.cache
    ok = True
    for task in tasks:
        if a.validate_only:
            wdir = Path(a.weights_dir) if a.weights_dir else WEIGHTS_DIR
            weights = wdir / f"yolov8n-{task}-demo.pt"
            if not weights.is_file():
                raise InputError(f"{weights} not found")
            seed = int(_ckpt_info(weights)["args"].get("seed", a.seed))
            data = demo_data(task, data_root, val_only=True, seed=seed, n_val=a.n_val, workers=a.gen_workers)
            device = a.device or "cpu"
            metrics = ultralytics_val(task, weights, data, batch=a.val_batch, device=device)
            # the card describes the training data, not the val-only copy used here
            tmeta = _ckpt_info(weights)["tftrt_yolo"].get("data")
            if not tmeta:
                tmeta = dict(read_meta(Path(data) if task_spec(task).class_folders else Path(data).parent) or {})
                tmeta["n_train"] = a.n_train if a.n_train is not None else task_spec(task).demo_n_train
            measured = (f"`tools/train_demo_models.py --validate-only --task {task}` (Ultralytics "
                        f"{_ul_version()} val, batch {a.val_batch}, {_device_name(device)}) on the shipped checkpoint "
                        f"and a freshly generated val split (seed {tmeta.get('seed')}, {tmeta.get('n_val')} images)")
            extra = ""
            if task_spec(task).demo_imgsz != 640:  # trained below the usual 640 (classify): show what 640 costs
                train_sz = int(_ckpt_info(weights)["args"].get("imgsz") or task_spec(task).demo_imgsz)
                m640 = ultralytics_val(task, weights, data, imgsz=640, batch=a.val_batch, device=device)
                extra = (
                    f"Input size: trained and validated at imgsz {train_sz} (Ultralytics' classify default). "
                    f"Ultralytics' export uses the checkpoint's imgsz ({train_sz}) unless told otherwise; keep it: "
                    f"the same val at imgsz 640 gives top1 {m640['metrics/accuracy_top1']:.4f}, "
                    f"top5 {m640['metrics/accuracy_top5']:.4f}."
                )
            card = model_card(task, weights, metrics=metrics, measured_by=measured, data_meta=tmeta,
                              extra_sections=extra)
            weights.with_suffix(".md").write_text(card)
            ok &= meets_bars(task, metrics)
            print(f"{task}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
            continue
        best = train_demo_model(
            task, data_root=data_root, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device,
            seed=a.seed, workers=a.workers, n_train=a.n_train, n_val=a.n_val, project=a.project,
            amp=_amp_arg(a.amp), cache=cache, time_hours=a.time, gen_workers=a.gen_workers,
        )
        info = json.loads((best.parent.parent / "final_metrics.json").read_text())
        root = data_root / f"{task}-seed{a.seed}"
        meta = read_meta(root)
        measured = f"{info['measured_by']} ({info['device']}, Ultralytics {_ul_version()})"
        card = model_card(task, best, metrics=info["metrics"], measured_by=measured, data_meta=meta,
                          filename=f"yolov8n-{task}-demo.pt")
        (best.parent.parent / "model_card.md").write_text(card)
        if a.out:
            out = Path(a.out)
            out.mkdir(parents=True, exist_ok=True)
            import torch

            # the shipped checkpoint carries its data parameters and final val metrics (Ultralytics ignores the key)
            ck = torch.load(str(best), map_location="cpu", weights_only=False)
            ck["tftrt_yolo"] = {"data": meta, "final_val": info}
            torch.save(ck, out / f"yolov8n-{task}-demo.pt")
            (out / f"yolov8n-{task}-demo.md").write_text(card)
        ok &= meets_bars(task, info["metrics"])
        print(f"{task}: best={best} " + ", ".join(f"{k}={v:.4f}" for k, v in info["metrics"].items()), flush=True)
    return 0 if ok else 1


def _ul_version() -> str:
    import ultralytics

    return ultralytics.__version__


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
