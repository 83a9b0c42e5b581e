"""`tftrt-yolo COMMAND --flags`: convert, predict, val, benchmark, doctor, serve-config.

The only module that prints. Exit status: 0 done; 2 a problem the user can
fix (a bad flag or command line, a missing or bad file, a machine without what
the request needs, a conversion step that failed; predict also when some
images could not be read, after writing the results of the others), one
line on stderr and no traceback; 130 Ctrl-C (SIGINT) and 143 SIGTERM, after
cleaning up; 1 a bug (with its traceback).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

from absl import flags

from tftrt_yolo import flags as tftrt_flags
from tftrt_yolo.errors import InputError, TftrtYoloError, UnreadableImageWarning
from tftrt_yolo.files import check_writable_dir, check_writable_file

FLAGS = flags.FLAGS
EXIT_USER_ERROR = 2
_warned = collections.Counter()  # warning category -> how many were shown


class UsageError(Exception):
    """A command line that cannot run."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: unwinds like Ctrl-C, so every `finally` and context manager cleans up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum, frame):
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal stops at once
        signal.signal(sig, signal.SIG_DFL)
    raise Interrupted(signum)


def _arguments(command: str, *cli_only: str) -> dict:
    """The library arguments of the flags the user set (the library's defaults stand for the rest)."""
    spec = tftrt_flags.COMMANDS[command]
    skip = {*tftrt_flags.CLI_ONLY, *cli_only}
    return {spec.parameter(n): FLAGS[n].value for n in spec.flags if FLAGS[n].present and n not in skip}


def _require(command: str, *names: str) -> None:
    missing = [f"--{n}" for n in names if FLAGS[n].value in (None, [], "")]
    if missing:
        raise UsageError(f"{command} needs {', '.join(missing)}")


def _json_path() -> Path | None:
    """--json, checked before any work."""
    return check_writable_file(FLAGS.json, "--json") if FLAGS.json else None


def _write_json(path: Path | None, obj) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2))
        print(f"JSON written to {path}")


def run_convert() -> None:
    from tftrt_yolo.conversion import DEFAULT_OUTPUT, convert
    from tftrt_yolo.metadata import read_metadata

    json_path, arguments = _json_path(), _arguments("convert")
    if arguments.get("dry_run"):
        report = convert(**arguments, verbose=True)
        print(report.format())
        _write_json(json_path, report.to_dict())
        return
    output = Path(arguments.get("output", DEFAULT_OUTPUT))
    before = set(output.glob("*/*"))
    path = convert(**arguments, verbose=True)
    metadata = read_metadata(path)
    info = metadata.info
    print(f"SavedModel reused: {path}" if path in before
          else f"SavedModel written to {path}")  # fmt: skip
    print(f"  {info.task}, {len(info.names)} classes, {info.imgsz}x{info.imgsz}, "
          f"{'batch up to' if metadata.dynamic else 'static batch'} {metadata.batch}, "
          f"{metadata.backend} {metadata.precision}")  # fmt: skip
    if metadata.report:  # TF-TRT's
        from tftrt_yolo.report import ConversionReport

        print(ConversionReport.from_dict(metadata.report).format())
    print(f"next: tftrt-yolo predict --model={path} --source=IMAGES")
    _write_json(json_path, {"saved_model": str(path), **metadata.to_dict()})


def _sources(values: list[str]) -> list[str]:
    """--source items: each value is a path as it is when it exists (names may hold commas), else split."""
    return [s for v in values for s in ([v] if Path(v).exists() else v.split(",")) if s]


