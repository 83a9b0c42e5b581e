"""benchmark(): latency and accuracy of one YOLOv8 model through every runtime, measured in one run.

Rows: one per TF-TRT precision, the plain TensorFlow SavedModel, the same
graph with XLA, and two references measured on the same images in the same
process: Ultralytics' PyTorch predict and ONNX Runtime (Ultralytics' ONNX
export through `YOLO(model.onnx).predict`, i.e. ONNX Runtime plus Ultralytics'
own pre- and post-processing). A row that cannot run on this machine says
"unavailable: <reason>" instead of failing the whole benchmark.

Each row gets two timings, both in ms per image at batch `batch`:

- end-to-end: encoded image files in, final detections out (SavedModels: the
  file bytes through the serving signature; Ultralytics: `predict` on the file
  paths, letterboxed to the same square input as the SavedModel);
- network: the network alone on a letterboxed float batch (SavedModels: the
  graph's wrapped onnx2tf network, with XLA where the model has it; PyTorch:
  Ultralytics' AutoBackend; ONNX: the ONNX Runtime session).

Timing follows tensorflow/tensorrt's benchmark runner: `warmup` calls are not
counted, every call is synchronised (end to end: the final outputs copied to
host numpy; network: one value read back, so the raw heads stay on the
device), and the table reports mean, min, max, the 10 %-trimmed mean, median
and p99 (lower).
Accuracy comes from `tftrt_yolo.validate.val` on each row's model.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.tasks import PREDICT_DEFAULTS

TRIM = 0.1  # tensorflow/tensorrt benchmark runner's default --trim_mean_percentage
SAVED_MODEL_BACKENDS = ("tensorrt", "tensorflow", "xla")


# --------------------------------------------------------------------------- statistics


@dataclasses.dataclass
class Stats:
    """Latency of one kind of call, in ms per image (the call's time divided by its batch)."""

    mean: float
    min: float
    max: float
    trimmed_mean: float
    median: float
    p99: float
    iterations: int
    batch: int

    @classmethod
    def from_seconds(cls, seconds, batch: int) -> "Stats":
        ms = np.sort(np.asarray(seconds, np.float64)) * 1000.0 / batch
        if ms.size == 0:
            raise ValueError("no timed iterations")
        cut = int(TRIM * ms.size)  # scipy.stats.trim_mean(ms, 0.1)
        trimmed = ms[cut : ms.size - cut] if ms.size - 2 * cut > 0 else ms
        return cls(
            mean=float(ms.mean()),
            min=float(ms.min()),
            max=float(ms.max()),
            trimmed_mean=float(trimmed.mean()),
            median=float(np.median(ms)),
            p99=float(np.percentile(ms, 99, method="lower")),
            iterations=int(ms.size),
            batch=int(batch),
        )

    @property
    def images_per_second(self) -> float:
        return 1000.0 / self.trimmed_mean if self.trimmed_mean > 0 else float("inf")


def time_calls(fn, *, warmup: int, iterations: int, batch: int, desc: str = "", verbose: bool = False) -> Stats:
    """Call `fn` warmup + iterations times; the timed calls become Stats. `fn` must return only when done."""
    if iterations < 1 or warmup < 0:
        raise InputError(f"need iterations >= 1 and warmup >= 0, got iterations={iterations}, warmup={warmup}")
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=warmup + iterations, desc=desc, unit="call", leave=False)
    seconds = []
    try:
        for i in range(warmup + iterations):
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                seconds.append(time.perf_counter() - t0)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return Stats.from_seconds(seconds, batch)


# --------------------------------------------------------------------------- the table


@dataclasses.dataclass
class Row:
    name: str
    backend: str  # tensorrt | tensorflow | xla | pytorch | onnxruntime
    precision: str
    status: str = "ok"  # "ok" or "unavailable: <reason>"
    end_to_end: Stats | None = None
    network: Stats | None = None
    network_status: str = "ok"
    val: dict | None = None  # tftrt_yolo.validate.val() result
    val_status: str = "ok"
    model_path: str | None = None
    ultralytics_speed: dict | None = None  # Ultralytics rows: its own preprocess/inference/postprocess ms per image

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("end_to_end", "network"):
            if getattr(self, key) is not None:
                d[key]["images_per_second"] = getattr(self, key).images_per_second
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Row":
        d = dict(d)
        for key in ("end_to_end", "network"):
            if d.get(key):
                d[key] = Stats(**{k: v for k, v in d[key].items() if k != "images_per_second"})
        return cls(**d)


