"""The doctor: real probes on this machine, and the findings logic on real data objects."""

from __future__ import annotations

import dataclasses
import json

import pytest
import tensorflow as tf

from tftrt_yolo.environment import (
    GPU_SETUP,
    VERSIONS,
    EnvironmentReport,
    Gpu,
    LibraryProbe,
    check_environment,
    find_problems,
    probe_libraries,
    require_tftrt,
)
from tftrt_yolo.errors import EnvironmentNotReady

NOT_FOUND = "cannot open shared object file: No such file or directory"


@pytest.fixture(scope="module")
def report() -> EnvironmentReport:
    return check_environment()


def test_real_probes_agree_with_tensorflow(report):
    assert report.tensorflow_version == tf.__version__ == "2.17.1"
    assert report.cuda_build and report.cuda_version == "12.3"
    assert report.tftrt_compiled  # the PyPI Linux x86_64 wheel is built with TensorRT
    assert report.linked_tensorrt_version == (8, 6, 1)
    assert [p.name for p in report.tensorrt_libraries][:2] == ["libnvinfer.so.8.6.1", "libnvinfer_plugin.so.8.6.1"]
    # The ctypes probe (child process) and TensorFlow's own loader must agree.
    assert report.tensorrt_loadable == report.tensorrt_enabled
    assert len(report.gpus) == len(tf.config.list_physical_devices("GPU"))
    assert report.xla_available
    assert report.tftrt_usable == (not [f for f in report.problems if f.severity == "error"])
    json.dumps(report.to_dict())  # JSON-ready


def test_this_machine_cannot_run_tftrt(report):
    if report.tensorrt_enabled:
        pytest.skip("this machine has TensorRT")
    assert not report.tensorrt_loadable and not report.tensorrt_enabled
    assert report.loaded_tensorrt_version is None  # never asked: that call would abort the process
    assert all(NOT_FOUND in p.error for p in report.tensorrt_libraries if not p.loaded)
    assert not report.tftrt_usable
    trt = report.problems[0]
    assert trt.severity == "error" and trt.see == GPU_SETUP
    assert "TensorRT 8.6.1 libraries" in trt.problem and "libnvinfer.so.8.6.1" in trt.problem
    assert "LD_LIBRARY_PATH" in trt.fix and "tensorrt-libs==8.6.1" in trt.fix
    if not report.nvidia_driver.loaded:  # no GPU machine: the driver is missing too
        assert not report.gpus
        assert [f.problem.split(":")[0] for f in report.problems[1:]] == ["no NVIDIA driver"]
    text = report.format()
    for line in ("TensorFlow             2.17.1", "TF-TRT compiled in     yes", "Linked TensorRT        8.6.1",
                 "TF-TRT usable          NO", "see: " + GPU_SETUP):  # fmt: skip
        assert line in text, text
    with pytest.raises(EnvironmentNotReady) as err:
        require_tftrt(report=report)
    message = str(err.value)
    assert all(f.problem in message and f.fix in message for f in report.problems)
    assert "tftrt-yolo doctor" in message
    assert report.reason().startswith("TF-TRT is not usable here: TensorRT 8.6.1 libraries")


def test_probe_libraries_loads_real_libraries():
    libc, missing = probe_libraries(["libc.so.6", "libnvinfer.so.0.0.0"])
    assert libc.loaded and libc.path and "libc" in libc.path and libc.error is None
    assert not missing.loaded and NOT_FOUND in missing.error


# The findings logic, on reports as other machines would produce them.

H100 = Gpu("NVIDIA H100 80GB HBM3", (9, 0))
P100 = Gpu("Tesla P100-PCIE-16GB", (6, 0))


def _lib(name, loaded=True, path=None, version=None):
    if loaded:
        return LibraryProbe(name, True, path or f"/usr/lib/x86_64-linux-gnu/{name}", version)
    return LibraryProbe(name, False, error=f"{name}: {NOT_FOUND}")


def healthy(**changes) -> EnvironmentReport:
    """A GPU machine where TF-TRT works."""
    base = EnvironmentReport(
        python_version="3.11.7",
        tensorflow_version="2.17.1",
        cuda_build=True,
        cuda_version="12.3",
        tftrt_compiled=True,
        linked_tensorrt_version=(8, 6, 1),
        tensorrt_libraries=(_lib("libnvinfer.so.8.6.1", version=(8, 6, 1)), _lib("libnvinfer_plugin.so.8.6.1")),
        tensorrt_enabled=True,
        loaded_tensorrt_version=(8, 6, 1),
        nvidia_driver=_lib("libcuda.so.1"),
        cuda_visible_devices=None,
        gpus=(H100,),
        xla_available=True,
    )
    return dataclasses.replace(base, **changes)