def run_predict() -> None:
    _require("predict", "model", "source")
    from tftrt_yolo import inputs
    from tftrt_yolo.metadata import read_metadata
    from tftrt_yolo.model import DEFAULTS, load
    from tftrt_yolo.signatures import check_thresholds
    from tftrt_yolo.tasks import task_spec

    # everything that can be checked is checked before TensorFlow loads (seconds)
    json_path = _json_path()
    save_dir = check_writable_dir(FLAGS.save_dir, "--save_dir") if FLAGS.save_dir else None
    arguments = _arguments("predict", "model", "source")
    check_thresholds(*(arguments.get(k, DEFAULTS[k]) for k in ("conf", "iou", "max_det")))
    items = _sources(FLAGS.source)
    source = items if len(items) > 1 else items[0]
    total = inputs.count(source)  # finds missing files, URLs and unsupported types
    model_path = Path(FLAGS.model)
    if model_path.is_file():
        raise InputError(f"predict takes a SavedModel folder, not the file {model_path}; convert it first: "
                         f"tftrt-yolo convert --model={model_path}")  # fmt: skip
    metadata = read_metadata(model_path)
    if not 1 <= arguments.get("batch_size", 1) <= metadata.batch:
        raise InputError(f"--batch must be between 1 and {metadata.batch} (the batch the model was converted for)")

    results = load(model_path).predict(source, verbose=True, **arguments)
    for r in results:
        found = (f"{len(r)} found" if task_spec(r.task).has_detections
                 else f"top-1 {r.names[int(r.top5[0])]} {r.top5_scores[0]:.2f}")
        print(f"{r.path}: {found}")
    if save_dir:
        for i, r in enumerate(results):
            stem = Path(r.path.split(":")[0]).stem if r.path else "image"
            r.save(save_dir / f"{i:05d}_{stem}.jpg")
        print(f"annotated images written to {save_dir}")
    _write_json(json_path, [r.to_dict() for r in results])
    if _warned[UnreadableImageWarning]:
        count = f"{_warned[UnreadableImageWarning]} of {total}" if total else _warned[UnreadableImageWarning]
        raise InputError(f"{count} images could not be read (warnings above); the others have results "
                             "(--strict stops at the first)")  # fmt: skip


def run_doctor() -> None:
    from tftrt_yolo.environment import check_environment

    json_path = _json_path()
    report = check_environment()
    print(report.format())
    _write_json(json_path, report.to_dict())


def _version_labels(specs: list[str] | None) -> dict:
    """`LABEL=VERSION` (one model) or `NAME:LABEL=VERSION` items -> write_model_repository's labels."""
    flat, nested = {}, {}
    for spec in specs or []:
        target, _, version = spec.partition("=")
        name, _, label = target.rpartition(":")
        if not label or not version.strip().isdigit():
            raise UsageError(f"--version_labels takes LABEL=VERSION or NAME:LABEL=VERSION items, got {spec!r}")
        (nested.setdefault(name, {}) if name else flat)[label] = int(version)
    if flat and nested:
        raise UsageError("--version_labels: name every model (NAME:LABEL=VERSION) or none")
    return nested or flat


def run_serve_config() -> None:
    _require("serve-config", "models", "repo")
    from tftrt_yolo import serving

    arguments = _arguments("serve-config", "name", "version_labels")
    if FLAGS.name:
        arguments["names"] = [FLAGS.name] * len(FLAGS.models)
    if FLAGS.version_labels:
        arguments["labels"] = _version_labels(FLAGS.version_labels)
    if arguments.get("serving_root") == "":
        arguments["serving_root"] = None  # this machine's paths
    repo = serving.write_model_repository(**arguments)
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

    json_path = _json_path()
    result = val(**_arguments("val"), verbose=True)
    print(format_result(result))
    _write_json(json_path, result)


def run_benchmark() -> None:
    _require("benchmark", "model")
    from tftrt_yolo.benchmark import benchmark

    json_path = _json_path()
    markdown = check_writable_file(FLAGS.markdown, "--markdown") if FLAGS.markdown else None
    plot = check_writable_file(FLAGS.plot, "--plot") if FLAGS.plot else None
    table = benchmark(**_arguments("benchmark"), verbose=True)
    print(table.to_markdown())
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(table.to_markdown())
        print(f"Markdown written to {markdown}")
    if plot:
        print(f"plot written to {table.plot(plot)}")
    _write_json(json_path, table.to_dict())


COMMANDS = {
    "convert": run_convert,
    "predict": run_predict,
    "val": run_val,
    "benchmark": run_benchmark,
    "doctor": run_doctor,
    "serve-config": run_serve_config,
}
HELP = ("-h", "--help", "--helpshort", "--helpfull", "help")


