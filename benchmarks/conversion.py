"""Conversion time and peak memory per task: `tftrt-yolo convert` on each demo model, in a fresh process.

    .venv/bin/python benchmarks/conversion.py                      # all tasks -> benchmarks/results/cpu/conversion.*
    .venv/bin/python benchmarks/conversion.py --tasks detect --backend xla

Each conversion runs as its own `python -m tftrt_yolo convert` process (as a
user runs it, imports included) into a temporary folder. Peak memory is the
largest resident set of the whole process tree (the CLI and its onnx2tf
child), sampled every 50 ms with psutil.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TASKS = ("detect", "segment", "classify", "pose", "obb")
HERE = Path(__file__).resolve().parent


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of `process` and all its descendants now (0 for any that already ended)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def convert_once(task: str, backend: str, batch: int, out: Path) -> dict:
    from tftrt_yolo.demo import demo_model

    command = [sys.executable, "-m", "tftrt_yolo", "convert", f"--model={demo_model(task)}", f"--backend={backend}",
               f"--batch={batch}", f"--output={out}", "--name=m"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    watched, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    log = child.stdout.read()
    if child.returncode != 0:
        raise SystemExit(f"convert {task} failed:\n{log[-3000:]}")
    return {"task": task, "backend": backend, "batch": batch, "seconds": round(seconds, 1),
            "peak_rss_mib": round(peak / 2**20)}


def main() -> None:
    from tftrt_yolo.benchmark import machine_info

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--backend", default="tensorflow")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "results" / "cpu"))
    a = p.parse_args()
    rows = []
    for task in a.tasks.split(","):
        with tempfile.TemporaryDirectory(prefix="tftrt_yolo-conv-") as tmp:
            rows.append(convert_once(task, a.backend, a.batch, Path(tmp)))
        print(rows[-1], flush=True)
    machine = machine_info()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "conversion.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    lines = [f"Conversion of the demo models (`python -m tftrt_yolo convert --model=DEMO_MODEL --backend={a.backend} "
             f"--batch={a.batch}`, a fresh process each, imports included) on {machine['summary']}.", "",
             "| Task | Seconds | Peak RSS (MiB, process tree) |", "|---|---:|---:|"]
    lines += [f"| {r['task']} | {r['seconds']:.1f} | {r['peak_rss_mib']} |" for r in rows]
    (out / "conversion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
