"""`tftrt-yolo COMMAND --flags`: convert, predict, val, benchmark, doctor, serve-config.

The only module that prints. Problems a user can fix end with one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from absl import app, flags

from tftrt_yolo import flags as tftrt_flags
from tftrt_yolo.errors import TftrtYoloError

FLAGS = flags.FLAGS


def _require(command: str, *names: str) -> None:
    missing = [f"--{n}" for n in names if getattr(FLAGS, n) in (None, [], "")]
    if missing:
        raise app.UsageError(f"{command} needs {', '.join(missing)}")


def _write_json(obj) -> None:
    if FLAGS.json:
        Path(FLAGS.json).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.json).write_text(json.dumps(obj, indent=2))
        print(f"JSON written to {FLAGS.json}")


def run_convert() -> None:
    from tftrt_yolo.convert import convert

    path = convert(
        FLAGS.model,
        imgsz=FLAGS.imgsz,
        batch=FLAGS.batch or 1,
        dynamic=FLAGS.dynamic,
        backend=FLAGS.backend,
        precision=FLAGS.precision,
        workspace=FLAGS.workspace,
        data=FLAGS.data,
        minimum_segment_size=FLAGS.minimum_segment_size,
        max_cached_engines=FLAGS.max_cached_engines,
        recalibrate=FLAGS.recalibrate,
        max_map_drop=FLAGS.max_map_drop,
        output=FLAGS.output,
        name=FLAGS.name,
        version=FLAGS.version,
    )
    from tftrt_yolo.model import load

    print(load(path).summary())
    print(f"SavedModel written to {path}")


def run_predict() -> None:
    _require("predict", "model", "source")
    from tftrt_yolo.model import load

    model = load(FLAGS.model)
    results = model.predict(
        FLAGS.source if len(FLAGS.source) > 1 else FLAGS.source[0],
        batch_size=FLAGS.batch,
        conf=FLAGS.conf,
        iou=FLAGS.iou,
        max_det=FLAGS.max_det,
        verbose=True,
    )
    for r in results:
        found = f"top-1 {r.names[int(r.top5[0])]} {r.top5_scores[0]:.2f}" if r.task == "classify" else f"{len(r)} found"
        print(f"{r.path}: {found}")
    if FLAGS.save_dir:
        for i, r in enumerate(results):
            stem = Path(r.path.split(":")[0]).stem if r.path else "image"
            r.save(Path(FLAGS.save_dir) / f"{i:05d}_{stem}.jpg")
        print(f"annotated images written to {FLAGS.save_dir}")
    _write_json([r.to_dict() for r in results])


def run_doctor() -> None:
    from tftrt_yolo.environment import check_environment

    report = check_environment()
    print(report.format())
    _write_json(report.to_dict())


def _version_labels(specs: list[str] | None) -> dict:
    """`LABEL=VERSION` (one model) or `NAME:LABEL=VERSION` items -> write_model_repository's labels."""
    flat, nested = {}, {}
    for spec in specs or []:
        target, _, version = spec.partition("=")
        name, _, label = target.rpartition(":")
        if not label or not version.strip().isdigit():
            raise app.UsageError(f"--version_labels takes LABEL=VERSION or NAME:LABEL=VERSION items, got {spec!r}")
        (nested.setdefault(name, {}) if name else flat)[label] = int(version)
    if flat and nested:
        raise app.UsageError("--version_labels: name every model (NAME:LABEL=VERSION) or none")
    return nested or flat


def run_serve_config() -> None:
    _require("serve-config", "models", "repo")
    from tftrt_yolo import serving

    repo = serving.write_model_repository(
        FLAGS.models,
        FLAGS.repo,
        names=[FLAGS.name] * len(FLAGS.models) if FLAGS.name else None,
        version_policy=FLAGS.version_policy,
        labels=_version_labels(FLAGS.version_labels),
        batching=FLAGS.batching,
        warmup=FLAGS.warmup,
        serving_root=FLAGS.serving_root or None,
    )
    config = serving.read_model_config(repo / serving.CONFIG_FILE)
    print(f"TensorFlow Serving model repository written to {repo}")
    for entry in config.model_config_list.config:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(entry.version_labels.items()))
        print(f"  {entry.name}: {entry.base_path} ({entry.model_version_policy.WhichOneof('policy_choice')}"
              f"{'; ' + labels if labels else ''})")
    print("serve it with:")
    print(serving.serve_command(repo))


def run_val() -> None:
    _require("val", "model")
    from tftrt_yolo.validate import format_result, val

    result = val(
        FLAGS.model,
        FLAGS.data,
        batch=FLAGS.batch,
        imgsz=FLAGS.imgsz,
        conf=FLAGS.conf if FLAGS["conf"].present else None,  # val's default is 0.001 (obb 0.01), not predict's
        iou=FLAGS.iou,
        max_det=FLAGS.max_det,
        limit=FLAGS.val_images,
        verbose=True,
    )
    print(format_result(result))
    _write_json(result)


def run_benchmark() -> None:
    _require("benchmark", "model")
    from tftrt_yolo.benchmark import benchmark

    table = benchmark(
        FLAGS.model,
        precisions=FLAGS.precisions or (),
        batch=FLAGS.batch or 8,
        data=FLAGS.data,
        imgsz=FLAGS.imgsz,
        warmup=FLAGS.warmup_iterations,
        iterations=FLAGS.iterations,
        val_images=FLAGS.val_images,
        verbose=True,
    )
    print(table.to_markdown())
    if FLAGS.markdown:
        Path(FLAGS.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(FLAGS.markdown).write_text(table.to_markdown())
        print(f"Markdown written to {FLAGS.markdown}")
    if FLAGS.plot:
        print(f"plot written to {table.plot(FLAGS.plot)}")
    _write_json(table.to_dict())


COMMANDS = {
    "convert": run_convert,
    "predict": run_predict,
    "val": run_val,
    "benchmark": run_benchmark,
    "doctor": run_doctor,
    "serve-config": run_serve_config,
}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in tftrt_flags.COMMANDS:
        raise app.UsageError(f"usage: tftrt-yolo {{{'|'.join(tftrt_flags.COMMANDS)}}} [--flags]; see --help")
    try:
        COMMANDS[argv[1]]()
    except TftrtYoloError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices drown the output
    logging.basicConfig(format="%(message)s")
    logging.getLogger("tftrt_yolo").setLevel(logging.INFO)
    tftrt_flags.define_flags()
    app.run(main)
