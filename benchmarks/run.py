"""Benchmark the five demo models and write JSON + Markdown + PNG per task, plus a summary.

    python benchmarks/run.py --out benchmarks/results/cpu                 # what run_cpu.sh runs
    python benchmarks/run.py --out DIR --tasks detect --iterations 5      # one task, fewer calls
    python benchmarks/run.py --convert-only DIR                           # conversions only (to carry elsewhere)
    python benchmarks/run.py --out DIR --saved-models DIR                 # reuse those conversions

Each task runs in its own process (memory is returned between tasks). Rows:
TF-TRT per precision, TensorFlow SavedModel, TensorFlow + XLA, Ultralytics
PyTorch, ONNX Runtime (Ultralytics); see tftrt_yolo/benchmark.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TASKS = ("detect", "segment", "classify", "pose", "obb")
HERE = Path(__file__).resolve().parent


def one_task(a) -> None:
    from tftrt_yolo.benchmark import benchmark
    from tftrt_yolo.demo import demo_model

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = None
    if a.saved_models:
        folder = Path(a.saved_models) / a.one
        saved = {p.name: p for p in folder.iterdir() if (p / "saved_model.pb").is_file()} if folder.is_dir() else None
    t0 = time.time()
    table = benchmark(
        demo_model(a.one),
        precisions=[p for p in a.precisions.split(",") if p],
        batch=a.batch,
        imgsz=a.imgsz,
        warmup=a.warmup,
        iterations=a.iterations,
        val_images=a.val_images,
        runtimes=tuple(a.runtimes.split(",")),
        saved_models=saved,
        verbose=not a.quiet,
    )
    table.to_json(out / f"{a.one}.json")
    (out / f"{a.one}.md").write_text(table.to_markdown(title=f"yolov8n-{a.one}-demo"))
    table.plot(out / f"{a.one}.png")
    print(table.to_markdown(title=f"yolov8n-{a.one}-demo"))
    print(f"{a.one}: {time.time() - t0:.0f} s", flush=True)


def convert_only(a) -> None:
    from tftrt_yolo.conversion import convert
    from tftrt_yolo.demo import demo_model

    for task in a.tasks.split(","):
        for backend in ("tensorflow", "xla"):
            path = convert(demo_model(task), imgsz=a.imgsz, batch=a.batch, backend=backend,
                           output=Path(a.convert_only) / task, name=f"{backend}-tmp", verbose=False)
            target = Path(a.convert_only) / task / backend
            if target.exists():
                import shutil

                shutil.rmtree(target)
            path.rename(target)
            path.parent.rmdir()
            print(target, flush=True)


def summary(out: Path, tasks) -> str:
    from tftrt_yolo.benchmark import BenchmarkTable

    tables = [BenchmarkTable.from_json(out / f"{t}.json") for t in tasks if (out / f"{t}.json").is_file()]
    if not tables:
        return ""
    m = tables[0].machine
    lines = [
        f"Machine: {m['summary']}, {m['platform']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(m["versions"].items())) + ".",
        "",
        "End-to-end latency (trimmed mean, ms per image at batch "
        f"{tables[0].batch}) and the task's main accuracy metric per runtime:",
        "",
    ]
    names = [r.name for r in tables[0].rows]
    lines += ["| Task | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for t in tables:
        cells = []
        for r in t.rows:
            if not r.ok or r.end_to_end is None:
                cells.append("n/a")
                continue
            metric = ""
            if r.val is not None:
                from tftrt_yolo.validate import headline

                key, value = list(headline(r.val).items())[-1 if t.task != "classify" else 0]
                metric = f" ({key} {value:.3f})"
            cells.append(f"{r.end_to_end.trimmed_mean:.1f}{metric}")
        lines.append(f"| {t.task} | " + " | ".join(cells) + " |")
    lines += ["", "Goals (SavedModel end-to-end vs the references, same run):", "",
              "| Task | SavedModel row | Goal | Measured | Met |", "|---|---|---|---:|:---:|"]
    for t in tables:
        for g in t.goals():
            lines.append(f"| {t.task} | {g['row']} | {g['goal']} | {g['text']} | {'yes' if g['met'] else 'NO'} |")
    lines += ["", "Per-task tables: " + ", ".join(f"[{t.task}]({t.task}.md)" for t in tables) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(HERE / "results" / "cpu"))
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--imgsz", type=int, default=None, help="default: each model's training size")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--val-images", type=int, default=None, help="default: all val images; 0: no accuracy")
    p.add_argument("--precisions", default="fp32,fp16,int8")
    p.add_argument("--runtimes", default="tensorrt,tensorflow,xla,pytorch,onnxruntime")
    p.add_argument("--saved-models", default=None, help="reuse conversions from --convert-only")
    p.add_argument("--convert-only", default=None, metavar="DIR")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        return one_task(a)
    if a.convert_only:
        return convert_only(a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for task in a.tasks.split(","):
        args = [sys.executable, __file__, "--one", task] + [x for x in sys.argv[1:]]
        if subprocess.run(args, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).returncode != 0:
            failed.append(task)
    text = summary(out, TASKS)
    (out / "summary.md").write_text(text)
    print(text)
    (out / "run.json").write_text(json.dumps({"argv": sys.argv[1:], "failed": failed}, indent=2))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