@dataclasses.dataclass
class BenchmarkTable:
    model: str
    task: str
    batch: int
    imgsz: int
    data: str
    images: list[str]  # the files each timed call gets (cycled to fill the batch)
    warmup: int
    iterations: int
    val_images: int | None
    rows: list[Row]
    machine: dict
    created: str

    # ---- serialisation
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["rows"] = [r.to_dict() for r in self.rows]
        d["goals"] = self.goals()
        return d

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict) -> "BenchmarkTable":
        d = {k: v for k, v in d.items() if k != "goals"}
        d["rows"] = [Row.from_dict(r) for r in d["rows"]]
        return cls(**d)

    @classmethod
    def from_json(cls, text_or_path) -> "BenchmarkTable":
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))

    # ---- derived
    def row(self, backend: str, precision: str = "fp32") -> Row | None:
        return next((r for r in self.rows if r.backend == backend and r.precision == precision), None)

    def goals(self) -> list[dict]:
        """The issue's goals, per SavedModel row that ran: >= 2x PyTorch predict, <= 1.1x ONNX Runtime (end-to-end)."""
        torch_row, onnx_row = self.row("pytorch"), self.row("onnxruntime")
        out = []
        for r in self.rows:
            if r.backend not in SAVED_MODEL_BACKENDS or not r.ok or r.end_to_end is None:
                continue
            ms = r.end_to_end.trimmed_mean
            if torch_row is not None and torch_row.ok and torch_row.end_to_end:
                speedup = torch_row.end_to_end.trimmed_mean / ms
                out.append({"row": r.name, "goal": "throughput >= 2x PyTorch predict", "value": speedup,
                            "text": f"{speedup:.2f}x", "met": bool(speedup >= 2.0)})
            if onnx_row is not None and onnx_row.ok and onnx_row.end_to_end:
                ratio = ms / onnx_row.end_to_end.trimmed_mean
                out.append({"row": r.name, "goal": "latency <= 1.1x ONNX Runtime predict (end-to-end)",
                            "value": ratio, "text": f"{ratio:.2f}x", "met": bool(ratio <= 1.1)})
                post = (onnx_row.ultralytics_speed or {}).get("postprocess")
                if onnx_row.network is not None and post is not None:
                    ratio = ms / (onnx_row.network.trimmed_mean + post)
                    out.append({"row": r.name,
                                "goal": "latency <= 1.1x ONNX Runtime raw forward + Ultralytics post-processing",
                                "value": ratio, "text": f"{ratio:.2f}x", "met": bool(ratio <= 1.1)})
        return out

    def metric_names(self) -> list[str]:
        if self.task == "classify":
            return ["top1", "top5"]
        from tftrt_yolo.validate import PRIMARY

        group = PRIMARY[self.task]
        return [f"{group} mAP50", f"{group} mAP50-95"]

    # ---- presentation
    def to_markdown(self, title: str | None = None) -> str:
        from tftrt_yolo.validate import headline

        m = self.machine
        lines = [
            f"### {title or Path(self.model).name} ({self.task})",
            "",
            f"batch {self.batch}, imgsz {self.imgsz}, {self.warmup} warm-up + {self.iterations} timed calls per "
            f"timing; {m.get('summary', '')}. Latency in ms per image (call time / batch); img/s from the trimmed "
            f"mean. Accuracy: `val` on {self._val_text()} of `{Path(self.data).name if self.data else 'demo data'}`.",
            "",
        ]
        metric_names = self.metric_names()
        header = ["Runtime", "End-to-end mean (min-max)", "trimmed", "median", "p99", "img/s",
                  "Network mean (min-max)", "trimmed", "p99", *metric_names]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        notes: list[str] = []

        def note(text: str) -> str:  # long "unavailable: ..." reasons become numbered notes under the table
            if len(text) <= 40:
                return text
            if text not in notes:
                notes.append(text)
            return f"{text.split(':', 1)[0]} [{notes.index(text) + 1}]"

        for r in self.rows:
            if not r.ok:
                cells = [r.name, note(r.status)] + [""] * (len(header) - 2)
                lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
                continue
            e, n = r.end_to_end, r.network
            cells = [r.name]
            cells += [f"{e.mean:.1f} ({e.min:.1f}-{e.max:.1f})", f"{e.trimmed_mean:.1f}", f"{e.median:.1f}",
                      f"{e.p99:.1f}", f"{e.images_per_second:.1f}"] if e else ["n/a"] * 5
            if n is not None:
                cells += [f"{n.mean:.1f} ({n.min:.1f}-{n.max:.1f})", f"{n.trimmed_mean:.1f}", f"{n.p99:.1f}"]
            else:
                cells += [note(r.network_status), "", ""]
            if r.val is not None:
                cells += [f"{v:.4f}" for v in headline(r.val).values()]
            else:
                cells += [note(r.val_status)] + [""] * (len(metric_names) - 1)
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        if notes:
            lines += [""] + [f"[{i}] {_md(text)}  " for i, text in enumerate(notes, 1)]
        speeds = [(r.name, r.ultralytics_speed) for r in self.rows if r.ok and r.ultralytics_speed]
        if speeds:
            lines += ["", "Ultralytics' own per-image breakdown of its end-to-end calls (ms): "
                      + "; ".join(f"{name}: preprocess {s['preprocess']:.1f}, inference {s['inference']:.1f}, "
                                  f"postprocess {s['postprocess']:.1f}" for name, s in speeds) + "."]
        goals = self.goals()
        if goals:
            lines += ["", "| Goal | SavedModel row | Measured | Met |", "|---|---|---:|:---:|"]
            lines += [f"| {g['goal']} | {g['row']} | {g['text']} | {'yes' if g['met'] else 'NO'} |" for g in goals]
        return "\n".join(lines) + "\n"

    def _val_text(self) -> str:
        return f"the first {self.val_images} val images" if self.val_images else "all val images"

    def plot(self, path: str | Path) -> Path:
        """A PNG: per row, bars of mean end-to-end and network latency with min/max whiskers."""
        import os

        os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "tftrt_yolo-matplotlib"))
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = [r.name for r in self.rows]
        y = np.arange(len(self.rows))
        fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * len(self.rows)), dpi=110)
        height = 0.38
        top = 1.0
        for offset, key, colour, label in ((-height / 2, "end_to_end", "#1f77b4", "end-to-end"),
                                           (height / 2, "network", "#ff7f0e", "network only")):
            for i, r in enumerate(self.rows):
                s = getattr(r, key) if r.ok else None
                if s is None:
                    continue
                ax.barh(y[i] + offset, s.mean, height, color=colour, label=label if i == _first(self.rows, key) else None)
                ax.errorbar(s.mean, y[i] + offset, xerr=[[s.mean - s.min], [s.max - s.mean]], fmt="none",
                            ecolor="black", capsize=3, lw=1)
                ax.text(s.max, y[i] + offset, f" {s.mean:.1f}", va="center", fontsize=8)
                top = max(top, s.max)
        for i, r in enumerate(self.rows):
            if not r.ok:
                ax.text(top * 0.01, y[i], r.status[:90] + ("..." if len(r.status) > 90 else ""), va="center",
                        fontsize=7, color="#777777")
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.15)
        ax.set_xlabel(f"ms per image at batch {self.batch} (bar: mean, whiskers: min-max)")
        ax.set_title(f"{Path(self.model).name} ({self.task}), batch {self.batch}, imgsz {self.imgsz}\n"
                     f"{self.machine.get('summary', '')}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        if any(r.ok for r in self.rows):
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.25 / len(self.rows)), ncol=2, fontsize=8,
                      frameon=False)
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
        return path


