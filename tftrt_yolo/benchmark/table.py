"""BenchmarkTable: the rows of one benchmark run, their JSON form and the goals they meet."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tftrt_yolo.benchmark.stats import Stats
from tftrt_yolo.tasks import task_spec

SAVED_MODEL_BACKENDS = ("tensorrt", "tensorflow", "xla")


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
                d[key] = getattr(self, key).to_dict()
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
    """What `benchmark()` measured: one Row per runtime, and how (`to_json`, `to_markdown`, `plot`)."""

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
        return list(task_spec(self.task).headline)

    # ---- presentation (tftrt_yolo.benchmark.presentation)
    def to_markdown(self, title: str | None = None) -> str:
        """A Markdown section: the settings, one table line per row, notes, Ultralytics' own split and the goals."""
        from tftrt_yolo.benchmark.presentation import markdown

        return markdown(self, title)

    def plot(self, path: str | Path) -> Path:
        """A PNG: per row, bars of mean end-to-end and network latency with min/max whiskers."""
        from tftrt_yolo.benchmark.presentation import plot

        return plot(self, path)