NO_TENSORRT = dict(
    tensorrt_libraries=(_lib("libnvinfer.so.8.6.1", False), _lib("libnvinfer_plugin.so.8.6.1", False)),
    tensorrt_enabled=False,
    loaded_tensorrt_version=None,
)


def test_healthy_gpu_machine_is_usable():
    r = healthy()
    assert r.tftrt_usable and r.tensorrt_loadable and r.problems == () and r.reason() == ""
    assert require_tftrt("int8", report=r) is r
    assert "TF-TRT usable          YES" in r.format() and "Problems" not in r.format()
    assert H100.precisions() == ("fp32", "fp16", "int8")


def test_gpu_without_tensorrt():
    r = healthy(**NO_TENSORRT)
    assert not r.tftrt_usable and not r.tensorrt_loadable
    (finding,) = r.problems
    assert "libnvinfer.so.8.6.1" in finding.problem and "LD_LIBRARY_PATH" in finding.fix


def test_tensorrt_wheel_with_major_version_names_only():
    wheel = "/venv/lib/python3.11/site-packages/tensorrt_libs"
    libs = NO_TENSORRT["tensorrt_libraries"] + (
        _lib(f"{wheel}/libnvinfer.so.8", path=f"{wheel}/libnvinfer.so.8", version=(8, 6, 1)),
        _lib(f"{wheel}/libnvinfer_plugin.so.8", path=f"{wheel}/libnvinfer_plugin.so.8"),
    )
    (finding,) = healthy(**(NO_TENSORRT | {"tensorrt_libraries": libs})).problems
    assert "symlinks" in finding.fix and f"{wheel}/libnvinfer.so.8" in finding.fix
    assert "libnvinfer.so.8.6.1 and libnvinfer_plugin.so.8.6.1" in finding.fix


def test_tensorrt_older_than_linked():
    (finding,) = healthy(loaded_tensorrt_version=(8, 5, 3)).problems
    assert "8.5.3 is loaded" in finding.problem and finding.fix == "install TensorRT 8.6.1"


def test_tensorrt_found_by_ctypes_but_not_by_tensorflow():
    (finding,) = healthy(tensorrt_enabled=False, loaded_tensorrt_version=None).problems
    assert "TensorFlow's loader" in finding.problem


def test_no_driver_no_gpu():
    r = healthy(nvidia_driver=_lib("libcuda.so.1", False), gpus=())
    (finding,) = r.problems
    assert finding.problem.startswith("no NVIDIA driver") and "nvidia-smi" in finding.fix


@pytest.mark.parametrize("visible", ["-1", ""])
def test_gpus_hidden_by_cuda_visible_devices(visible):
    (finding,) = healthy(gpus=(), cuda_visible_devices=visible).problems
    assert "CUDA_VISIBLE_DEVICES" in finding.problem and "onnx2tf" in finding.fix


def test_driver_but_tensorflow_sees_no_gpu():
    (finding,) = healthy(gpus=()).problems
    assert "sees no GPU" in finding.problem and "tensorflow[and-cuda]==2.17.1" in finding.fix


def test_tensorflow_without_tftrt():
    r = healthy(tensorflow_version="2.18.0", tftrt_compiled=False, linked_tensorrt_version=None,
                tensorrt_libraries=(), tensorrt_enabled=False, loaded_tensorrt_version=None)  # fmt: skip
    (finding,) = r.problems
    assert "2.18.0 has no TF-TRT" in finding.problem and finding.see == VERSIONS
    assert "tensorflow==2.17.1" in finding.fix


def test_cpu_only_tensorflow():
    r = healthy(cuda_build=False, cuda_version=None, tftrt_compiled=False, linked_tensorrt_version=None,
                tensorrt_libraries=(), tensorrt_enabled=False, loaded_tensorrt_version=None)  # fmt: skip
    (finding,) = r.problems
    assert finding.problem == "this TensorFlow is a CPU-only build"


def test_old_gpu_limits_precisions():
    r = healthy(gpus=(P100,))
    assert P100.precisions() == ("fp32", "fp16")
    (warning,) = r.problems
    assert warning.severity == "warning" and "INT8" in warning.problem
    assert r.tftrt_usable and require_tftrt("fp16", report=r) is r
    with pytest.raises(EnvironmentNotReady, match="no GPU here runs TensorRT INT8"):
        require_tftrt("int8", report=r)


def test_find_problems_is_the_property():
    r = healthy(**NO_TENSORRT, nvidia_driver=_lib("libcuda.so.1", False), gpus=())
    assert find_problems(r) == r.problems and len(r.problems) == 2
