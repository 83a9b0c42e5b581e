"""Every command-line flag of `tftrt-yolo` and every command's help, in one place.

All flags are optional and default to None: the CLI forwards only the flags a
user set, so the defaults live in the library signatures (`--help` reads them
from there), and library code and tests never need flags (as in
tensorflow/models' official/common/flags.py).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import textwrap

from absl import flags

from tftrt_yolo.conversion import BACKENDS, PRECISIONS

# name -> (absl kind, value placeholder in help, enum values)
FLAG_KINDS = {
    "model": ("string", "PATH"),
    "source": ("multi_string", "PATH[,PATH...]"),
    "data": ("string", "PATH"),
    "imgsz": ("integer", "N"),
    "batch": ("integer", "N"),
    "dynamic": ("boolean", ""),
    "backend": ("enum", "|".join(BACKENDS)),
    "precision": ("enum", "|".join(PRECISIONS)),
    "workspace": ("float", "GIB"),
    "minimum_segment_size": ("integer", "N"),
    "max_cached_engines": ("integer", "N"),
    "recalibrate": ("boolean", ""),
    "max_map_drop": ("float", "X"),
    "output": ("string", "DIR"),
    "name": ("string", "NAME"),
    "version": ("integer", "N"),
    "dry_run": ("boolean", ""),
    "conf": ("float", "X"),
    "iou": ("float", "X"),
    "max_det": ("integer", "N"),
    "save_dir": ("string", "DIR"),
    "strict": ("boolean", ""),
    "json": ("string", "FILE"),
    "markdown": ("string", "FILE"),
    "plot": ("string", "FILE"),
    "precisions": ("list", "P[,P...]"),
    "iterations": ("integer", "N"),
    "warmup_iterations": ("integer", "N"),
    "val_images": ("integer", "N"),
    "models": ("list", "DIR[,DIR...]"),
    "repo": ("string", "DIR"),
    "version_policy": ("enum", "latest|all|specific"),
    "version_labels": ("list", "LABEL=VERSION[,...]"),
    "batching": ("boolean", ""),
    "warmup": ("boolean", ""),
    "serving_root": ("string", "DIR"),
    "verbose": ("boolean", ""),
}

CLI_ONLY = ("json", "verbose", "save_dir", "markdown", "plot")  # the CLI's own: never library arguments
_VERBOSE = "also show TensorFlow's and the libraries' own log lines"


@dataclasses.dataclass(frozen=True)
class Command:
    summary: str  # one line for `tftrt-yolo --help`
    function: str  # "module:attribute" whose signature holds the flags' defaults
    flags: dict[str, str]  # flag -> what it means for this command
    example: str
    parameters: dict[str, str] = dataclasses.field(default_factory=dict)  # flag -> parameter, where they differ

    def parameter(self, flag: str) -> str:
        return self.parameters.get(flag, flag)

    def target(self):
        """The library function this command calls."""
        module, _, attribute = self.function.partition(":")
        target = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part)
        return target

    def defaults(self) -> dict:
        """flag -> the library's default for it (the signature's, where it has one that is not None)."""
        parameters = inspect.signature(self.target()).parameters
        found = {f: parameters[self.parameter(f)].default for f in self.flags
                 if f not in CLI_ONLY and self.parameter(f) in parameters}  # fmt: skip
        return {f: v for f, v in found.items() if v not in (None, inspect.Parameter.empty)}


COMMANDS = {
    "convert": Command(
        "convert a YOLOv8 .pt, model .yaml or Ultralytics .onnx into an end-to-end TensorFlow SavedModel",
        "tftrt_yolo.conversion:convert",
        {
            "model": "a YOLOv8 .pt, model .yaml (e.g. yolov8n-seg.yaml) or Ultralytics .onnx "
            "(default: the built-in detect demo model)",
            "imgsz": "square input size, a multiple of 32 (default: the size the model was trained at)",
            "batch": "the largest batch the SavedModel takes",
            "dynamic": "take any batch up to --batch without padding (default: on for int8)",
            "backend": "what runs the network (default: tensorrt for --precision=fp16/int8, else tensorflow)",
            "precision": "TensorRT precision; fp16 and int8 imply --backend=tensorrt",
            "data": "images for INT8 calibration, engine building and the accuracy check: a dataset YAML, "
            "an image folder or list (default: the task's demo data)",
            "workspace": "TensorRT builder workspace in GiB",
            "minimum_segment_size": "smallest TensorFlow subgraph TF-TRT turns into an engine",
            "max_cached_engines": "TF-TRT engines kept per subgraph",
            "recalibrate": "convert again even if an identical conversion is in --output/--name",
            "max_map_drop": "fail an fp16/int8 conversion whose mAP50-95 (top-1) drops more than this",
            "output": "root of the model repository (TensorFlow Serving layout: OUTPUT/NAME/VERSION)",
            "name": "model name, one folder (default: from the model file, plus -xla or -trt-PRECISION)",
            "version": "version folder (default: the next free number)",
            "dry_run": "check everything and say what the conversion would do, without writing anything",
            "json": "write the conversion report (or the dry run's) as JSON to this file",
            "verbose": _VERBOSE,
        },
        "tftrt-yolo convert --model=best.pt --batch=8 --precision=int8 --data=data.yaml",
    ),
    "predict": Command(
        "detect, segment, classify, pose or obb on images and videos with a converted SavedModel",
        "tftrt_yolo.model:YoloModel.predict",
        {
            "model": "a SavedModel folder written by `tftrt-yolo convert` (convert a .pt first; required)",
            "source": "images (bmp dng gif jpeg jpg jp2 mpo pfm png tif tiff webp), folders, globs or videos; "
            "comma-separated or the flag repeated (required)",
            "batch": "images per call (default: the model's batch)",
            "conf": "confidence threshold",
            "iou": "NMS IoU threshold",
            "max_det": "most detections per image",
            "strict": "stop at the first unreadable image (otherwise: warn, skip it, exit 2 at the end)",
            "save_dir": "write annotated images to this folder",
            "json": "write the results as JSON to this file",
            "verbose": _VERBOSE,
        },
        "tftrt-yolo predict --model=saved_models/yolov8n-detect-demo/1 --source=images/ --save_dir=runs/predict",
        {"batch": "batch_size"},
    ),
    "val": Command(
        "mAP (top-1 for classify) of a SavedModel or a .pt on a dataset, with Ultralytics' metrics",
        "tftrt_yolo.validate:val",
        {
            "model": "a SavedModel folder, a YOLOv8 .pt or an Ultralytics .onnx (required)",
            "data": "a dataset YAML (classify: a folder with val/<class>/ images; default: the task's demo data)",
            "batch": "images per call (default: the SavedModel's static batch, else 1)",
            "imgsz": "a .pt's input size (default: the size it was trained at); SavedModels keep theirs",
            "conf": "confidence threshold (default: 0.001, obb 0.01, as Ultralytics' val)",
            "iou": "NMS IoU threshold",
            "max_det": "most detections per image",
            "val_images": "score only the first N val images (default: all)",
            "json": "write the metrics as JSON to this file",
            "verbose": _VERBOSE,
        },
        "tftrt-yolo val --model=saved_models/yolov8n-detect-demo/1 --data=data.yaml",
        {"val_images": "limit"},
    ),
    "benchmark": Command(
        "time and score a .pt on every runtime here (TF-TRT precisions, TensorFlow, XLA, PyTorch, ONNX Runtime)",
        "tftrt_yolo.benchmark:benchmark",
        {
            "model": "a YOLOv8 .pt checkpoint (required)",
            "precisions": "TensorRT precisions to measure",
            "batch": "images per timed call",
            "data": "timing images and val split: a dataset YAML (default: the task's demo data)",
            "imgsz": "input size (default: the size the model was trained at)",
            "warmup_iterations": "untimed warm-up calls before each timing",
            "iterations": "timed calls per timing",
            "val_images": "score only the first N val images (default: all; 0 skips accuracy)",
            "json": "write the table as JSON to this file",
            "markdown": "write the table as Markdown to this file",
            "plot": "write a PNG plot to this file",
            "verbose": _VERBOSE,
        },
        "tftrt-yolo benchmark --model=best.pt --batch=8 --markdown=bench.md --plot=bench.png",
        {"warmup_iterations": "warmup"},
    ),
    "doctor": Command(
        "what this machine can run: TensorFlow, GPU, TensorRT, TF-TRT precisions, and how to fix what is missing",
        "tftrt_yolo.environment:check_environment",
        {"json": "write the findings as JSON to this file", "verbose": _VERBOSE},
        "tftrt-yolo doctor",
    ),
    "serve-config": Command(
        "write a TensorFlow Serving model repository (models.config, batching, warm-up) for SavedModels",
        "tftrt_yolo.serving:write_model_repository",
        {
            "models": "SavedModel folders to put in the repository (required)",
            "repo": "the repository folder to write (required)",
            "name": "the model name in the repository (default: the name of each SavedModel's folder)",
            "version_policy": "versions the server loads: latest, all, or specific (every version written)",
            "version_labels": "LABEL=VERSION (one model) or NAME:LABEL=VERSION items, e.g. stable=1,canary=2 "
            "(need --version_policy=specific or all)",
            "batching": "write batching_parameters.txt for the models' batch (--nobatching: do not)",
            "warmup": "write warm-up requests so engines load with the model (--nowarmup: do not)",
            "serving_root": "where the server sees the repository ('' for this machine's path, for a local "
            "tensorflow_model_server)",
            "verbose": _VERBOSE,
        },
        "tftrt-yolo serve-config --models=saved_models/yolov8n-detect-demo/1 --repo=serving",
        {"version_labels": "labels", "name": "names"},
    ),
}


_WIDTH = 110


def define_flags() -> None:
    """Define every flag once, default None (unset), so a command sees only what the user typed."""
    for name, (kind, values) in FLAG_KINDS.items():
        if name in flags.FLAGS:
            continue
        if kind == "enum":
            flags.DEFINE_enum(name, None, values.split("|"), "see tftrt-yolo COMMAND --help")
        else:
            getattr(flags, f"DEFINE_{kind}")(name, None, "see tftrt-yolo COMMAND --help")


def overview() -> str:
    """`tftrt-yolo --help`: the commands, one line each."""
    width = max(map(len, COMMANDS))
    lines = ["usage: tftrt-yolo COMMAND [--flag=value ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "`tftrt-yolo COMMAND --help` lists a command's flags, their defaults and an example.",
              "Exit status: 0 done, 2 a problem you can fix (message on stderr), 130/143 interrupted, "
              "1 a bug (traceback)."]  # fmt: skip
    return "\n".join(lines)


def command_help(name: str) -> str:
    """`tftrt-yolo COMMAND --help`: every flag of the command with its default, and an example."""
    command = COMMANDS[name]
    defaults = command.defaults()
    rows = []
    for flag, text in command.flags.items():
        placeholder = FLAG_KINDS[flag][1]
        rows.append((f"--{flag}" + (f"={placeholder}" if placeholder else ""), text, defaults.get(flag)))
    width = min(max(len(r[0]) for r in rows), 28)
    lines = [f"usage: tftrt-yolo {name} [--flag=value ...]", "", command.summary, "", "flags:"]
    for usage, text, default in rows:
        if default is not None:
            text += f" (default: {_show(default)})"
        indent = " " * (width + 4)
        text = textwrap.fill(text, _WIDTH, break_on_hyphens=False, initial_indent=indent, subsequent_indent=indent)
        lines.append(f"  {usage:<{width}}  {text.lstrip()}" if len(usage) <= width else f"  {usage}\n{text}")
    lines += ["", "example:", f"  {command.example}"]
    return "\n".join(lines)


def _show(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)
