"""Faults and bad input, as a user meets them: real files, real processes, real signals."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest
import torch
from conftest import REAL_PHOTOS

import tftrt_yolo
from tftrt_yolo import files, flags, inputs
from tftrt_yolo.demo import demo_model
from tftrt_yolo.errors import ConversionError, EnvironmentNotReady, InputError, UnreadableImageWarning

NOISE = ("Unable to register cu", "I0000 ", "absl::InitializeLog", "To enable the following instructions")


def cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "tftrt_yolo", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})}, **kwargs)  # fmt: skip


def cli_in_process(*args) -> tuple[int, bool, str]:
    """(exit status, whether TensorFlow was imported, stderr) of the command, in a fresh interpreter."""
    code = (
        "import sys\nfrom tftrt_yolo import cli\ntry:\n    cli.run(['tftrt-yolo', *sys.argv[1:]])\n"
        "    code = 0\nexcept SystemExit as e:\n    code = e.code\nprint(code, 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300)
    status, imported = done.stdout.split()[-2:]
    return int(status), imported == "True", done.stderr


# -- the command line: help, usage errors, exit status ----------------------------------------------------------------


def test_help_lists_commands_and_each_commands_flags_with_defaults():
    top = cli("--help")
    assert top.returncode == 0
    assert all(f"  {name} " in top.stdout for name in flags.COMMANDS)
    for name, command in flags.COMMANDS.items():
        done = cli(name, "--help")
        assert done.returncode == 0 and f"tftrt-yolo {name}" in done.stdout and "example:" in done.stdout
        assert all(f"--{flag}" in done.stdout for flag in command.flags)
    convert_help = cli("convert", "--help").stdout
    assert "(default: 1)" in convert_help.split("--batch=N")[1].splitlines()[0]  # from convert()'s signature
    assert "(default: saved_models)" in convert_help


@pytest.mark.parametrize(
    "args, message",
    [
        (("fly",), "no command 'fly'"),
        (("convert", "--bogus=1"), "Unknown command line flag 'bogus'"),
        (("convert", "--batch=two"), "flag --batch=two"),
        (("convert", "--backend=onnx"), "--backend"),
        (("predict", "--output=x"), "predict does not take --output"),
        (("predict", "--model=x"), "predict needs --source"),
        (("convert", "stray"), "unexpected argument 'stray'"),
    ],
)
def test_usage_errors_exit_2_in_one_line(args, message):
    status, imported, stderr = cli_in_process(*args)
    assert status == 2 and not imported
    assert message in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


@pytest.fixture
def junk(tmp_path):
    """Bad model files and paths that convert must reject in milliseconds."""
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "folder.pt").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        (("--batch=0",), "batch must be a positive integer"),
        (("--batch=100000",), "up to 256"),
        (("--imgsz=1000000",), "up to 4096"),
        (("--imgsz=100",), "multiple of 32"),
        (("--version=0",), "version must be a positive integer"),
        (("--name=../x",), "one folder name"),
        (("--name=a/b",), "one folder name"),
        (("--data={junk}/missing.yaml",), "data not found"),
        (("--output={junk}/a-file",), "is a file, not a folder"),
        (("--output={junk}/a-file/sub",), "is a file, not a folder"),
        (("--model={junk}/random.pt",), "neither a zip archive nor a pickle"),
        (("--model={junk}/empty.pt",), "is empty"),
        (("--model={junk}/folder.pt",), "is a folder: pass a model file"),
        (("--model={junk}/missing.pt",), "model file not found"),
        (("--precision=fp16", "--backend=xla"), "runs on TensorRT, not xla"),
    ],
)
def test_convert_rejects_bad_arguments_before_importing_tensorflow(args, message, junk):
    args = [a.format(junk=junk) for a in args]
    output = [] if any(a.startswith("--output") for a in args) else [f"--output={junk}/out"]
    status, imported, stderr = cli_in_process("convert", *args, *output)
    assert (status, imported) == (2, False), stderr
    assert message in stderr and "Traceback" not in stderr
    assert not (junk / "out").exists()


def test_read_only_output(tmp_path):
    """--output in a folder the user cannot write: one line, exit 2 (root runs it without its override rights)."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    drop = "-dac_override,-dac_read_search"
    as_user = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"] if os.geteuid() == 0 else []
    done = subprocess.run([*as_user, sys.executable, "-m", "tftrt_yolo", "convert", f"--output={locked / 'models'}"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "is not writable" in done.stderr and "Traceback" not in done.stderr


def test_precision_implies_tensorrt(tmp_path):
    """int8 without --backend asks for TensorRT (missing on a CPU machine), not for --backend."""
    with pytest.raises(EnvironmentNotReady, match="TensorRT|TF-TRT"):
        tftrt_yolo.convert(demo_model("detect"), precision="int8", output=tmp_path, verbose=False)
    done = cli("convert", "--precision=fp16", f"--output={tmp_path}")
    assert done.returncode == 2 and "backend" not in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


# -- model files that are not YOLOv8 models ---------------------------------------------------------------------------


def test_checkpoints_that_are_not_yolo_models(tmp_path):
    state_dict = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state_dict)
    module = tmp_path / "linear.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, module)
    for path, message in [(state_dict, "only weights \\(a state_dict\\)"), (module, "holds a Linear, not an Ultr")]:
        with pytest.raises(InputError, match=message):
            tftrt_yolo.convert(path, output=tmp_path / "out", verbose=False)
    assert not list((tmp_path / "out").glob("*/*"))


def test_onnx_with_ultralytics_metadata_but_no_yolo_head(tmp_path):
    import onnx

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["images"], ["out"])],
        "g",
        [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
        [onnx.helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
    )
    proto = onnx.helper.make_model(graph)
    onnx.helper.set_model_props(proto, {"task": "detect", "names": "{0: 'a', 1: 'b'}", "imgsz": "[64, 64]"})
    onnx.save(proto, tmp_path / "fake.onnx")
    with pytest.raises(ConversionError, match=r"not a YOLOv8 detect model: .*\(batch, 4 \+ 2 classes, anchors\)"):
        tftrt_yolo.convert(tmp_path / "fake.onnx", output=tmp_path / "out", verbose=False)


# -- staging folders: atomic, cleaned up, never someone else's --------------------------------------------------------

HOLD = "import sys, time\nfrom tftrt_yolo import files\nwith files.staging_dir(sys.argv[1]) as s:\n    " \
       "(s / 'half.pb').write_bytes(b'x' * 1000)\n    print(s, flush=True)\n    time.sleep(600)\n"  # fmt: skip


def test_stale_staging_is_removed_but_not_a_live_one(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", HOLD, tmp_path], stdout=subprocess.PIPE, text=True)
    dead = subprocess.Popen([sys.executable, "-c", HOLD, tmp_path], stdout=subprocess.PIPE, text=True)
    try:
        live_dir, dead_dir = Path(live.stdout.readline().strip()), Path(dead.stdout.readline().strip())
        dead.kill()  # SIGKILL: no clean-up runs
        dead.wait()
        orphan = tmp_path / ".tmp-0123456789ab"  # an old run's folder without a lock file
        orphan.mkdir()
        assert dead_dir.is_dir() and live_dir.is_dir()
        assert sorted(files.remove_stale_staging(tmp_path)) == sorted([dead_dir, orphan])
        assert live_dir.is_dir() and (live_dir / "half.pb").exists()
        assert not dead_dir.exists() and not orphan.exists()
        assert not dead_dir.with_name(dead_dir.name + ".lock").exists()
    finally:
        live.kill()
        live.wait()


def wait_for(predicate, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def onnx2tf_child(parent: psutil.Process):
    try:
        return next((p for p in parent.children(recursive=True) if "onnx2tf" in " ".join(p.cmdline())), None)
    except psutil.Error:
        return None


def start_conversion(tmp_path):
    """A CLI conversion with its own temp dir, stopped once the onnx2tf child runs."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    out = tmp_path / "models"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tftrt_yolo", "convert", f"--output={out}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)},
    )  # fmt: skip
    child = wait_for(lambda: onnx2tf_child(psutil.Process(proc.pid)))
    assert list(out.glob(".tmp-*")) and list(temp.glob("tftrt_yolo-work-*"))  # work in progress
    return proc, child, out, temp


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cleans_up_everything(sig, status, tmp_path):
    proc, child, out, temp = start_conversion(tmp_path)
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status
    assert f"interrupted ({sig.name})" in stderr and "Traceback" not in stderr
    wait_for(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, timeout=30)
    assert list(out.iterdir()) == [] and list(temp.glob("tftrt_yolo-*")) == []


@pytest.mark.slow
def test_kill_9_leftovers_are_removed_by_the_next_conversion(tmp_path):
    proc, child, out, temp = start_conversion(tmp_path)
    proc.kill()
    proc.wait()
    wait_for(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, timeout=30)  # PDEATHSIG
    assert list(out.glob(".tmp-*")) and list(temp.glob("tftrt_yolo-work-*"))  # left behind
    state_dict = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, state_dict)  # the next conversion fails, after it cleaned up
    done = cli("convert", f"--model={state_dict}", f"--output={out}", env={"TMPDIR": str(temp)})
    assert done.returncode == 2 and "state_dict" in done.stderr
    assert list(out.iterdir()) == [] and list(temp.glob("tftrt_yolo-*")) == []


# -- predict: every format Ultralytics reads, bad images among good ones, bad output paths ----------------------------


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """bus.jpg written as every extra format, 16-bit TIFF included."""
    folder = tmp_path_factory.mktemp("formats")
    bgr = cv2.imread(str(REAL_PHOTOS[0]))
    cv2.imwrite(str(folder / "bus16.tif"), bgr.astype(np.uint16) * 256 + 100)  # 16 bits: the high byte is bgr
    cv2.imwrite(str(folder / "bus.tiff"), bgr)
    cv2.imwrite(str(folder / "bus.webp"), bgr, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    cv2.imwrite(str(folder / "bus.pfm"), bgr.astype(np.float32))
    cv2.imwrite(str(folder / "bus.jp2"), bgr)
    cv2.imwrite(str(folder / "bus.png"), bgr)
    return folder


def test_formats_decode_as_ultralytics_reads_them(formats):
    from tftrt_yolo._ultralytics import ultralytics  # noqa: F401  (sets Ultralytics' offline switches)
    from ultralytics.utils.patches import imread

    for path in sorted(formats.iterdir()):
        ours = cv2.imdecode(np.frombuffer(inputs.read_image(path), np.uint8), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(ours, imread(str(path)), err_msg=path.name)
    assert inputs.count(formats) == 6


@pytest.mark.slow
def test_predict_every_format(loaded, formats):
    model = loaded("detect")
    results = model.predict(formats, verbose=False)
    assert [Path(r.path).name for r in results] == sorted(p.name for p in formats.iterdir())
    reference = results[[Path(r.path).suffix for r in results].index(".png")]
    for r in results:
        if r.path.endswith((".tif", ".tiff", ".webp", ".pfm")):  # lossless: the same pixels as the PNG
            np.testing.assert_allclose(r.boxes, reference.boxes, atol=1e-3, err_msg=r.path)


@pytest.fixture
def mixed(tmp_path, demo_images):
    """A folder of three good images and two unreadable ones (one decoded in the graph, one here)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, p in enumerate(demo_images("detect", 3)):
        (folder / f"{i}.jpg").write_bytes(p.read_bytes())
    (folder / "1b-corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (folder / "2b-corrupt.tif").write_bytes(b"II*\x00 garbage")
    return folder


@pytest.mark.slow
def test_predict_skips_unreadable_images_unless_strict(loaded, mixed):
    model = loaded("detect")
    with pytest.warns(UnreadableImageWarning) as caught:
        results = model.predict(mixed, verbose=False)
    assert [Path(r.path).name for r in results] == ["0.jpg", "1.jpg", "2.jpg"]
    assert [("1b-corrupt.jpg" in str(w.message), "2b-corrupt.tif" in str(w.message)) for w in caught] == [
        (True, False), (False, True)]  # fmt: skip
    with pytest.raises(InputError, match="cannot decode image .*1b-corrupt.jpg"):
        model.predict(mixed, strict=True, verbose=False)
    with pytest.raises(InputError, match="no image could be read: cannot decode"), pytest.warns(UnreadableImageWarning):
        model.predict(str(mixed / "1b-corrupt.jpg"), verbose=False)


@pytest.mark.slow
def test_cli_predict_with_unreadable_images(converted, mixed, tmp_path):
    comma = mixed / "a,b.jpg"
    comma.write_bytes((mixed / "0.jpg").read_bytes())
    out = tmp_path / "out.json"
    done = cli("predict", f"--model={converted('detect')}", f"--source={mixed}", f"--source={comma}", f"--json={out}")
    assert done.returncode == 2
    assert done.stderr.count("warning: cannot decode image") == 2
    assert "error: 2 of 7 images could not be read" in done.stderr and "Traceback" not in done.stderr
    assert [Path(r["path"]).name for r in json.loads(out.read_text())] == ["0.jpg", "1.jpg", "2.jpg", "a,b.jpg",
                                                                           "a,b.jpg"]  # fmt: skip
    assert not any(line in done.stderr for line in NOISE)
    strict = cli("predict", f"--model={converted('detect')}", f"--source={mixed}", "--strict", f"--json={out}.2")
    assert strict.returncode == 2 and "1b-corrupt.jpg" in strict.stderr and not Path(f"{out}.2").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--save_dir={tmp}/a-file",), "is a file, not a folder"),
        (("--json={tmp}",), "is a folder; pass a file path"),
        (("--model={tmp}/a-file",), "predict takes a SavedModel folder"),
        (("--model={tmp}",), "not a SavedModel folder"),
        (("--source=https://example.com/bus.jpg",), "https://example.com/bus.jpg is a URL"),
    ],
)
def test_predict_checks_before_loading_tensorflow(args, message, tmp_path):
    (tmp_path / "a-file").write_text("x")
    args = [a.format(tmp=tmp_path) for a in args]
    model = [] if any(a.startswith("--model") for a in args) else [f"--model={tmp_path}"]
    source = [] if any(a.startswith("--source") for a in args) else [f"--source={REAL_PHOTOS[0]}"]
    status, imported, stderr = cli_in_process("predict", *model, *source, *args)
    assert (status, imported) == (2, False) and message in stderr, stderr


def test_result_save_to_a_bad_path_is_an_input_error(tmp_path):
    (tmp_path / "a-file").write_text("x")
    result = tftrt_yolo.Result(task="detect", names={0: "a"}, orig_shape=(8, 8), encoded=cv2.imencode(
        ".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())  # fmt: skip
    with pytest.raises(InputError, match="cannot write an image"):
        result.save(tmp_path / "a-file" / "x.jpg")


# -- quiet by default -------------------------------------------------------------------------------------------------


def test_quiet_by_default_verbose_on_request():
    quiet, verbose = cli("doctor"), cli("doctor", "--verbose")
    assert quiet.returncode == verbose.returncode == 0
    assert not [line for line in NOISE if line in quiet.stderr], quiet.stderr
    assert [line for line in NOISE if line in verbose.stderr]  # what the filter takes away is really there
