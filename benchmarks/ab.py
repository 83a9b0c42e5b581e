"""Compare two conversions of the same demo models end to end, alternating their calls.

    .venv/bin/python benchmarks/ab.py --a DIR_A --b DIR_B [--tasks detect,segment] [--calls 15] [--json FILE]

DIR_A and DIR_B hold one converted model per task (DIR/<task>/1, as benchmarks/stages.py describes), for
example the same demo models converted from two commits. On a shared machine whose load changes from one
second to the next, calling A and B in turn (A B A B ...) exposes both to the same load, which timing one
after the other does not. Per task and signature: median ms per image over `--calls` calls of each (batch
of the task's first 8 demo val images; `predict_images` gets them resized to the first one's size), after
two warm-up calls each; outputs copied to the host. Also checks that A and B return identical outputs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from stages import TASKS, demo_batch


def inputs(task: str) -> dict:
    encoded, uint8, thresholds = demo_batch(task)
    return {"serving_default": dict(images=encoded, **thresholds), "predict_images": dict(images=uint8, **thresholds)}


def compare(a_dir: Path, b_dir: Path, task: str, calls: int) -> dict:
    models = {"a": tf.saved_model.load(str(a_dir)), "b": tf.saved_model.load(str(b_dir))}
    rows = {}
    for signature, kwargs in inputs(task).items():
        n = int(kwargs["conf"].shape[0])
        fns = {k: m.signatures[signature] for k, m in models.items()}
        outs = {k: {name: t.numpy() for name, t in fn(**kwargs).items()} for k, fn in fns.items()}
        identical = outs["a"].keys() == outs["b"].keys() and all(
            outs["a"][k].shape == outs["b"][k].shape and np.array_equal(outs["a"][k], outs["b"][k]) for k in outs["a"]
        )
        times = {k: [] for k in fns}
        for _ in range(calls + 1):  # the first round warms up a second time
            for k, fn in fns.items():
                start = time.perf_counter()
                for t in fn(**kwargs).values():
                    t.numpy()
                times[k].append(time.perf_counter() - start)
        a, b = (statistics.median(times[k][1:]) / n * 1000.0 for k in ("a", "b"))
        rows[signature] = {"a_ms": round(a, 2), "b_ms": round(b, 2), "a_over_b": round(a / b, 2), "identical": identical}
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--calls", type=int, default=15)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    result = {}
    for task in a.tasks.split(","):
        result[task] = compare(Path(a.a) / task / "1", Path(a.b) / task / "1", task, a.calls)
        print(task, json.dumps(result[task]), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