def _parse(argv: list[str]) -> str | None:
    """The command to run, with FLAGS parsed; None when help was asked for (and printed)."""
    args = argv[1:]
    if not args or args[0] in HELP:
        topic = args[1] if len(args) > 1 and args[0] == "help" else None
        if topic is not None and topic not in COMMANDS:
            raise UsageError(f"no command {topic!r}; commands: {', '.join(COMMANDS)}")
        print(tftrt_flags.command_help(topic) if topic else tftrt_flags.overview())
        return None
    command = args[0]
    if command not in COMMANDS:
        raise UsageError(f"no command {command!r}; commands: {', '.join(COMMANDS)} (tftrt-yolo --help)")
    if any(a in HELP for a in args[1:]):
        print(tftrt_flags.command_help(command))
        return None
    try:
        rest = FLAGS([argv[0], *args[1:]])
    except flags.Error as e:
        raise UsageError(f"{e} (tftrt-yolo {command} --help lists the flags)") from None
    if len(rest) > 1:
        raise UsageError(f"unexpected argument {rest[1]!r}: flags take the form --name=value")
    spec = tftrt_flags.COMMANDS[command]
    foreign = [f"--{n}" for n in tftrt_flags.FLAG_KINDS if FLAGS[n].present and n not in spec.flags]
    if foreign:
        raise UsageError(f"{command} does not take {', '.join(foreign)} (tftrt-yolo {command} --help lists its flags)")
    return command


# TensorFlow's C++ info and warning lines (tsl and absl formats), the CUDA plug-in notices of a CPU machine, and
# TF-TRT's segmenter finding no GPU (what a dry run does on a machine without one)
_LOG_LINE = rb"^(?:[IWEF]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] )"
_NOISE = (
    rb"^(?:[IW]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] |WARNING: All log messages before absl::InitializeLog"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: E \S+\] (?:Unable to register cu(?:FFT|DNN|BLAS) factory"
    rb"|Could not find any TF GPUs)"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    rb"|\t \[\[\{\{function_node )"  # the op context line below a logged op error
)
_FILTER = f"""
import re, sys
noise, log_line, dropping = re.compile({_NOISE!r}), re.compile({_LOG_LINE!r}), False
for line in sys.stdin.buffer:
    if noise.match(line):
        dropping = True
    elif not dropping or log_line.match(line):  # lines after a dropped one belong to its message until the next
        dropping = False
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
"""


def _filter_native_stderr() -> None:
    """Send file descriptor 2, where TensorFlow's C++ code logs, through a filter process that drops the noise.

    Python's own stderr keeps the terminal. The filter is a process, not a thread, so that what a crashing
    process writes last still comes through; its own session keeps Ctrl-C from stopping it first.
    """
    sys.stderr.flush()
    child = subprocess.Popen([sys.executable, "-c", _FILTER], stdin=subprocess.PIPE, start_new_session=True)
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    os.dup2(child.stdin.fileno(), 2)
    child.stdin.close()


def _write_line(text: str) -> None:
    """A line on stderr, also while a progress bar is drawn there (tqdm clears and redraws it)."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


class _LineHandler(logging.Handler):
    def emit(self, record):
        _write_line(self.format(record))


def _show_warning(message, category, filename, lineno, file=None, line=None):
    _warned[category] += 1
    _write_line(f"warning: {message}")


def _set_up_output(verbose: bool) -> None:
    """Quiet by default: progress, results, warnings that matter; --verbose adds every library's log lines."""
    if not verbose:
        _filter_native_stderr()
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(format="%(message)s", level=level, handlers=[_LineHandler()], force=True)
    logging.getLogger("tftrt_yolo").setLevel(logging.INFO)
    warnings.showwarning = _show_warning


def run(argv: list[str] | None = None) -> None:
    tftrt_flags.define_flags()
    try:
        command = _parse(sys.argv if argv is None else argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    if command is None:
        return
    _set_up_output(bool(FLAGS.verbose))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        COMMANDS[command]()
    except (TftrtYoloError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except Interrupted as e:
        print(f"interrupted ({e}): stopped, temporary files removed", file=sys.stderr)
        sys.exit(128 + e.signum)