def _first(rows, key) -> int:
    return next((i for i, r in enumerate(rows) if r.ok and getattr(r, key) is not None), -1)


def _md(cell: str) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- the machine


def machine_info() -> dict:
    import importlib.metadata
    import os

    info = {
        "platform": f"{platform.system()} {platform.machine()}",
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {},
        "gpus": [],
    }
    for name in ("tensorflow", "torch", "onnxruntime", "ultralytics", "tftrt-yolo"):
        try:
            info["versions"][name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import tensorflow as tf

        for d in tf.config.list_physical_devices("GPU"):
            info["gpus"].append(tf.config.experimental.get_device_details(d).get("device_name", d.name))
    except Exception:  # noqa: BLE001 - a machine description must not fail the benchmark
        pass
    where = ", ".join(info["gpus"]) if info["gpus"] else f"CPU only, {info['cpu_count']} cores"
    info["summary"] = f"{info['processor']} ({where})"
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tftrt_status() -> tuple[bool, str]:
    try:
        from tftrt_yolo.environment import check_environment

        report = check_environment()
    except Exception as e:  # noqa: BLE001 - the probe itself failing is a reason too
        return False, f"environment check failed ({type(e).__name__}: {e})"
    return bool(report.tftrt_usable), report.reason() or "TF-TRT is usable"


# --------------------------------------------------------------------------- inputs


def _network_batch(files: list[Path], task: str, imgsz: int) -> np.ndarray:
    """The letterboxed (classify: resized, centre-cropped) float batch NCHW RGB in [0, 1], like predict's."""
    import cv2

    out = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"cannot read image {f}")
        if task == "classify":
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
    from tftrt_yolo.validate import load_targets

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


