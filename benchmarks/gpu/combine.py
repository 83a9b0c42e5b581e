"""Runs HERE: turns what the GPU machine wrote (benchmarks/results/gpu/raw-<commit>/, one folder per graph
measured, listed in RUNS) into benchmarks/results/gpu/results.json, README.md and gpu.png.

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
# (commit the models were converted from, what its graph did); the last is the current one
RUNS = (
    ("f251197", "per-device dispatch; int32 fixed-point letterbox (run on the host on a GPU), image-by-image mask resize"),
    ("3dbfb94", "float fixed-point letterbox, batched mask resize and matrix NMS on the GPU"),
    ("657b899", "one-size batches: shared letterbox tables and one mask resize; NMS sorts only the candidates "
                "and checks its loop every 4 rounds"),
    ("b3b2ceb", "decoded images padded on the GPU instead of padded and concatenated on the host"),
    ("11239ae", "arithmetic on image sizes (letterbox geometry, resampling tables, the scale back to the image) "
                "pinned to the CPU; stages timed as the signatures run them, for any image size"),
    ("97e94c4", "the same graph (models of 11239ae); `predict_images` also timed with its batch passed through "
                "`ImageBatchBuffer` (`predict_images_staged`), as `YoloModel.predict_arrays` sends it"),
    ("0adfa30", "XLA backend: greedy NMS compiled by XLA on a GPU (each image's 1024 best candidates, the dynamic "
                "version as fallback); the plain graph unchanged; stages also time `nms_xla`"),
    ("931ed58", "on a GPU, 0adfa30's graph but for the letterbox's column weights held per channel (4b0c055) and "
                "classify's resize computing only the crop (e0e58b2); the rest of the changes since run on a CPU. "
                "A slower session: detect's network 0.78, segment's 1.39 ms/img"),
)
# runs whose graph did not change: the commit their models were converted from
MODELS_FROM = {"97e94c4": "11239ae"}
TRT_STATUS = "unavailable: no TensorRT 8.6 libraries on this machine"
# the goals: predict_images (uint8 batch in), end to end, ms/img at batch 8
GOAL = {"detect": 1.0, "segment": 2.0, "classify": 0.5}
GOAL_XLA_DETECT, GOAL_SERVING_DETECT, GOAL_NEAR_DETECT = 0.6, 1.5, 1.10
STAGES_BEFORE = "b3b2ceb"  # the last run whose stages were traced for one shape


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


def before_after(ab_row: dict, key: str) -> str:
    """'before / after' of one measure of a `savedmodel_ab.py` row (its `<key>/old` and `<key>/new`)."""
    return f"{ms(ab_row.get(f'{key}/old'))} / {ms(ab_row.get(f'{key}/new'))}"


def identical(ab_row: dict) -> str:
    """Whether every output of a `savedmodel_ab.py` row was identical, as a table cell."""
    return "yes" if all(ab_row.get("equal", {0: 0}).values()) else "no"


def best_arrays(row: dict | None) -> float | None:
    """`predict_images` as a user of this package sends it: through `ImageBatchBuffer` where that was timed,
    else a numpy batch converted by TensorFlow."""
    return mean(row, "predict_images_staged") or mean(row, "predict_images")


def fastest(runs: list[dict], task: str, key: str) -> float | None:
    """The lowest mean of `key` over the PyTorch rows of every session: the goals are judged against the
    fastest PyTorch measured on that machine."""
    values = [mean(run.get((task, "pytorch")), key) for run in runs]
    return min((v for v in values if v is not None), default=None)


def goals(runs: dict) -> list[dict]:
    rows, all_runs = runs[RUNS[-1][0]], list(runs.values())
    out = []
    detect = best_arrays(rows.get(("detect", "tensorflow")))
    for task in TASKS:
        plain, xla = (rows.get((task, b)) for b in ("tensorflow", "xla"))
        limit = GOAL.get(task, (detect or 0.0) * GOAL_NEAR_DETECT)
        out.append({
            "task": task,
            "predict_images": best_arrays(plain),
            "predict_images_numpy": mean(plain, "predict_images"),
            "predict_images_limit": limit,
            "predict_images_xla": best_arrays(xla),
            "serving_default": mean(plain, "serving_default"),
            "serving_default_xla": mean(xla, "serving_default"),
            "pytorch_files": fastest(all_runs, task, "end_to_end"),
            "pytorch_arrays": fastest(all_runs, task, "end_to_end_arrays"),
        })
    return out


def first_line(path: Path) -> str:
    return path.read_text().splitlines()[0].strip()


def readme(runs: dict, smi: dict, env: dict) -> str:
    current = RUNS[-1][0]
    rows = runs[current]
    L = ["# GPU benchmark: the five demo models end to end on one NVIDIA H200 (batch 8)\n"]
    L.append(f"Measured {first_line(RES / f'raw-{current}' / 'smi.txt')} (device clock), models converted from "
             f"commit {MODELS_FROM.get(current, current)}, timing scripts of {current}. Every number is **milliseconds per image** at batch 8 (one call / 8), mean of 100 "
             "calls after 20 warm-up calls, every output copied to the host. The method and how to reproduce: "
             "[METHOD.md](../../gpu/METHOD.md).\n")
    L.append(f"GPU {smi['name']} (driver {smi['driver_version']}, {smi['memory.total [MiB]']}); TensorFlow "
             f"{env['tensorflow']} (CUDA {env['build_info']['cuda_version']}); TF-TRT rows: **{TRT_STATUS}** (TensorFlow "
             "2.17.1 needs TensorRT 8.6.1, which no machine here can install). No TF-TRT number is claimed.\n")
    L.append("## Goals (issue 10)\n")
    L.append("`predict_images`: the uint8 batch passed through `ImageBatchBuffer`, as `YoloModel.predict_arrays` and "
             "`predict(array)` send it (a numpy batch converted by TensorFlow in the next column). PyTorch: the "
             "fastest session's mean (arrays: the same decoded uint8 batch; files: the encoded files, as "
             "`serving_default`). \"Faster\" compares the plain TensorFlow graph.\n")
    L.append("| task | `predict_images` (uint8 batch) | the same from numpy | XLA `predict_images` | "
             "`serving_default` (files) | PyTorch, arrays / files | faster than PyTorch (arrays / files) |")
    L.append("|---|---|---:|---|---|---|---|")
    for g in goals(runs):
        task = g["task"]
        limit = g["predict_images_limit"]
        label = f"<= {limit:.2f}" + ("" if task in GOAL else " (detect + 10 %)")
        xla = verdict(g["predict_images_xla"], GOAL_XLA_DETECT) + " <= 0.6" if task == "detect" else ms(g["predict_images_xla"])
        serving = verdict(g["serving_default"], GOAL_SERVING_DETECT) + " <= 1.5" if task == "detect" else ms(g["serving_default"])
        faster = [a is not None and b is not None and a < b for a, b in ((g["predict_images"], g["pytorch_arrays"]),
                                                                          (g["serving_default"], g["pytorch_files"]))]
        L.append(f"| {task} | {verdict(g['predict_images'], limit)} {label} | {ms(g['predict_images_numpy'])} | "
                 f"{xla} | {serving} | "
                 f"{ms(g['pytorch_arrays'])} / {ms(g['pytorch_files'])} | "
                 f"{' / '.join('yes' if f else 'no' for f in faster)} |")
    L.append("\n## End to end, graph by graph\n")
    L.append("Each column is the same script on the same kind of machine, with the models converted from that "
             "commit (\"-\": not measured; PyTorch ran in the first two sessions and again with 97e94c4, in its second session). Sessions differ: the same "
             "detect network took 0.85, 0.72, 0.71, 0.72 and 0.72 ms/img in five of them (obb's 0.71, 0.93 and 1.02 in "
             "the last three; with 0adfa30, segment's, pose's and obb's networks took 36-46 % longer than with 97e94c4, "
             "1.43, 1.03 and 1.02 against 1.01, 0.76 and 0.70, their graphs unchanged), and paths a commit did not touch moved by up to 20 % (pose `predict_images` 1.87 with 657b899, "
             "1.45 with b3b2ceb, which changed only decoding), so a difference between two columns below about 10-20 % "
             "is not a change of the graph; a change is judged by models of both commits timed in one session "
             "(below):\n")
    L.extend(f"- **{commit if commit != current else current + ' (current)'}**: {what}" for commit, what in RUNS)
    L.append("\nThe `predict_images` columns are a numpy batch converted by TensorFlow in every run, so that they "
             "compare; through `ImageBatchBuffer` it is in the goals table above.")
    commits = [c for c, _ in RUNS]
    L.append("\n| task | backend | " + " | ".join(f"`serving_default` {c}" for c in commits) + " | "
             + " | ".join(f"`predict_images` {c}" for c in commits) + " | network |")
    L.append("|---|---|" + "---:|" * (2 * len(commits) + 1))
    for task in TASKS:
        for backend, name in BACKENDS:
            cells = [ms(mean(runs[c].get((task, backend)), key)) for key in ("serving_default", "predict_images")
                     for c in commits]
            L.append(f"| {task} | {name} | " + " | ".join(cells) + f" | {ms(mean(rows.get((task, backend)), 'network'))} |")
        t = {c: runs[c].get((task, "pytorch")) for c in commits}
        cells = [f"{ms(mean(t[c], 'end_to_end'))} (files)" if t[c] else "" for c in commits]
        cells += [f"{ms(mean(t[c], 'end_to_end_arrays'))} (arrays)" if t[c] else "" for c in commits]
        network = next((mean(t[c], "network") for c in reversed(commits) if t[c]), None)
        L.append(f"| {task} | Ultralytics PyTorch | " + " | ".join(cells) + f" | {ms(network)} |")
    L.append("\n## Where each millisecond goes (TensorFlow SavedModel rows, stages timed alone)\n")
    L.append("`decode`: encoded files -> padded batch on the GPU (decoded on the CPU, in parallel); `preprocess_images`: uint8 batch on the "
             "GPU -> network input (letterbox; classify: resize + crop); `network`: `run_network`; `nms`: the boxes "
             "kept; `postprocess`: raw heads -> final results on the host (NMS included; images of different sizes, "
             "as `serving_default` has). `_xla`: the same stage compiled by XLA, where it compiles. Each stage is "
             "traced as the signatures are, for any batch and image size. In brackets: "
             f"{STAGES_BEFORE}, whose stages were traced for the inputs' own shapes, so that Grappler folded every "
             "computation on sizes into constants: lower than what its SavedModels ran.\n")
    compiled_stages = ("preprocess_images_xla", "nms_xla", "postprocess_xla")
    L.append("| task | " + " | ".join(STAGES + compiled_stages) + " |")
    L.append("|---|" + "---:|" * (len(STAGES) + len(compiled_stages)))
    previous = runs[STAGES_BEFORE]
    for task in TASKS:
        r, b = rows.get((task, "tensorflow"), {}), previous.get((task, "tensorflow"), {})
        cells = [f"{ms(mean(r, s))} ({ms(mean(b, s))})" for s in STAGES + compiled_stages]
        L.append(f"| {task} | " + " | ".join(cells) + " |")
    seg = rows.get(("segment", "tensorflow"), {})
    L.append(f"\nSegment's masks after NMS (letterbox-size masks of the kept boxes, then each image's size, on the "
             f"host): {ms(mean(seg, 'masks'))} ms/img for images of different sizes, {ms(mean(seg, 'masks_one_size'))} "
             "for a batch of one size (`predict_images`).\n")
    L.extend(experiments())
    L.append("![end to end and stages per task](gpu.png)\n")
    L.append("Files: `results.json` (every row's full statistics, per commit), `raw-<commit>/` (what the device "
             "wrote), `gpu.png`.")
    return "\n".join(L) + "\n"


def compiled_nms_section(folder: Path) -> list[str]:
    """0adfa30 (greedy NMS compiled by XLA in the XLA backend) against 11239ae, in one session."""
    ab = {r["task"]: r for r in json.loads((folder / "0adfa30-vs-11239ae-xla.json").read_text())}
    plain = {r["task"]: r for r in json.loads((folder / "0adfa30-vs-11239ae-tensorflow.json").read_text())}
    L = ["**Greedy NMS compiled by XLA (0adfa30) against 11239ae, XLA backend** (`savedmodel_ab.py --backend xla`, "
         "three alternating blocks of 10 warm-up + 40 calls, mean of the blocks, ms/img; the first call of each "
         "signature, where XLA compiles, in seconds). `capped_greedy_nms` ranks each image's 1024 best candidates "
         "with static shapes, so XLA compiles it once per batch size; the dynamic version runs only where some image "
         "has more candidates and fewer than `max_det` kept among them. The old model's first call came first and "
         "also paid the process's own start-up, so the first-call columns say only what a new input shape costs an "
         "XLA model: 1-4 s. Every output was identical to 11239ae's. Obb "
         "(rotated NMS, not compiled) and classify (no NMS) did not change, which shows the blocks' spread. The "
         "plain graph's models of both commits, one block, gave identical outputs and times within that spread "
         "(its graph did not change).\n"]
    L.append("| task | `predict_images` (buffer) before / after | from the GPU before / after | `serving_default` "
             "before / after | first `predict_images` call, s, before / after | outputs identical |")
    L.append("|---|---:|---:|---:|---:|---|")
    for task in TASKS:
        r = ab.get(task, {})
        cells = [before_after(r, k)
                 for k in ("predict_images_staged", "predict_images_gpu_input", "serving_default")]
        first = r.get("first_call_s", {})
        cells.append(f"{first.get('predict_images/old', 0):.1f} / {first.get('predict_images/new', 0):.1f}")
        same = all(r.get("equal", {0: 0}).values()) and all(plain.get(task, {}).get("equal", {0: 0}).values())
        L.append(f"| {task} | " + " | ".join(cells) + f" | {'yes' if same else 'no'} |")
    L.append("\nA profile of one XLA detect call after the change ([0adfa30-profile-detect-xla.tar.gz]"
             "(variants/0adfa30-profile-detect-xla.tar.gz), `profile_ops.py` and `profile_gpu_idle.py`; 10.4 ms with "
             "the profiler on, GPU busy 3.9 ms): 1.2 ms pass before the batch's copy to the GPU starts, the copy "
             "takes 1.0 ms, the network's XLA module 4.5 ms on the host (308 kernels, GPU busy 2.65 ms), the compiled "
             "NMS 0.45 ms, and the TensorFlow ops around it (the heads' transpose and split, the gathers of the kept "
             "boxes, the scale back to each image, the outputs' copies) 1.9 ms for 0.2 ms of GPU work. Those ops are "
             "what the post-processing still costs.")
    return L + compiled_scaling_rows(folder) + [""]


def cpu_work_section(folder: Path) -> list[str]:
    """4b0c055 (segment masks box by box on a CPU, letterbox weights per channel) against 0adfa30 on the H200."""
    runs = {b: {r["task"]: r for r in json.loads((folder / f"4b0c055-vs-0adfa30-{b}.json").read_text())}
            for b in ("tensorflow", "xla")}
    L = ["**The CPU work of 0f650e4 and 4b0c055 seen from the GPU** (`savedmodel_ab.py`, both backends, two "
         "alternating blocks of 10 warm-up + 40 calls, ms/img, a later session that was slower throughout). "
         "On a CPU, segment computes each mask inside its box only and the letterbox multiplies by per-channel "
         "column weights (`benchmarks/results/cpu/masks-in-boxes.md`); on a GPU the first changes nothing (segment's "
         "GPU branch keeps its whole-mask ops) and the second only the shape of a table. Every output of every "
         "signature was identical to 0adfa30's, and the times stay within the blocks' spread.\n"]
    L.append("| task | backend | `predict_images` (buffer) before / after | from the GPU before / after | "
             "`serving_default` before / after | outputs identical |")
    L.append("|---|---|---:|---:|---:|---|")
    for task in TASKS:
        for backend, rows in runs.items():
            r = rows.get(task, {})
            cells = [before_after(r, k)
                     for k in ("predict_images_staged", "predict_images_gpu_input", "serving_default")]
            L.append(f"| {task} | {backend} | " + " | ".join(cells)
                     + f" | {identical(r)} |")
    return L + [""]


def results_on_host_section(folder: Path) -> list[str]:
    """8b095c9 (reverted): every output copied to the host inside the graph, against 931ed58; and the empty batches."""
    ab = {r["task"]: r for r in json.loads((folder / "8b095c9-vs-931ed58-tensorflow.json").read_text())}
    transfer = json.loads((folder / "transfer-in-function.json").read_text())
    empty = json.loads((folder / "empty-batch.json").read_text())
    calls = [v for r in empty for k, v in r.items() if k != "task"]
    L = ["**Results copied to the host inside the graph (8b095c9, reverted)**: each output passed through an "
         "Identity pinned to the CPU at the end of the graph, so that TensorFlow's executor copies it from the "
         "GPU (into pinned memory, each as soon as it is ready) instead of `.numpy()` copying the returned GPU "
         "tensors one after the other. `transfer_probe.py`, same session (slower than the earlier ones): "
         f"segment's masks (8 x 10 x 691 x 760, uint8) reached the host in {ms(transfer['d2h_masks']['mean'])} "
         f"ms/img by `.numpy()` and in {ms(transfer['d2h_masks_in_function']['mean'])} copied inside a function. "
         "End to end (`savedmodel_ab.py`, tensorflow backend, two alternating blocks of 10 warm-up + 40 calls, "
         "ms/img, 931ed58 before, 8b095c9 after) nothing moved beyond the blocks' spread, and a loaded "
         "signature returned its outputs on the GPU all the same (the return values of its wrapper follow the "
         "call, not the Identity inside it), so it was reverted.\n"]
    L.append("| task | `predict_images` (buffer) before / after (the two blocks) | from the GPU before / after | "
             "`serving_default` before / after | outputs identical |")
    L.append("|---|---:|---:|---:|---|")
    for task in ("detect", "segment"):
        r = ab.get(task, {})
        blocks = lambda k, v: ", ".join(ms(r[f"{k}/{v}/{b}"]["mean"]) for b in range(2))  # noqa: E731
        cells = [before_after(r, k)
                 + (f" ({blocks(k, 'old')} / {blocks(k, 'new')})" if k == "predict_images_staged" else "")
                 for k in ("predict_images_staged", "predict_images_gpu_input", "serving_default")]
        L.append(f"| {task} | " + " | ".join(cells) + f" | {identical(r)} |")
    failed = sum(isinstance(c, str) for c in calls)
    L.append(f"\n**Empty batches on the GPU** (`empty_batch_check.py`, models of 8b095c9): {len(calls) - failed} of "
             f"{len(calls)} signature calls (five tasks, both backends, both signatures) with no images returned "
             "empty results" + (f"; {failed} failed (see `variants/empty-batch.json`)" if failed else "")
             + ", as `tests/test_convert.py` checks on a CPU.\n")
    return L


def compiled_scaling_rows(folder: Path) -> list[str]:
    """53b2f97 (reverted): NMS and the scaling of boxes and keypoints in one XLA computation, against 0adfa30."""
    ab = {r["task"]: r for r in json.loads((folder / "53b2f97-vs-0adfa30-xla.json").read_text())}
    stages = {r["task"]: r for r in json.loads((folder / "53b2f97-xla-rows.json").read_text())["rows"]}
    L = ["\n**NMS and the scaling back to each image in one XLA computation (53b2f97, reverted)**: the same "
         "capped NMS, with the boxes' (and keypoints') scaling computed for all 1024 candidates inside it and the "
         "outputs trimmed after, timed against 0adfa30 the same way (a second session; post-processing: the stage "
         "as the XLA backend runs it, dynamic / compiled, same session). Segment's outputs (its masks stay outside) "
         "were identical; detect's and pose's were not: XLA's GPU code for that arithmetic does not give "
         "TensorFlow's floats bit for bit (not examined further: the run recorded only whether the outputs are "
         "identical). With the end-to-end times within the blocks' spread, it was reverted: the outputs must stay "
         "exactly those of the dynamic graph.\n"]
    L.append("| task | `predict_images` (buffer) before / after | from the GPU before / after | post-processing, "
             "ms/img | outputs identical |")
    L.append("|---|---:|---:|---:|---|")
    for task in ("detect", "pose", "segment"):
        r, st = ab.get(task, {}), stages.get(task, {})
        cells = [before_after(r, k)
                 for k in ("predict_images_staged", "predict_images_gpu_input")]
        cells.append(f"{ms(mean(st, 'postprocess'))} / {ms(mean(st, 'postprocess_xla'))}")
        L.append(f"| {task} | " + " | ".join(cells) + f" | {identical(r)} |")
    return L


def experiments() -> list[str]:
    """The tables of benchmarks/gpu/experiments/' results (variants/), and what the profile showed."""
    folder = RES / "variants"
    ab = {r["task"]: r for r in json.loads((folder / "657b899-vs-d3b8012.json").read_text())}
    parts = {r["task"]: r for r in json.loads((folder / "b3b2ceb-decomposition.json").read_text())}
    same_session = {r["task"]: r for r in json.loads((folder / "11239ae-vs-b3b2ceb.json").read_text())}
    again = {r["task"]: r for r in json.loads((folder / "11239ae-vs-b3b2ceb-segment-obb.json").read_text())}
    parts_now = {r["task"]: r for r in json.loads((folder / "11239ae-decomposition.json").read_text())}
    transfer = json.loads((folder / "transfer.json").read_text())
    placement = {r["task"]: r for r in json.loads((folder / "post-placement.json").read_text())}
    image_batch = {r["task"]: r for r in json.loads((folder / "97e94c4-image-batch.json").read_text())}
    L = ["## What the experiments showed (`benchmarks/gpu/experiments/`)\n"]
    L.extend(compiled_nms_section(folder))
    L.extend(cpu_work_section(folder))
    L.extend(results_on_host_section(folder))
    L.append("**A numpy batch converted by TensorFlow against the same batch through `ImageBatchBuffer`** "
             "(`savedmodel_ab.py` of 97e94c4, three alternating blocks of 10 warm-up + 40 calls, mean of the blocks, "
             "ms/img; the models of 11239ae, and in brackets b3b2ceb's, timed in the same blocks). A signature called "
             "with a numpy array copies it into fresh memory; `ImageBatchBuffer` copies it once into an aligned "
             "buffer it keeps (an aligned RGB batch is not copied at all) and hands that to TensorFlow through "
             "DLPack. The batch still crosses to the GPU from pageable memory: the rest of the gap to a batch "
             "already on the GPU.\n")
    L.append("| task | from numpy | through `ImageBatchBuffer` | already on the GPU |")
    L.append("|---|---:|---:|---:|")
    for task in TASKS:
        r = image_batch.get(task, {})
        L.append(f"| {task} | " + " | ".join(f"{ms(r.get(f'{k}/new'))} ({ms(r.get(f'{k}/old'))})" for k in
                                             ("predict_images", "predict_images_staged", "predict_images_gpu_input")) + " |")
    L.append("\nThe buffer saves 0.1-0.4 ms/img where the batch is large (detect, segment, obb: 640x480 and larger "
             "images) and nothing measurable for classify's and pose's batches.\n")
    layout = json.loads((folder / "97e94c4-layout.json").read_text())
    L.append("**Grappler's layout optimizer turned off** (`process_probe.py --layout off`, then called `layout_probe.py`; a second session of 97e94c4: four "
             "processes, optimizer as TensorFlow sets it / off / as set / off, 10 warm-up + 40 calls each, ms/img, "
             "mean of the two processes). A profile showed cuDNN transposing NCHW to NHWC and back around the "
             "network's float32 convolutions (the optimizer rewrites them to NCHW; the TF32 kernels cuDNN picks "
             "want NHWC). Turning it off changed the network's time by -14 % to +15 % depending on the task, "
             "within the spread between two processes of the same setting (detect's network 0.72 and 0.66), and "
             "changed the outputs slightly (other convolution algorithms), so it is not used.\n")
    L.append("| task | network, as set / off | `predict_images` (buffer), as set / off | `serving_default`, as set / off |")
    L.append("|---|---:|---:|---:|")
    for task in TASKS:
        cells = []
        for key in ("network", "predict_images_staged", "serving_default"):
            means = [[r[key]["mean"] for r in layout if r["task"] == task and r["layout"] == setting]
                     for setting in ("default", "off")]
            cells.append(" / ".join(ms(sum(m) / len(m)) if m else "-" for m in means))
        L.append(f"| {task} | " + " | ".join(cells) + " |")
    L.append("\n**Settings of the whole process** (`process_probe.py`, models of 0adfa30, one process per setting, "
             "run once each one after the other in one session, 10 warm-up + 40 calls, trimmed mean ms/img; "
             "`variants/0adfa30-process-*.json`). `TF_GPU_THREAD_MODE=gpu_private` gives the GPU its own threads "
             "to launch kernels; `--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUDNN,CUSTOM_CALL` in "
             "`XLA_FLAGS` has XLA replay a module's kernels as CUDA graphs. Neither moves the times in one "
             "direction beyond the 10-20 % between processes (private threads: classify's `predict_images` "
             "faster, every `serving_default` slower), so the product sets neither.\n")
    L.append("| task | setting | network | `predict_images` (buffer) | `serving_default` |")
    L.append("|---|---|---:|---:|---:|")
    for name, label in (("tf", "plain, as TensorFlow sets it"), ("tfpriv", "plain, gpu_private"), ("xla", "XLA, as set"),
                        ("xlapriv", "XLA, gpu_private"), ("xlacb", "XLA, command buffers")):
        for row in json.loads((folder / f"0adfa30-process-{name}.json").read_text()):
            cells = [ms(row[k]["trimmed_mean"]) for k in ("network", "predict_images_staged", "serving_default")]
            L.append(f"| {row['task']} | {label} | " + " | ".join(cells) + " |")
    L.append("\n**Where one segment `predict_images` call spends its time** (the profiler trace of 11239ae's model "
             "that `decompose.py` took, [11239ae-profile-segment.tar.gz](variants/11239ae-profile-segment.tar.gz), "
             "read with `profile_gpu_idle.py TRACE 4.9,9.37,20.6,23.15`: the parts' bounds read off its GPU time per "
             "millisecond of the call, where the kernels' names change). The call took 26.2 ms with the profiler on, and the GPU "
             "was busy for 9.0 ms of it, in 919 kernels and copies:\n")
    L.append("| part (ms of the call) | span, ms | GPU busy, ms | kernels and copies |")
    L.append("|---|---:|---:|---:|")
    for part, span, busy, count in (("the numpy batch converted and copied (0-4.9)", 4.9, 1.39, 1),
                                    ("letterbox, with its tables sent from the host (4.9-9.4)", 4.5, 1.11, 111),
                                    ("network (9.4-20.6)", 11.2, 4.57, 585),
                                    ("NMS (20.6-23.2)", 2.6, 0.47, 125),
                                    ("masks, then the other outputs (23.2-26.2)", 3.0, 1.47, 97)):
        L.append(f"| {part} | {span:.1f} | {busy:.2f} | {count} |")
    L.append("\nEvery part but the input copy keeps the GPU idle most of the time: the host dispatching one small "
             "kernel after another is the bound, the network's included (about 125 of its 585 kernels are "
             "cuDNN's layout transposes; turning the layout optimizer off did not help, above). Fewer, larger "
             "operations (XLA for the network; TF-TRT engines where TensorRT exists) are what moves it, not "
             "faster kernels: segment's masks are 1.5 ms of GPU work for 8 images, NMS 0.5.\n")
    L.append("**11239ae against b3b2ceb, SavedModels timed in one session** (`savedmodel_ab.py`, tensorflow backend, "
             "two blocks of 10 warm-up + 40 calls per model, alternating, mean of the blocks, ms/img, every output "
             "identical): `predict_images` from a numpy batch (as the end-to-end rows), from a batch already on the "
             "GPU, and `serving_default`.\n")
    L.append("| task | `predict_images` before / after | from the GPU before / after | `serving_default` before / after "
             "| outputs identical |")
    L.append("|---|---:|---:|---:|---|")
    def ab_row(label, r):
        cells = [before_after(r, k)
                 for k in ("predict_images", "predict_images_gpu_input", "serving_default")]
        L.append(f"| {label} | " + " | ".join(cells) + f" | {identical(r)} |")

    for task in TASKS:
        ab_row(task, same_session.get(task, {}))
    for task in ("segment", "obb"):
        ab_row(f"{task}, again: four blocks, a second session", again.get(task, {}))
    L.append("\nA SavedModel takes images of any size, so the letterbox geometry and the resampling tables cannot "
             "fold into constants as they do in a function traced for one shape: on a GPU, each of those small "
             "float64 and int32 ops was a kernel launch, and each result the host needed (a range's bounds, a cond's "
             "predicate) a wait for the GPU. Pinned to the CPU they cost classify, whose Pillow taps include a loop, "
             "the most (`serving_default` 3.39 -> 1.51); detect and pose gain 0.1-0.3 ms/img; segment and obb are "
             "unchanged within the blocks' spread (up to 0.6 ms/img for segment; four blocks in a second session "
             "put them within -4 % to +6 %). This also explains the "
             "gap between a SavedModel and the same graph in a fresh function below (D against A): `decompose.py` "
             "traced its functions for the inputs' shapes. For the same reason the `cpu_tables` variant of "
             "`graph_ab.py` could not show a difference.\n")
    L.append("`decompose.py` on the models of 11239ae (second session, ms/img; letters as in the table further "
             "down; A2: the composed function traced for any image size, as a SavedModel is): the SavedModel is now "
             "no slower than the same graph in a fresh function of the same generality (D against A2). For detect "
             "and classify a function traced for one shape (A) still gains 0.1-0.2 ms/img: the rest of the size "
             "arithmetic, which Grappler folds there. Segment's composed functions were slower than its SavedModel "
             "in this session; that is not explained.\n")
    L.append("| task | A (one shape) | A2 (any size) | D (SavedModel, GPU input) | E (numpy input) | G (`serving_default`) |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for task in TASKS:
        r = parts_now.get(task)
        if r:
            L.append(f"| {task} | " + " | ".join(ms(mean(r, k)) for k in (
                "A_composed_gpu_input", "A2_composed_any_size_gpu_input", "D_saved_gpu_input",
                "E_saved_host_input", "G_saved_serving")) + " |")
    L.append("")
    L.append(f"**Moving data** (`transfer_probe.py`, ms/img): detect's uint8 batch (9.6 MB) reaches the GPU in "
             f"{ms(mean(transfer, 'h2d_from_host_tensor'))} from a TensorFlow host tensor but "
             f"{ms(mean(transfer, 'h2d_from_numpy'))} from a numpy array: most of what a numpy input costs is "
             "TensorFlow converting the array (a copy into fresh memory), not the transfer. Segment's masks (8 x 10 "
             f"masks of 691 x 760, 42 MB) take {ms(mean(transfer, 'd2h_masks'))} to reach the host; packing them 8 "
             f"pixels a byte on the GPU first was slower ({ms(mean(transfer, 'd2h_packed_only'))} packed, "
             f"{ms(mean(transfer, 'd2h_packed_then_unpacked'))} unpacked again on the host), so the masks stay "
             "uint8: their copy alone is 0.8 of segment's 2.0 ms/img goal.\n")
    L.append("**Post-processing on the host instead** (`post_placement.py`, 11239ae, a third session, two blocks of "
             "5 warm-up + 25 calls, ms/img): the composed graph, traced for any image size, with its post-processing "
             "where TensorFlow places it (the GPU) or under `tf.device(\"/CPU:0\")` (one copy of the raw heads, then "
             "the CPU branch): " + "; ".join(
                 f"{task} {ms(r.get('post_on_device'))} on the GPU, {ms(r.get('post_on_host'))} on the host"
                 + ("" if r.get("equal") else " (outputs not bit-identical: its probabilistic IoU runs on either device's "
                                              "float kernels; not examined further)")
                 for task, r in placement.items()) + ". No difference beyond the blocks' spread (up to 0.3 ms/img), so "
             "post-processing stays on the GPU.\n")
    L.append("**657b899 against d3b8012, piece by piece** (`graph_ab.py`, 10 warm-up + 50 calls, ms/img; every "
             "output identical): batched letterbox with one set of tables, NMS sorting only its candidates with 1, 2, "
             "4 or 8 suppression rounds per loop check, and segment's masks resized by one op.\n")
    L.append("| task | letterbox before / after | XLA letterbox before / after | NMS before | NMS r1 / r2 / r4 / r8 "
             "| rounds needed, candidates | mask resize, one size, before / after |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for task in TASKS:
        r = ab.get(task, {})
        nms_rounds = " / ".join(ms(mean(r, f"nms_new_r{k}")) for k in (1, 2, 4, 8))
        rounds = f"{r['rounds']}, {r['candidates_k']}" if "rounds" in r else "-"
        L.append(f"| {task} | {ms(mean(r, 'pre_old'))} / {ms(mean(r, 'pre_new'))} | {ms(mean(r, 'pre_xla_old'))} / "
                 f"{ms(mean(r, 'pre_xla_new'))} | {ms(mean(r, 'nms_old'))} | {nms_rounds} | {rounds} | "
                 f"{ms(mean(r, 'masks_original_uniform_old'))} / {ms(mean(r, 'masks_original_uniform_new'))} |")
    L.append("\nThe loop settles after one round of suppression on these images (the second round confirms it), so "
             "the number of rounds per check hardly matters here; 4 keeps denser scenes to one or two checks. Building "
             "the letterbox tables on the CPU (`cpu_tables`) showed no difference there (see above: those functions "
             "were traced for one shape) and 11239ae does it. Sorting only the k "
             "candidates (TopK) was slower than sorting all anchors (`candidates_new` 0.25 against `candidates_old` "
             "0.23 ms/img for detect), so 7277eba went back to the sort.\n")
    L.append("**Where a SavedModel call spends its time** (`decompose.py`, models of b3b2ceb, 10 warm-up + 50 calls, "
             "ms/img, outputs on the host): the same pre-processing, network and post-processing composed in a fresh "
             "`tf.function` with the uint8 batch already on the GPU (A) or coming from a numpy array (B), with the "
             "per-device dispatch of the pre-processing (C) or none at all (F); the SavedModel's `predict_images` with "
             "the batch on the GPU (D) or from numpy (E, what the end-to-end rows time); `serving_default` (G); and "
             "decoding before (657b899, padded on the host) and after (b3b2ceb, padded on the device).\n")
    keys = (("A", "A_composed_gpu_input"), ("B", "B_composed_host_input"), ("C", "C_composed_per_device_pre"),
            ("F", "F_composed_no_dispatch"), ("D", "D_saved_gpu_input"), ("E", "E_saved_host_input"),
            ("G", "G_saved_serving"))
    L.append("| task | " + " | ".join(k for k, _ in keys) + " | decode before / after |")
    L.append("|---|" + "---:|" * (len(keys) + 1))
    for task in TASKS:
        r = parts.get(task)
        if r:
            cells = [ms(mean(r, key)) for _, key in keys]
            L.append(f"| {task} | " + " | ".join(cells) + f" | {ms(mean(r, 'decode_old'))} / {ms(mean(r, 'decode_new'))} |")
    L.append("\n- The per-device dispatch costs nothing measurable (C and F against A), and a loaded SavedModel takes "
             "the GPU branch: `dispatch_check.py` ([dispatch-check.json](variants/dispatch-check.json)) found the "
             "batched branch chosen by traced and loaded functions and by the signature, whether DeviceIndex is left "
             "unplaced or asks for the first GPU, and the same speeds for models converted both ways (so the graph "
             "keeps it unplaced). A profile lists the untaken branch's `_Send` ops: they run for dead tensors, not "
             "because the branch does.\n"
             "- Copying the uint8 batch from a numpy array costs about 0.5 ms/img (B against A; 9.6 MB per call for "
             "detect), which no graph change removes; a caller that keeps frames on the GPU avoids it.\n"
             "- The SavedModel with the batch on the GPU was 0.1-0.5 ms/img slower than the composed function (D "
             "against A): the composed functions were traced for the inputs' shapes, so Grappler folded the letterbox "
             "geometry and tables that the SavedModel computes on every call (11239ae moves them to the CPU).\n"
             "- A profiler trace of one detect `predict_images` call (19.6 ms while traced, about 13 ms without) has "
             "the GPU busy for 5.4 ms: 4.6 ms of kernels and 0.8 ms of copies. The first 3.3 ms pass before the "
             "input's first host-to-device copy starts (converting the numpy array, checking the inputs). At batch 8 "
             "the call is bound by the host dispatching about 700 GPU operations, which is why XLA, which fuses them, "
             "gains the most.\n")
    return L


def chart(runs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = runs[RUNS[-1][0]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8))
    x = np.arange(len(TASKS))
    greys = ("#f5f5f5", "#eeeeee", "#d5d5d5", "#bdbdbd", "#a5a5a5")[-(len(RUNS) - 1):]
    series = [(f"{c}: TF predict_images", runs[c], "tensorflow", "predict_images", g)
              for (c, _), g in zip(RUNS[:-1], greys)]
    series += [("TF predict_images", rows, "tensorflow", "predict_images", "#ff8f00"),
               ("TF predict_images, ImageBatchBuffer", rows, "tensorflow", "predict_images_staged", "#e65100"),
               ("XLA predict_images", rows, "xla", "predict_images", "#1e88e5"),
               ("TF serving_default", rows, "tensorflow", "serving_default", "#ffcc80"),
               ("PyTorch arrays (fastest session)", None, "pytorch", "end_to_end_arrays", "#616161"),
               ("PyTorch files (fastest session)", None, "pytorch", "end_to_end", "#9e9e9e")]
    width = 0.85 / len(series)
    for i, (label, data, backend, key, color) in enumerate(series):
        if data is None:
            values = [fastest(list(runs.values()), t, key) or 0.0 for t in TASKS]
        else:
            values = [mean(data.get((t, backend)), key) or 0.0 for t in TASKS]
        bars = left.bar(x + (i - len(series) / 2 + 0.5) * width, values, width, label=label, color=color)
        left.bar_label(bars, fmt="%.1f", fontsize=5, padding=1)
    left.set_xticks(x, TASKS)
    left.set_ylabel("ms per image, batch 8 (mean)")
    left.set_title("end to end, outputs on the host", fontsize=10)
    left.set_ylim(0, left.get_ylim()[1] * 1.35)  # room for the legend above the bars
    left.legend(fontsize=7, ncol=3, loc="upper center")
    bottom = np.zeros(len(TASKS))
    colors = ("#8d6e63", "#ffb74d", "#64b5f6", "#81c784", "#e57373")
    for stage, color in zip(("decode", "preprocess_images", "network", "postprocess"), colors):
        values = np.array([mean(rows.get((t, "tensorflow")), stage) or 0.0 for t in TASKS])
        right.bar(x, values, 0.5, bottom=bottom, label=stage, color=color)
        bottom += values
    right.set_xticks(x, TASKS)
    right.set_title("TensorFlow SavedModel, stages timed alone (decode: serving_default only)", fontsize=10)
    right.legend(fontsize=7)
    fig.suptitle(f"YOLOv8n demo models, NVIDIA H200, batch 8, graph of {MODELS_FROM.get(RUNS[-1][0], RUNS[-1][0])} "
                 "(TF-TRT unavailable: no TensorRT 8.6)", fontsize=11)
    fig.tight_layout()
    fig.savefig(RES / "gpu.png", dpi=110)


def main() -> None:
    runs = {commit: load_run(RES / f"raw-{commit}") for commit, _ in RUNS}
    current = RES / f"raw-{RUNS[-1][0]}"
    with open(current / "smi.csv") as f:
        smi = next(csv.DictReader(f, skipinitialspace=True))
    env = json.loads((current / "tf-tensorflow.json").read_text())["environment"]
    result = {
        "machine": {"nvidia_smi": smi, "tensorflow": env},
        "goals": goals(runs),
        "runs": {commit: {"graph": what, "rows": {f"{t}-{b}": r for (t, b), r in runs[commit].items()}}
                 for commit, what in RUNS},
    }
    (RES / "results.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RES / "README.md").write_text(readme(runs, smi, env))
    chart(runs)
    print("wrote", RES / "results.json", RES / "README.md", RES / "gpu.png")


if __name__ == "__main__":
    main()
