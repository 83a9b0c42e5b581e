"""Runs HERE: turns the JSON the GPU machine wrote (benchmarks/results/gpu/raw/) into
benchmarks/results/gpu/results.json, README.md and gpu.png.

    .venv/bin/python benchmarks/gpu/combine.py

The README's method/reproduce sections are fixed text below; the tables and the verdicts on the goals are
computed from the raw JSON (end-to-end mean ms per image at batch 8 decides a goal; the 10 %-trimmed mean is
shown beside it).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RES = REPO / "benchmarks" / "results" / "gpu"
RAW = RES / "raw"
TASKS = ("detect", "segment", "classify", "pose", "obb")
ROWS = (("tensorflow", "TensorFlow SavedModel"), ("xla", "TensorFlow + XLA"), ("pytorch", "Ultralytics PyTorch"))
TRT = ("TF-TRT FP32", "TF-TRT FP16", "TF-TRT INT8")
TRT_STATUS = "unavailable: no TensorRT 8.6 libraries on this machine"
GOAL_TF, GOAL_XLA = 1.0, 0.6  # ms per image, end to end, batch 8, H100


def load(name):
    p = RAW / name
    return json.loads(p.read_text()) if p.is_file() else None


def main():
    tf_runs = [load("tf-tensorflow.json"), load("tf-xla.json")]
    torch_run = load("torch.json")
    decoded = load("decoded.json") or {}
    with open(RAW / "smi.csv") as f:
        smi = next(csv.DictReader(f, skipinitialspace=True))
    rows = {}
    for run in [*tf_runs, torch_run]:
        for r in run["rows"]:
            rows[(r["task"], r["backend"])] = r
    tf_env, torch_env = tf_runs[0]["environment"], torch_run["environment"]
    machine = {
        "gpu": smi["name"],
        "driver": smi["driver_version"],
        "gpu_memory": smi["memory.total [MiB]"],
        "max_sm_clock": smi["clocks.max.sm [MHz]"],
        "power_limit": smi["power.limit [W]"],
        "cpu_cores": 16,
        "device_kind": "lent nvidia-h100-x1 (Firecracker VM)",
        "tensorflow": f"{tf_env['tensorflow']} (pip wheel, CUDA {tf_env['build_info']['cuda_version']}, "
                      f"kernels {'/'.join(tf_env['build_info']['cuda_compute_capabilities'])}; "
                      f"Python {tf_env['python']}, NumPy {tf_env['numpy']})",
        "xla_ptxas": "nvidia-cuda-nvcc-cu12 12.3.107 (ptxas + libdevice), XLA_FLAGS=" + tf_env["xla_flags"],
        "torch": f"{torch_env['torch']} (CUDA {torch_env['torch_cuda']}, cuDNN {torch_env['cudnn']}; "
                 f"Python {torch_env['python']}, NumPy {torch_env['numpy']})",
        "ultralytics": torch_env["ultralytics"],
        "tensorrt": "none (TF-TRT rows unavailable)",
    }
    settings = dict(tf_runs[0]["settings"])

    goals = {}
    out_tasks = {}
    for task in TASKS:
        t_rows = []
        for name in TRT:
            t_rows.append({"name": name, "status": TRT_STATUS})
        for key, name in ROWS:
            r = rows.get((task, key))
            if r is None or "end_to_end" not in r:
                t_rows.append({"name": name, "backend": key, "status": (r or {}).get("status", "not run")})
                continue
            d = {"name": name, "backend": key, "status": "ok", "end_to_end": r["end_to_end"], "network": r["network"]}
            for k in ("num_detections", "top1", "ultralytics_speed_mean", "end_to_end_first_call_s",
                      "network_first_call_s", "images", "imgsz", "model"):
                if k in r:
                    d[k] = r[k]
            if key != "pytorch" and f"{task}-{key}" in decoded:
                d["predict_images_decoded"] = decoded[f"{task}-{key}"]
            t_rows.append(d)
        out_tasks[task] = {"imgsz": 224 if task == "classify" else 640, "rows": t_rows}
        e = {k: rows[(task, k)]["end_to_end"] for k, _ in ROWS if (task, k) in rows}
        goals[task] = {
            "tensorflow_le_1.0ms": {"value": e["tensorflow"]["mean"], "met": e["tensorflow"]["mean"] <= GOAL_TF},
            "xla_le_0.6ms": {"value": e["xla"]["mean"], "met": e["xla"]["mean"] <= GOAL_XLA},
            "tensorflow_faster_than_pytorch": {"value": e["tensorflow"]["mean"], "pytorch": e["pytorch"]["mean"],
                                               "met": e["tensorflow"]["mean"] < e["pytorch"]["mean"]},
            "xla_faster_than_pytorch": {"value": e["xla"]["mean"], "pytorch": e["pytorch"]["mean"],
                                        "met": e["xla"]["mean"] < e["pytorch"]["mean"]},
        }
    detections_agree = {
        task: len({json.dumps(rows[(task, k)].get("num_detections")) for k, _ in ROWS}) == 1
        for task in TASKS if task != "classify"
    }
    result = {
        "machine": machine,
        "settings": settings | {"imgsz": "640 (classify 224)", "timing": "tftrt_yolo.benchmark.time_calls/Stats, "
                                "ms per image = call time / 8"},
        "goals": {"definition": "H100, batch 8, end to end (mean ms/img): TensorFlow graph <= 1.0, XLA <= 0.6, "
                                "and faster than Ultralytics PyTorch predict", "per_task": goals},
        "detections_agree_across_rows": detections_agree,
        "tasks": out_tasks,
    }
    (RES / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (RES / "README.md").write_text(readme(result, rows))
    chart(rows)
    print("wrote", RES / "results.json", RES / "README.md", RES / "gpu.png")


def f3(x):
    return f"{x:.3f}"


def readme(res, rows) -> str:
    m, s = res["machine"], res["settings"]
    L = []
    L.append("# GPU benchmark: the five demo models on one NVIDIA H100 (batch 8)\n")
    L.append(f"Measured {RAW.joinpath('smi.txt').read_text().splitlines()[0].strip()} (device clock) on the lent "
             f"`nvidia-h100-x1` machine. All numbers are **milliseconds per image** at batch 8 "
             f"(one call's time / 8), {s['warmup']} warm-up calls (not counted) then {s['iterations']} timed calls, "
             f"each synchronised; img/s = 1000 / trimmed mean. Timing code: `tftrt_yolo.benchmark.time_calls` / "
             f"`Stats` (trimmed mean drops 10 % at each end; p99 is the lower 99th percentile).\n")
    L.append("## Machine\n")
    L.append("| | |\n|---|---|")
    for k, label in (("gpu", "GPU"), ("driver", "driver"), ("gpu_memory", "GPU memory"), ("max_sm_clock", "max SM clock"),
                     ("power_limit", "power limit"), ("cpu_cores", "CPU cores"), ("device_kind", "machine"),
                     ("tensorflow", "TensorFlow"), ("xla_ptxas", "XLA toolchain"), ("torch", "PyTorch"),
                     ("ultralytics", "Ultralytics"), ("tensorrt", "TensorRT")):
        L.append(f"| {label} | {m[k]} |")
    L.append("")
    L.append("## Goals (issue: H100, batch 8, end to end)\n")
    g0 = res["goals"]["per_task"]
    same = all(
        (rows[(t, "tensorflow")]["end_to_end"]["trimmed_mean"] <= GOAL_TF) == g0[t]["tensorflow_le_1.0ms"]["met"]
        and (rows[(t, "xla")]["end_to_end"]["trimmed_mean"] <= GOAL_XLA) == g0[t]["xla_le_0.6ms"]["met"]
        and all((rows[(t, k)]["end_to_end"]["trimmed_mean"] < rows[(t, "pytorch")]["end_to_end"]["trimmed_mean"])
                == g0[t][f"{k}_faster_than_pytorch"]["met"] for k in ("tensorflow", "xla"))
        for t in TASKS)
    L.append("Judged on the end-to-end **mean** ms/img (the trimmed means in the tables lead to "
             + ("the same verdicts" if same else "DIFFERENT verdicts for some cells") + ").\n")
    L.append("| task | TensorFlow graph <= 1.0 | XLA <= 0.6 | TensorFlow faster than PyTorch | XLA faster than PyTorch |")
    L.append("|---|---|---|---|---|")
    g = res["goals"]["per_task"]
    for task in TASKS:
        t = g[task]
        c = lambda ok: "**met**" if ok else "not met"  # noqa: E731
        L.append(f"| {task} | {c(t['tensorflow_le_1.0ms']['met'])}: {f3(t['tensorflow_le_1.0ms']['value'])} | "
                 f"{c(t['xla_le_0.6ms']['met'])}: {f3(t['xla_le_0.6ms']['value'])} | "
                 f"{c(t['tensorflow_faster_than_pytorch']['met'])}: {f3(t['tensorflow_faster_than_pytorch']['value'])} vs "
                 f"{f3(t['tensorflow_faster_than_pytorch']['pytorch'])} | "
                 f"{c(t['xla_faster_than_pytorch']['met'])}: {f3(t['xla_faster_than_pytorch']['value'])} vs "
                 f"{f3(t['xla_faster_than_pytorch']['pytorch'])} |")
    n_tf = sum(g[t]["tensorflow_le_1.0ms"]["met"] for t in TASKS)
    n_xla = sum(g[t]["xla_le_0.6ms"]["met"] for t in TASKS)
    faster_tf = [t for t in TASKS if g[t]["tensorflow_faster_than_pytorch"]["met"]]
    faster_xla = [t for t in TASKS if g[t]["xla_faster_than_pytorch"]["met"]]
    L.append("")
    L.append(f"- TensorFlow graph <= 1.0 ms/img end to end: met for {n_tf} of 5 tasks "
             f"(measured {min(g[t]['tensorflow_le_1.0ms']['value'] for t in TASKS):.2f}-"
             f"{max(g[t]['tensorflow_le_1.0ms']['value'] for t in TASKS):.2f} ms/img).")
    L.append(f"- XLA <= 0.6 ms/img end to end: met for {n_xla} of 5 tasks "
             f"(measured {min(g[t]['xla_le_0.6ms']['value'] for t in TASKS):.2f}-"
             f"{max(g[t]['xla_le_0.6ms']['value'] for t in TASKS):.2f} ms/img).")
    L.append(f"- Faster than Ultralytics PyTorch predict end to end: TensorFlow graph for {', '.join(faster_tf) or 'none'}; "
             f"XLA for {', '.join(faster_xla) or 'none'}; "
             f"not for {', '.join(t for t in TASKS if t not in faster_tf) or 'none'} (graph) / "
             f"{', '.join(t for t in TASKS if t not in faster_xla) or 'none'} (XLA).")
    L.append("- The **network alone** is fast: TensorFlow graph "
             + ", ".join(f"{t} {f3(rows[(t, 'tensorflow')]['network']['mean'])}" for t in TASKS)
             + "; XLA " + ", ".join(f"{t} {f3(rows[(t, 'xla')]['network']['mean'])}" for t in TASKS)
             + "; PyTorch " + ", ".join(f"{t} {f3(rows[(t, 'pytorch')]['network']['mean'])}" for t in TASKS)
             + " ms/img. So 4-10 ms/img of the SavedModels' end-to-end time is spent outside the network, in "
               "the in-graph pre/post-processing (see *Where the end-to-end time goes*).")
    L.append("- XLA speeds up the network (0.30-0.71 vs 0.37-1.15 ms/img) but its end-to-end time is *higher* than "
             "the plain graph's for every task.\n")
    L.append("## Results per task\n")
    L.append(f"TF-TRT FP32 / FP16 / INT8: **{TRT_STATUS}** (TensorFlow 2.17.1 needs TensorRT 8.6.1, which no machine "
             "here can install; see /work/shared/notes/stack-facts.md). No TF-TRT number is claimed.\n")
    for task in TASKS:
        t = res["tasks"][task]
        L.append(f"### {task} (imgsz {t['imgsz']}, batch 8)\n")
        L.append("| row | end-to-end mean (min-max) | trimmed mean | p99 | img/s | network mean (min-max) | trimmed mean |")
        L.append("|---|---|---|---|---|---|---|")
        for r in t["rows"]:
            if r["status"] != "ok":
                L.append(f"| {r['name']} | {r['status']} | | | | | |")
                continue
            e, n = r["end_to_end"], r["network"]
            L.append(f"| {r['name']} | {f3(e['mean'])} ({f3(e['min'])}-{f3(e['max'])}) | {f3(e['trimmed_mean'])} | "
                     f"{f3(e['p99'])} | {e['images_per_second']:.0f} | {f3(n['mean'])} ({f3(n['min'])}-{f3(n['max'])}) | "
                     f"{f3(n['trimmed_mean'])} |")
        pt = next(r for r in t["rows"] if r.get("backend") == "pytorch" and r["status"] == "ok")
        sp = pt.get("ultralytics_speed_mean")
        extra = []
        if sp:
            extra.append(f"Ultralytics' own split of its predict call: preprocess {sp['preprocess']:.2f}, inference "
                         f"{sp['inference']:.2f}, postprocess {sp['postprocess']:.2f} ms/img.")
        if task != "classify":
            nd = pt.get("num_detections")
            agree = res["detections_agree_across_rows"][task]
            extra.append(f"Detections per image {nd}: {'identical' if agree else 'NOT identical'} for the "
                         "three rows.")
        L.append("\n" + " ".join(extra) + "\n")
    L.append("![end-to-end and network ms/img per task](gpu.png)\n")
    L.append("## Where the end-to-end time goes (diagnostics, same machine)\n")
    dec = {k: v for k, v in (load("decoded.json") or {}).items()}
    L.append("- The network takes 0.3-1.2 ms/img of the SavedModels' 3.9-10.6 ms/img; the rest is the in-graph "
             "pre/post-processing.")
    L.append("- JPEG decoding alone (eager `tf.io.decode_image`, one image after another, on the CPU; `raw/diag_decode.txt`) took 4.48 "
             "(detect, ~750x540 images), 3.03 (segment) and 0.64 (classify, ~275x200) ms/img; but classify's end "
             "to end is still 3.9 ms/img with its 0.64 ms decode and 0.37 ms network, and feeding already decoded "
             "uint8 images through `predict_images` was no faster:")
    if dec:
        L.append("  " + "; ".join(f"{k} {v['mean']:.2f}" for k, v in dec.items()) + " ms/img (mean of 60 calls after "
                 "15 warm-up; 8 images decoded and resized to SxS outside the timing; `raw/decoded.json`).")
    L.append("- Op placement (`tf.debugging.set_log_device_placement`, detect, plain graph, `raw/placement.log.gz`): "
             "4276 placements on the GPU, 156 on the CPU, among them `DecodeJpeg`/`DecodeImage`, "
             "`NonMaxSuppressionV5` and while-loop / TensorList control ops (per-image loop). Per-image loops "
             "and host-side NMS with the copies they force are the likely cost; this was not profiled further "
             "(the bundle has no CUPTI).")
    L.append("- XLA compile cost: first calls took 3.5-8.6 s end to end and 1.1-1.7 s for the network "
             "(`end_to_end_first_call_s`, `network_first_call_s` in results.json); the plain graph 0.9-6.6 s "
             "(the first model also pays TensorFlow's CUDA start-up and PTX JIT: TF 2.17's wheel has no sm_90 "
             "machine code, only compute_90 PTX).\n")
    L.append("## Method\n")
    L.append("- Same 8 images per task for every row: the first 8 (sorted by path) of the task's demo val split "
             "(`tftrt_yolo.demo.demo_data(task, val_only=True)`, seed 0); classify's 8 are all from its first "
             "class folder. Network-only input: the same 8 images letterboxed (classify: resized and centre-cropped) "
             "exactly as `tftrt_yolo.benchmark._network_batch` does, made on the CPU machine and stored as "
             "`.gpu/net/<task>.npz`, so PyTorch and TensorFlow time the same tensor.")
    L.append("- SavedModels: `tftrt_yolo.convert(demo_model(task), batch=8, backend='tensorflow'|'xla', "
             "output='.gpu/models', name='<task>-<backend>')` on the CPU machine (TensorFlow 2.17.1), copied over. "
             "They were converted on 2026-11-24 14:16-14:22 from the working tree of commit 70c4d6a **plus the "
             "uncommitted edits then in progress** (tftrt_yolo/convert.py, graph/end_to_end.py, graph/preprocess.py), "
             "so they reflect that state of the pre/post-processing graph, not a commit; re-measure after it settles. "
             "End to end: `serving_default(images=<8 encoded files>, conf=[0.25]*8, iou=[0.7]*8, max_det=[300]*8)`, "
             "every output `.numpy()`. Network: `run_network(x)` on a float32 [8,S,S,3] tensor already on the GPU, "
             "synchronised by reading one value of each output (`tf.reshape(o, [-1])[0].numpy()`).")
    L.append("- Ultralytics PyTorch: `YOLO(pt).predict(8 paths, imgsz=S, batch=8, conf=0.25, iou=0.7, max_det=300, "
             "rect=False, retina_masks=False, device=0, half=False, verbose=False, save=False)` then "
             "`torch.cuda.synchronize()` (Results stay on the GPU, as in `tftrt_yolo.benchmark`); network: "
             "`yolo.predictor.model(x)` (AutoBackend, fp32) under `torch.inference_mode()` on a [8,3,S,S] CUDA "
             "tensor, then synchronise. cuDNN benchmark mode off (Ultralytics' default).")
    L.append("- TensorFlow ran in the device's system Python 3.12 with a pip TensorFlow 2.17.1 + CUDA 12 bundle "
             "(`/work/shared/tools/tf-gpu-bundle.sh`, LEVEL=0) and NumPy 1.26 first on the path; XLA got `ptxas` "
             "and `libdevice` from the `nvidia-cuda-nvcc-cu12==12.3.107` wheel (the bundle leaves it out). "
             "PyTorch ran in the device's own Python (torch 2.11 CUDA 13) with the ultralytics 8.4.190 and "
             "ultralytics-thop wheels added. The two never ran at the same time.")
    L.append("- `tftrt_yolo/__init__.py` imports cv2 (through demo/data) and TensorFlow, neither of which exists in "
             "both device environments, so the device scripts import `tftrt_yolo.benchmark` through a stub "
             "package module that skips `__init__.py`.\n")
    L.append("## Reproduce\n")
    L.append("On the CPU machine, from the repository root:\n")
    L.append("```bash\n"
             "printf '/.bundle30/\\n/.gpu/\\n' >> .git/info/exclude\n"
             ".venv/bin/python benchmarks/gpu/prepare.py .gpu        # 8 images per task + 10 SavedModels\n"
             ".venv/bin/python benchmarks/gpu/net_batches.py .gpu    # network-only batches\n"
             "python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\\n"
             "  --platform manylinux1_x86_64 -d /tmp/nvccdl nvidia-cuda-nvcc-cu12==12.3.107\n"
             "(cd /tmp/nvccdl && unzip -q -o *.whl 'nvidia/cuda_nvcc/bin/ptxas' 'nvidia/cuda_nvcc/nvvm/libdevice/*')\n"
             "mkdir -p .gpu/nvcc .gpu/whl && cp -r /tmp/nvccdl/nvidia .gpu/nvcc/\n"
             "cp .whl/ultralytics-8.4.190-py3-none-any.whl .whl/ultralytics_thop-2.2.3-py3-none-any.whl .gpu/whl/\n"
             "mkdir -p .bundle30 && cat .bundle/part-* | split -b 32000000 -d -a 3 - .bundle30/part-   # 56 pieces\n"
             "tar -C .gpu -cf - models images net whl nvcc | xz -T2 -1 > /tmp/extras.tar.xz\n"
             "split -b 32000000 -d -a 3 /tmp/extras.tar.xz .bundle30/x-                                  # 5 pieces\n"
             "# benchmarks/gpu/manifest.txt: 'bundle <sha256> <pieces>' and 'extras <sha256> <pieces>'\n"
             "```\n")
    L.append("Then, back to back on the device (the `run` tool; each call carries one piece, so the tree plus "
             "the piece stays under 64 MiB):\n")
    L.append("```bash\n"
             "# 61 calls, carry=['.bundle30/<piece>']:\n"
             "mkdir -p /tmp/parts && cp .bundle30/<piece> /tmp/parts/\n"
             "bash benchmarks/gpu/device_setup.sh            # verify sha256, unpack, /tmp/tfenv.sh, GPU checks (33 s)\n"
             "bash benchmarks/gpu/device_run.sh torch        # -> $OUT/torch.json (47 s)\n"
             "bash benchmarks/gpu/device_run.sh tf tensorflow  # -> $OUT/tf-tensorflow.json (59 s)\n"
             "bash benchmarks/gpu/device_run.sh tf xla         # -> $OUT/tf-xla.json (79 s)\n"
             "bash benchmarks/gpu/diag.sh                    # optional: raw/decoded.json, raw/placement.log.gz\n"
             "```\n")
    L.append("Copy the returned files into `benchmarks/results/gpu/raw/` and run "
             "`.venv/bin/python benchmarks/gpu/combine.py`. Device time used: about 790 s held "
             "(370 s of it the 61 transfers), counted at 50 % for a one-GPU machine.\n")
    L.append("## Files\n")
    L.append("- `results.json`: everything above, per task and row (all Stats fields, first-call times, detections).")
    L.append("- `raw/`: what the device wrote: `torch.json`, `tf-tensorflow.json`, `tf-xla.json` (+ logs; the "
             "tensorflow log without its 2988 repeated `gpu_timer.cc` 'Skipping the delay kernel' warnings), "
             "`smi.csv`/`smi.txt` (nvidia-smi), `tf_check.log` (setup check), `diag_decode.txt`, `decoded.json`, `placement.log.gz` (diag.sh).")
    L.append("- `gpu.png`: end-to-end and network mean ms/img per task and row, with the goal lines.")
    return "\n".join(L) + "\n"


def chart(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    x = np.arange(len(TASKS))
    w = 0.26
    colors = {"tensorflow": "#ff8f00", "xla": "#1e88e5", "pytorch": "#757575"}
    for ax, kind, title in ((axes[0], "end_to_end", "end to end (encoded files in, detections out)"),
                            (axes[1], "network", "network only (tensor already on the GPU)")):
        for i, (key, name) in enumerate(ROWS):
            vals = [rows[(t, key)][kind]["mean"] for t in TASKS]
            lo = [rows[(t, key)][kind]["mean"] - rows[(t, key)][kind]["min"] for t in TASKS]
            hi = [rows[(t, key)][kind]["max"] - rows[(t, key)][kind]["mean"] for t in TASKS]
            b = ax.bar(x + (i - 1) * w, vals, w, yerr=[lo, hi], capsize=2, label=name, color=colors[key])
            ax.bar_label(b, fmt="%.2f", fontsize=7, padding=2)
        if kind == "end_to_end":
            ax.axhline(GOAL_TF, color="#ff8f00", ls="--", lw=1, label="goal TF graph 1.0")
            ax.axhline(GOAL_XLA, color="#1e88e5", ls=":", lw=1, label="goal XLA 0.6")
        ax.set_xticks(x, TASKS)
        ax.set_ylabel("ms per image (batch 8), mean; bars: min-max")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("YOLOv8n demo models, NVIDIA H100, batch 8 (TF-TRT unavailable: no TensorRT 8.6)", fontsize=11)
    fig.tight_layout()
    fig.savefig(RES / "gpu.png", dpi=110)


if __name__ == "__main__":
    main()