def _saved_model_timers(runner, files: list[Path], task: str):
    """(end_to_end_fn, network_fn or None, why-not) for a SavedModel runner."""
    import tensorflow as tf

    conf, iou, max_det = (PREDICT_DEFAULTS[k] for k in ("conf", "iou", "max_det"))

    def end_to_end():
        runner.model.predict_encoded([f.read_bytes() for f in files], conf=conf, iou=iou, max_det=max_det)

    if runner.model.metadata.backend == "tensorrt":
        return end_to_end, None, "unavailable: TF-TRT converts only the serving signature, not the bare network"
    x = tf.constant(_network_batch(files, task, runner.imgsz).transpose(0, 2, 3, 1))

    def network_only():  # waits for the device by reading one value, without copying the raw heads to the host
        for output in runner.model.run_network(x):
            tf.reshape(output, [-1])[0].numpy()

    return end_to_end, network_only, "ok"


def _ultralytics_timers(runner, files: list[Path], task: str):
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
    batch = _network_batch(files, task, runner.imgsz)
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


# --------------------------------------------------------------------------- benchmark


def _check_reused(runner, pt: Path, backend: str, precision: str, batch: int, imgsz: int) -> None:
    from tftrt_yolo.source import sha256_file

    m = runner.model.metadata
    problems = []
    if m.info.source_sha256 != sha256_file(pt):
        problems.append(f"it was converted from {m.info.source}, not {pt}")
    if (m.backend, m.precision) != (backend, precision):
        problems.append(f"it is {m.backend} {m.precision}, not {backend} {precision}")
    if (m.batch, m.info.imgsz) != (batch, imgsz):
        problems.append(f"it takes batch {m.batch} at imgsz {m.info.imgsz}, not batch {batch} at imgsz {imgsz}")
    if problems:
        raise InputError(f"cannot reuse {runner.path} for this benchmark: " + "; ".join(problems))


