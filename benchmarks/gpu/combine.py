"""Runs HERE: turns what the GPU machine wrote (benchmarks/results/gpu/raw/, and raw-before/ from the graph
before this change) into benchmarks/results/gpu/results.json, README.md and gpu.png.

    .venv/bin/python benchmarks/gpu/combine.py

The tables and the verdicts on the goals are computed from the raw JSON; the method and how to reproduce it
are in benchmarks/gpu/METHOD.md. A goal is judged on the mean ms per image at batch 8;
the 10 %-trimmed mean is in results.json.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RES = REPO / "benchmarks" / "results" / "gpu"
TASKS = ("detect", "segment", "classify", "pose", "obb")
BACKENDS = (("tensorflow", "TensorFlow SavedModel"), ("xla", "TensorFlow + XLA"))
STAGES = ("decode", "preprocess_images", "network", "nms", "postprocess")
TRT_STATUS = "unavailable: no TensorRT 8.6 libraries on this machine"
# the goals: predict_images (uint8 batch in), end to end, ms/img at batch 8
GOAL = {"detect": 1.0, "segment": 2.0, "classify": 0.5}
GOAL_XLA_DETECT, GOAL_SERVING_DETECT, GOAL_NEAR_DETECT = 0.6, 1.5, 1.10


def load_run(folder: Path) -> dict:
    """(task, backend) -> row, from every *.json run file in `folder`."""
    rows = {}
    for name in ("tf-tensorflow.json", "tf-xla.json", "torch.json"):
        path = folder / name
        if path.is_file():
            for r in json.loads(path.read_text())["rows"]:
                rows[(r["task"], r["backend"])] = r
    return rows


def mean(row: dict | None, key: str) -> float | None:
    value = (row or {}).get(key)
    return value.get("mean") if isinstance(value, dict) else None


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    return f"**met** ({value:.2f})" if value <= limit else f"not met ({value:.2f})"


def fastest(runs: list[dict], task: str, key: str) -> float | None:
    """The lowest mean of `key` over the PyTorch rows of both sessions: the goals are judged against the
    fastest PyTorch measured that day."""
    values = [mean(run.get((task, "pytorch")), key) for run in runs]
    return min((v for v in values if v is not None), default=None)


def goals(rows: dict, before: dict) -> list[dict]:
    out = []
    detect = mean(rows.get(("detect", "tensorflow")), "predict_images")
    for task in TASKS:
        plain, xla = (rows.get((task, b)) for b in ("tensorflow", "xla"))
        limit = GOAL.get(task, (detect or 0.0) * GOAL_NEAR_DETECT)
        out.append({
            "task": task,
            "predict_images": mean(plain, "predict_images"),
            "predict_images_limit": limit,
            "predict_images_xla": mean(xla, "predict_images"),
            "serving_default": mean(plain, "serving_default"),
            "serving_default_xla": mean(xla, "serving_default"),
            "pytorch_files": fastest([rows, before], task, "end_to_end"),
            "pytorch_arrays": fastest([rows, before], task, "end_to_end_arrays"),
        })
    return out


def readme(rows: dict, before: dict, smi: dict, env: dict) -> str:
    L = ["# GPU benchmark: the five demo models end to end on one NVIDIA H200 (batch 8)\n"]
    L.append(f"Measured {(RES / 'raw' / 'smi.txt').read_text().splitlines()[0].strip()} (device clock). Every number "
             "is **milliseconds per image** at batch 8 (one call / 8), mean of 100 calls after 20 warm-up calls, every "
             "output copied to the host. The method, the models' commit and how to reproduce: "
             "[METHOD.md](../../gpu/METHOD.md).\n")
    L.append(f"GPU {smi['name']} (driver {smi['driver_version']}, {smi['memory.total [MiB]']}); TensorFlow "
             f"{env['tensorflow']} (CUDA {env['build_info']['cuda_version']}); TF-TRT rows: **{TRT_STATUS}** (TensorFlow "
             "2.17.1 needs TensorRT 8.6.1, which no machine here can install). No TF-TRT number is claimed.\n")
    L.append("## Goals (issue 10)\n")
    L.append("PyTorch: the faster of the two sessions' means (arrays: the same decoded uint8 batch as "
             "`predict_images`; files: the encoded files, as `serving_default`). \"Faster\" compares the plain "
             "TensorFlow graph; XLA's `serving_default` is in the next table.\n")
    L.append("| task | `predict_images` (uint8 batch) | XLA `predict_images` | `serving_default` (files) | "
             "PyTorch, arrays / files | faster than PyTorch (arrays / files) |")
    L.append("|---|---|---|---|---|---|")
    for g in goals(rows, before):
        task = g["task"]
        limit = g["predict_images_limit"]
        label = f"<= {limit:.2f}" + ("" if task in GOAL else " (detect + 10 %)")
        xla = verdict(g["predict_images_xla"], GOAL_XLA_DETECT) + " <= 0.6" if task == "detect" else ms(g["predict_images_xla"])
        serving = verdict(g["serving_default"], GOAL_SERVING_DETECT) + " <= 1.5" if task == "detect" else ms(g["serving_default"])
        faster = [a is not None and b is not None and a < b for a, b in ((g["predict_images"], g["pytorch_arrays"]),
                                                                          (g["serving_default"], g["pytorch_files"]))]
        L.append(f"| {task} | {verdict(g['predict_images'], limit)} {label} | {xla} | {serving} | "
                 f"{ms(g['pytorch_arrays'])} / {ms(g['pytorch_files'])} | "
                 f"{' / '.join('yes' if f else 'no' for f in faster)} |")
    L.append("\n## End to end, before and after\n")
    L.append("Before: the graph of commit f251197 (per-device dispatch already in, int32 fixed-point letterbox, "
             "per-image mask resize), measured the same day with the same script (plain graph only: XLA before was not "
             "measured, \"-\"). After: this change. PyTorch: this session's run.\n")
    L.append("| task | backend | `serving_default` before | after | `predict_images` before | after | network |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for task in TASKS:
        for backend, name in BACKENDS:
            r, b = rows.get((task, backend)), before.get((task, backend))
            L.append(f"| {task} | {name} | {ms(mean(b, 'serving_default'))} | {ms(mean(r, 'serving_default'))} | "
                     f"{ms(mean(b, 'predict_images'))} | {ms(mean(r, 'predict_images'))} | {ms(mean(r, 'network'))} |")
        t = rows.get((task, "pytorch"))
        L.append(f"| {task} | Ultralytics PyTorch | | {ms(mean(t, 'end_to_end'))} (files) | | "
                 f"{ms(mean(t, 'end_to_end_arrays'))} (arrays) | {ms(mean(t, 'network'))} |")
    L.append("\n## Where each millisecond goes (TensorFlow SavedModel rows, stages timed alone)\n")
    L.append("`decode`: encoded files -> padded uint8 batch (CPU, parallel); `preprocess_images`: uint8 batch on the "
             "GPU -> network input (letterbox; classify: resize + crop); `network`: `run_network`; `nms`: the boxes "
             "kept; `postprocess`: raw heads -> final results on the host (NMS included). `_xla`: the same stage "
             "compiled by XLA, where it compiles.\n")
    L.append("| task | " + " | ".join(STAGES) + " | preprocess_images_xla | postprocess_xla |")
    L.append("|---|" + "---:|" * (len(STAGES) + 2))
    for task in TASKS:
        r = rows.get((task, "tensorflow"), {})
        cells = [ms(mean(r, s)) for s in (*STAGES, "preprocess_images_xla", "postprocess_xla")]
        L.append(f"| {task} | " + " | ".join(cells) + " |")
    before_stages = [f"{t} {ms(mean(before.get((t, 'tensorflow')), 'preprocess_images'))}" for t in TASKS]
    L.append("\nBefore this change `preprocess_images` took " + ", ".join(before_stages) + " ms/img: on a GPU, "
             "TensorFlow runs int32 arithmetic on the host and has no uint8 gather, so the fixed-point letterbox "
             "ran on the CPU with copies both ways. It now computes the same integers in float32/float64.\n")
    L.append("![end to end and stages per task](gpu.png)\n")
    L.append("Files: `results.json` (every row's full statistics, before and after), `raw/` and `raw-before/` (what "
             "the device wrote), `gpu.png`.")
    return "\n".join(L) + "\n"


def chart(rows: dict, before: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8))
    x = np.arange(len(TASKS))
    series = [("before: TF predict_images", before, "tensorflow", "predict_images", "#bdbdbd"),
              ("TF predict_images", rows, "tensorflow", "predict_images", "#ff8f00"),
              ("XLA predict_images", rows, "xla", "predict_images", "#1e88e5"),
              ("TF serving_default", rows, "tensorflow", "serving_default", "#ffcc80"),
              ("PyTorch arrays (faster session)", None, "pytorch", "end_to_end_arrays", "#616161"),
              ("PyTorch files (faster session)", None, "pytorch", "end_to_end", "#9e9e9e")]
    width = 0.8 / len(series)
    for i, (label, data, backend, key, color) in enumerate(series):
        if data is None:
            values = [fastest([rows, before], t, key) or 0.0 for t in TASKS]
        else:
            values = [mean(data.get((t, backend)), key) or 0.0 for t in TASKS]
        bars = left.bar(x + (i - len(series) / 2 + 0.5) * width, values, width, label=label, color=color)
        left.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
    left.set_xticks(x, TASKS)
    left.set_ylabel("ms per image, batch 8 (mean)")
    left.set_title("end to end, outputs on the host", fontsize=10)
    left.legend(fontsize=7)
    bottom = np.zeros(len(TASKS))
    colors = ("#8d6e63", "#ffb74d", "#64b5f6", "#81c784", "#e57373")
    for stage, color in zip(("decode", "preprocess_images", "network", "postprocess"), colors):
        values = np.array([mean(rows.get((t, "tensorflow")), stage) or 0.0 for t in TASKS])
        right.bar(x, values, 0.5, bottom=bottom, label=stage, color=color)
        bottom += values
    right.set_xticks(x, TASKS)
    right.set_title("TensorFlow SavedModel, stages timed alone (decode: serving_default only)", fontsize=10)
    right.legend(fontsize=7)
    fig.suptitle("YOLOv8n demo models, NVIDIA H200, batch 8 (TF-TRT unavailable: no TensorRT 8.6)", fontsize=11)
    fig.tight_layout()
    fig.savefig(RES / "gpu.png", dpi=110)


def main() -> None:
    rows, before = load_run(RES / "raw"), load_run(RES / "raw-before")
    with open(RES / "raw" / "smi.csv") as f:
        smi = next(csv.DictReader(f, skipinitialspace=True))
    env = json.loads((RES / "raw" / "tf-tensorflow.json").read_text())["environment"]
    result = {
        "machine": {"nvidia_smi": smi, "tensorflow": env},
        "goals": goals(rows, before),
        "after": {f"{t}-{b}": r for (t, b), r in rows.items()},
        "before": {f"{t}-{b}": r for (t, b), r in before.items()},
    }
    (RES / "results.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RES / "README.md").write_text(readme(rows, before, smi, env))
    chart(rows, before)
    print("wrote", RES / "results.json", RES / "README.md", RES / "gpu.png")


if __name__ == "__main__":
    main()