def _unavailable(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"unavailable: {type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def export_onnx(pt: Path, workdir: Path, *, imgsz: int, batch: int) -> Path:
    """Ultralytics' own ONNX export of `pt` (static batch), written inside `workdir`."""
    from tftrt_yolo._ultralytics import YOLO

    local = workdir / f"{pt.stem}.pt"
    shutil.copyfile(pt, local)
    exported = YOLO(str(local)).export(format="onnx", imgsz=imgsz, batch=batch, dynamic=False, simplify=True,
                                       opset=17, verbose=False)
    return Path(exported)


def benchmark(
    model,
    precisions=("fp32", "fp16", "int8"),
    batch: int = 8,
    data=None,
    imgsz: int | None = None,
    warmup: int = 3,
    iterations: int = 10,
    *,
    val_images: int | None = None,
    saved_models: dict | None = None,
    workdir: str | Path | None = None,
    runtimes=("tensorrt", "tensorflow", "xla", "pytorch", "onnxruntime"),
    verbose: bool = True,
) -> BenchmarkTable:
    """Benchmark a YOLOv8 `.pt` through TF-TRT (`precisions`), TensorFlow, XLA, PyTorch and ONNX Runtime.

    Each SavedModel row is converted from `model` into a temporary folder
    (`workdir` keeps them) at `imgsz` (default: the size the model was trained
    at, else 640) and `batch`. `data` (default: the demo data of the model's
    task) gives the timing images and the val split for accuracy; `val_images`
    limits val to the first N images (None: all, 0: no accuracy). `runtimes`
    picks rows. `saved_models` reuses conversions made before instead of
    converting, keyed by backend ("tensorflow", "xla") or "tensorrt-<precision>"
    (each must come from `model` at this batch and imgsz). Returns a
    BenchmarkTable (to_json, to_markdown, plot).
    """
    from tftrt_yolo.validate import UltralyticsRunner, SavedModelRunner, val

    pt = Path(model)
    if pt.suffix.lower() not in (".pt", ".pth") or not pt.is_file():
        raise InputError(f"benchmark needs a YOLOv8 .pt checkpoint, got {model} (the tool converts it per row)")
    if not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    precisions = [p for p in precisions]
    unknown = set(precisions) - {"fp32", "fp16", "int8"}
    if unknown:
        raise InputError(f"unknown precision(s) {', '.join(sorted(unknown))}: use fp32, fp16, int8")
    reference = UltralyticsRunner(pt, imgsz)
    task, imgsz = reference.task, reference.imgsz
    if data is None:
        from tftrt_yolo.demo import demo_data

        data = demo_data(task, val_only=True)
    files = timing_images(data, task, batch, reference.names, imgsz)
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="tftrt_yolo-bench-")) if own_workdir else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []

    def measure(row: Row, runner, timers):
        try:
            e2e, net, net_status = timers(runner, files, task)
            row.end_to_end = time_calls(e2e, warmup=warmup, iterations=iterations, batch=batch,
                                        desc=f"{row.name} end-to-end", verbose=verbose)
            if getattr(e2e, "speeds", None):
                timed = e2e.speeds[-iterations:]
                row.ultralytics_speed = {k: float(np.mean([s[k] for s in timed])) for k in timed[0]}
            row.network_status = net_status
            if net is not None:
                row.network = time_calls(net, warmup=warmup, iterations=iterations, batch=batch,
                                         desc=f"{row.name} network", verbose=verbose)
        except Exception as e:  # noqa: BLE001 - a row that cannot run says why
            row.status = _unavailable(e)
            return
        if val_images == 0:
            row.val_status = "not measured"
            return
        try:
            row.val = val(runner, data, batch=None, limit=val_images, verbose=verbose)
        except Exception as e:  # noqa: BLE001
            row.val_status = _unavailable(e)

    def saved_model_row(name, backend, precision):
        row = Row(name, backend, precision)
        rows.append(row)
        try:
            key = backend if backend != "tensorrt" else f"tensorrt-{precision}"
            if key in (saved_models or {}):
                path = Path(saved_models[key])
                runner = SavedModelRunner(path)
                _check_reused(runner, pt, backend, precision, batch, imgsz)
            else:
                from tftrt_yolo.convert import convert

                path = convert(pt, imgsz=imgsz, batch=batch, backend=backend, precision=precision, data=data,
                               output=workdir / "saved_models", name=key, verbose=False)
                runner = SavedModelRunner(path)
            row.model_path = str(path)
        except Exception as e:  # noqa: BLE001
            row.status = _unavailable(e)
            return
        measure(row, runner, _saved_model_timers)
        del runner
        gc.collect()

    try:
        if "tensorrt" in runtimes and precisions:
            usable, reason = _tftrt_status()
            for p in precisions:
                if usable:
                    saved_model_row(f"TF-TRT {p.upper()}", "tensorrt", p)
                else:
                    rows.append(Row(f"TF-TRT {p.upper()}", "tensorrt", p, status=f"unavailable: {reason}"))
        if "tensorflow" in runtimes:
            saved_model_row("TensorFlow SavedModel", "tensorflow", "fp32")
        if "xla" in runtimes:
            saved_model_row("TensorFlow + XLA", "xla", "fp32")
        if "pytorch" in runtimes:
            row = Row("Ultralytics PyTorch", "pytorch", "fp32", model_path=str(pt))
            rows.append(row)
            measure(row, reference, _ultralytics_timers)
        if "onnxruntime" in runtimes:
            row = Row("ONNX Runtime (Ultralytics)", "onnxruntime", "fp32")
            rows.append(row)
            try:
                onnx_path = export_onnx(pt, workdir, imgsz=imgsz, batch=batch)
                row.model_path = str(onnx_path)
                runner = UltralyticsRunner(onnx_path)
            except Exception as e:  # noqa: BLE001
                row.status = _unavailable(e)
            else:
                measure(row, runner, _ultralytics_timers)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return BenchmarkTable(
        model=str(pt),
        task=task,
        batch=batch,
        imgsz=imgsz,
        data=str(data),
        images=[str(f) for f in files],
        warmup=warmup,
        iterations=iterations,
        val_images=val_images,
        rows=rows,
        machine=machine_info(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


__all__ = ["benchmark", "BenchmarkTable", "Row", "Stats", "time_calls", "machine_info"]
