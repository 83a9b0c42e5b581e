"""What this machine can run: the probes behind `tftrt-yolo doctor` and `require_tftrt()`.

TF-TRT needs four things at once: TensorFlow 2.17 built with TensorRT support
(the PyPI Linux x86_64 wheel is), the exact TensorRT libraries that build was
linked against (2.17.1: `libnvinfer.so.8.6.1` and `libnvinfer_plugin.so.8.6.1`,
which TensorFlow loads at run time by those names), an NVIDIA driver and a GPU
that TensorFlow can see.

`check_environment()` runs the real probes and returns an `EnvironmentReport`;
`find_problems()` turns the raw probe values into findings without probing, so
every case (GPU but no TensorRT, TensorRT but no GPU, ...) can be checked with
plain data.

Safety: `_pywrap_py_utils.get_loaded_tensorrt_version()` aborts the whole
process when TensorRT is not loadable, so it is only called after TensorFlow's
own loader (`is_tensorrt_enabled()`) has found the libraries. The shared
libraries are first opened with ctypes in a child process, which gives the
loader's error text and the version of what it found without risking this one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
import subprocess
import sys

from tftrt_yolo.errors import EnvironmentNotReady

GPU_SETUP = "BUILD.md#gpu-set-up-where-tf-trt-works"
VERSIONS = "BUILD.md#versions-that-work-together"
TFTRT_TENSORFLOW = "2.17"  # the last TensorFlow release with TF-TRT
PRECISIONS = ("fp32", "fp16", "int8")  # TF-TRT's precision modes (trt.TrtPrecisionMode.FP32 / FP16 / INT8)

# TensorRT 8.6 support matrix: compute capabilities with native FP16 / INT8 kernels.
_FP16_CC = ((6, 0), (6, 2))  # and everything >= 7.0
_INT8_CC = ((6, 1),)  # and everything >= 7.0


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing missing for TF-TRT: what is wrong, how to fix it, where BUILD.md explains it."""

    problem: str
    fix: str
    see: str
    severity: str = "error"  # "error" blocks TF-TRT; "warning" limits it (e.g. one precision)

    def format(self) -> str:
        return f"{self.problem}\n   fix: {self.fix}\n   see: {self.see}"


@dataclasses.dataclass(frozen=True)
class LibraryProbe:
    """The result of opening one shared library with ctypes in a child process."""

    name: str
    loaded: bool
    path: str | None = None  # the file the loader picked, when loaded
    version: tuple[int, ...] | None = None  # getInferLibVersion() of libnvinfer, when loaded
    error: str | None = None  # the loader's message, when not loaded


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: tuple[int, int] | None

    def precisions(self) -> tuple[str, ...]:
        """The TF-TRT precisions this GPU runs natively (TensorRT 8.6 support matrix)."""
        cc = self.compute_capability
        native = {"fp32": True, "fp16": cc is not None and (cc >= (7, 0) or cc in _FP16_CC),
                  "int8": cc is not None and (cc >= (7, 0) or cc in _INT8_CC)}
        return tuple(p for p in PRECISIONS if native[p])

    def __str__(self) -> str:
        cc = self.compute_capability
        return f"{self.name} (compute capability {cc[0]}.{cc[1]})" if cc else self.name


@dataclasses.dataclass(frozen=True)
class EnvironmentReport:
    """Raw probe values; `problems` and `tftrt_usable` are derived from them."""

    python_version: str
    tensorflow_version: str | None  # None: TensorFlow does not import
    cuda_build: bool  # TensorFlow built with CUDA (tensorflow-cpu is not)
    cuda_version: str | None  # CUDA version of the TensorFlow build
    tftrt_compiled: bool  # TensorFlow built with TF-TRT (build info `is_tensorrt_build`)
    linked_tensorrt_version: tuple[int, ...] | None
    tensorrt_libraries: tuple[LibraryProbe, ...]  # the exact linked versions, then fallbacks found
    tensorrt_enabled: bool  # TensorFlow's own loader found TensorRT (`is_tensorrt_enabled()`)
    loaded_tensorrt_version: tuple[int, ...] | None
    nvidia_driver: LibraryProbe  # libcuda.so.1
    cuda_visible_devices: str | None
    gpus: tuple[Gpu, ...]
    xla_available: bool  # a jit_compile=True function compiles on the default device
    system: str = dataclasses.field(default_factory=lambda: f"{platform.system()} {platform.machine()}")

    @property
    def tensorrt_loadable(self) -> bool:
        """Both exact TensorRT libraries TensorFlow was linked against open in a fresh process."""
        exact = _exact_names(self.linked_tensorrt_version)
        return bool(exact) and all(p.loaded for p in self.tensorrt_libraries if p.name in exact)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return find_problems(self)

    @property
    def tftrt_usable(self) -> bool:
        return not any(f.severity == "error" for f in self.problems)

    def reason(self) -> str:
        """One line saying why TF-TRT is not usable (e.g. for `pytest.skip`); empty when it is."""
        errors = [f.problem for f in self.problems if f.severity == "error"]
        return "TF-TRT is not usable here: " + "; ".join(errors) if errors else ""

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(
            tensorrt_loadable=self.tensorrt_loadable,
            tftrt_usable=self.tftrt_usable,
            problems=[dataclasses.asdict(f) for f in self.problems],
        )
        return data

    def format(self) -> str:
        def version(v):
            return _version_str(v) if v else "none"

        def library(p: LibraryProbe) -> str:
            if p.loaded:
                return f"{p.name}: loads ({p.path}" + (f", TensorRT {version(p.version)})" if p.version else ")")
            return f"{p.name}: not loadable: {p.error}"

        yes = {True: "yes", False: "no"}
        rows = [
            ("Platform", f"{self.system}, Python {self.python_version}"),
            ("TensorFlow", self.tensorflow_version or "does not import"),
            ("CUDA build", f"{yes[self.cuda_build]}" + (f" (CUDA {self.cuda_version})" if self.cuda_version else "")),
            ("TF-TRT compiled in", yes[self.tftrt_compiled]),
            ("Linked TensorRT", version(self.linked_tensorrt_version)),
        ]
        rows += [("TensorRT library", library(p)) for p in self.tensorrt_libraries]
        rows += [
            ("TensorRT loaded by TF", version(self.loaded_tensorrt_version) if self.tensorrt_enabled else "no"),
            ("NVIDIA driver", library(self.nvidia_driver)),
            ("CUDA_VISIBLE_DEVICES", "unset" if self.cuda_visible_devices is None else repr(self.cuda_visible_devices)),
        ]
        rows += [("GPU", f"{g} -> {', '.join(g.precisions())}") for g in self.gpus] or [("GPU", "none visible")]
        rows += [("XLA", "available" if self.xla_available else "not available")]
        rows += [("TF-TRT usable", "YES" if self.tftrt_usable else "NO")]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        if self.problems:
            lines += ["", f"Problems ({len(self.problems)}):"]
            lines += [f"{i}. [{f.severity}] {f.format()}" for i, f in enumerate(self.problems, 1)]
        return "\n".join(lines)

    __str__ = format


def _version_str(v) -> str:
    return ".".join(map(str, v))


def _exact_names(linked) -> tuple[str, ...]:
    if not linked:
        return ()
    v = _version_str(linked)
    return (f"libnvinfer.so.{v}", f"libnvinfer_plugin.so.{v}")


def find_problems(r: EnvironmentReport) -> tuple[Finding, ...]:
    """What keeps TF-TRT from running, computed from the raw probe values alone."""
    out: list[Finding] = []
    tf_ok = r.tensorflow_version is not None and r.tensorflow_version.startswith(TFTRT_TENSORFLOW + ".")
    if r.tensorflow_version is None:
        out.append(Finding("TensorFlow does not import", "pip install tensorflow==2.17.1", VERSIONS))
    elif not tf_ok:
        out.append(
            Finding(
                f"TensorFlow {r.tensorflow_version} has no TF-TRT (TensorRT support ends with {TFTRT_TENSORFLOW})",
                "pip install tensorflow==2.17.1",
                VERSIONS,
            )
        )
    if tf_ok and not r.cuda_build:
        out.append(
            Finding(
                "this TensorFlow is a CPU-only build",
                "pip uninstall tensorflow-cpu; pip install 'tensorflow[and-cuda]==2.17.1' (Linux x86_64)",
                GPU_SETUP,
            )
        )
    elif tf_ok and not r.tftrt_compiled:
        out.append(
            Finding(
                "this TensorFlow was built without TensorRT support",
                "install the PyPI Linux x86_64 wheel: pip install 'tensorflow[and-cuda]==2.17.1'",
                GPU_SETUP,
            )
        )
    if r.tftrt_compiled and r.linked_tensorrt_version:
        out += _tensorrt_findings(r)
    if not r.nvidia_driver.loaded:
        out.append(
            Finding(
                f"no NVIDIA driver: {r.nvidia_driver.name} does not load ({r.nvidia_driver.error})",
                "run on a machine with an NVIDIA GPU and its driver (nvidia-smi must work); "
                "in Docker pass --gpus all with the NVIDIA Container Toolkit",
                GPU_SETUP,
            )
        )
    elif not r.gpus:
        hidden = r.cuda_visible_devices is not None and r.cuda_visible_devices.strip() in ("", "-1")
        out.append(
            Finding(
                "TensorFlow sees no GPU although the NVIDIA driver loads"
                + (f" (CUDA_VISIBLE_DEVICES={r.cuda_visible_devices!r} hides them)" if hidden else ""),
                "unset CUDA_VISIBLE_DEVICES (onnx2tf sets it to -1; convert in a separate process)"
                if hidden
                else "pip install 'tensorflow[and-cuda]==2.17.1' for the CUDA 12.3 / cuDNN 8.9 libraries "
                "and check the log of `python -c \"import tensorflow as tf; tf.config.list_physical_devices()\"`",
                GPU_SETUP,
            )
        )
    for gpu in r.gpus:
        missing = [p for p in ("fp16", "int8") if p not in gpu.precisions()]
        if missing:
            out.append(
                Finding(
                    f"{gpu} has no native TensorRT {'/'.join(missing).upper()} support",
                    "convert with another precision or on a newer GPU (compute capability >= 7.0)",
                    GPU_SETUP,
                    severity="warning",
                )
            )
    return tuple(out)


def _tensorrt_findings(r: EnvironmentReport) -> list[Finding]:
    linked = r.linked_tensorrt_version
    exact = _exact_names(linked)
    by_name = {p.name: p for p in r.tensorrt_libraries}
    missing = [by_name[n] for n in exact if n in by_name and not by_name[n].loaded]
    if missing:
        fallbacks = [p for p in r.tensorrt_libraries if p.name not in exact and p.loaded]
        errors = "; ".join(p.error or p.name for p in missing)
        if fallbacks and all(p.version is None or p.version[0] == linked[0] for p in fallbacks):
            where = ", ".join(p.path or p.name for p in fallbacks)
            fix = (
                f"TensorRT {linked[0]} is installed as {where}, but TensorFlow opens the exact names "
                f"{' and '.join(exact)}: add symlinks with those names next to the libraries "
                f"(or install TensorRT {_version_str(linked)}) and put that folder on LD_LIBRARY_PATH"
            )
        else:
            fix = (
                f"install TensorRT {_version_str(linked)} for CUDA 12 (NVIDIA's tar/deb packages, or "
                f"pip install --extra-index-url https://pypi.nvidia.com tensorrt-libs=={_version_str(linked)}, "
                f"whose files are named *.so.{linked[0]}: add {' and '.join(exact)} symlinks), "
                f"and put the folder holding {exact[0]} on LD_LIBRARY_PATH before starting Python"
            )
        return [
            Finding(
                f"TensorRT {_version_str(linked)} libraries, which this TensorFlow was linked against, "
                f"do not load: {errors}",
                fix,
                GPU_SETUP,
            )
        ]
    if not r.tensorrt_enabled:
        return [
            Finding(
                "the TensorRT libraries open with ctypes, but TensorFlow's loader does not find them",
                "set LD_LIBRARY_PATH to their folder before Python starts (not from inside the process)",
                GPU_SETUP,
            )
        ]
    loaded = r.loaded_tensorrt_version
    if loaded and (loaded[0] != linked[0] or tuple(loaded) < tuple(linked)):
        return [
            Finding(
                f"TensorRT {_version_str(loaded)} is loaded but TensorFlow was linked against "
                f"{_version_str(linked)}; TF-TRT needs the same major version, at least as new",
                f"install TensorRT {_version_str(linked)}",
                GPU_SETUP,
            )
        ]
    return []


_CHILD_PROBE = r"""
import ctypes, json, sys
def version(lib):
    try:
        v = lib.getInferLibVersion()
    except AttributeError:
        return None
    return [v // 10000, v // 100 % 100, v % 100] if v >= 10000 else [v // 1000, v // 100 % 10, v % 100]
def path_of(name):
    stem = name.split(".so")[0] + ".so"
    with open("/proc/self/maps") as maps:
        for line in maps:
            if stem in line:
                return line.split(None, 5)[-1].strip()
out = []
for name in sys.argv[1:]:
    try:
        lib = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        out.append({"name": name, "loaded": False, "error": str(e)})
        continue
    out.append({"name": name, "loaded": True, "path": path_of(name),
                "version": version(lib) if name.startswith("libnvinfer.") else None})
print(json.dumps(out))
"""


def probe_libraries(names: list[str]) -> list[LibraryProbe]:
    """Open each shared library (in order, RTLD_GLOBAL) with ctypes in a child process."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD_PROBE, *names], capture_output=True, text=True, timeout=120
        )
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as e:
        why = f"the probe process failed ({type(e).__name__}: {e})"
        return [LibraryProbe(n, False, error=why) for n in names]
    return [
        LibraryProbe(d["name"], d["loaded"], d.get("path"), tuple(d["version"]) if d.get("version") else None,
                     d.get("error"))
        for d in found
    ]


def check_environment() -> EnvironmentReport:
    """Run the real probes (imports TensorFlow; about a second after that)."""
    try:
        import tensorflow as tf
    except ImportError:
        tf = None
    info = dict(tf.sysconfig.get_build_info()) if tf is not None else {}
    linked, enabled, loaded = None, False, None
    if info.get("is_tensorrt_build"):
        try:
            from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils as trt_utils
        except ImportError:
            trt_utils = None
        if trt_utils is not None:
            linked = tuple(trt_utils.get_linked_tensorrt_version())
            enabled = bool(trt_utils.is_tensorrt_enabled())
    exact = list(_exact_names(linked))
    probes = probe_libraries(exact + ["libcuda.so.1"]) if exact else probe_libraries(["libcuda.so.1"])
    *libraries, driver = probes
    if exact and not all(p.loaded for p in libraries):
        # Diagnose a TensorRT installed under the major-version names only: on the loader's
        # path, or in NVIDIA's pip wheel (package `tensorrt_libs`) which is not on it.
        names = [f"libnvinfer.so.{linked[0]}", f"libnvinfer_plugin.so.{linked[0]}"]
        wheel = importlib.util.find_spec("tensorrt_libs")
        if wheel is not None and wheel.submodule_search_locations:
            names = [os.path.join(list(wheel.submodule_search_locations)[0], n) for n in names]
        libraries += [p for p in probe_libraries(names) if p.loaded]
    if enabled and all(p.loaded for p in libraries):
        # Safe only now: this call aborts the process when TensorRT cannot be loaded.
        loaded = tuple(trt_utils.get_loaded_tensorrt_version())
    gpus: tuple[Gpu, ...] = ()
    xla = False
    if tf is not None:
        devices = tf.config.list_physical_devices("GPU")
        gpus = tuple(_gpu(tf, d) for d in devices)
        try:
            xla = bool(tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(1.0)) == 2.0)
        except Exception:  # noqa: BLE001 - any failure means XLA cannot compile here
            xla = False
    return EnvironmentReport(
        python_version=platform.python_version(),
        tensorflow_version=tf.__version__ if tf is not None else None,
        cuda_build=bool(info.get("is_cuda_build")),
        cuda_version=info.get("cuda_version"),
        tftrt_compiled=bool(info.get("is_tensorrt_build")),
        linked_tensorrt_version=linked,
        tensorrt_libraries=tuple(libraries),
        tensorrt_enabled=enabled,
        loaded_tensorrt_version=loaded,
        nvidia_driver=driver,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        gpus=gpus,
        xla_available=xla,
    )


def _gpu(tf, device) -> Gpu:
    details = tf.config.experimental.get_device_details(device)
    cc = details.get("compute_capability")
    return Gpu(details.get("device_name", device.name), tuple(cc) if cc else None)


def require_tftrt(precision: str | None = None, report: EnvironmentReport | None = None) -> EnvironmentReport:
    """The environment report, or EnvironmentNotReady listing every problem and its fix.

    With `precision` ("fp16", "int8"), a GPU without native support for it is also an error.
    """
    report = report if report is not None else check_environment()
    blocking = [f for f in report.problems if f.severity == "error"]
    if precision and report.gpus and not any(precision in g.precisions() for g in report.gpus):
        blocking.append(
            Finding(
                f"no GPU here runs TensorRT {precision.upper()} natively ({', '.join(map(str, report.gpus))})",
                "convert with another precision or on a GPU of compute capability >= 7.0",
                GPU_SETUP,
            )
        )
    if blocking:
        lines = [f"TF-TRT cannot run on this machine ({len(blocking)} problem{'s' * (len(blocking) > 1)}):"]
        lines += [f"{i}. {f.format()}" for i, f in enumerate(blocking, 1)]
        lines.append("Run `tftrt-yolo doctor` for the full report; `tftrt-yolo convert ... --dry_run` (convert(..., "
                     "dry_run=True)) shows what TF-TRT would convert, on any machine.")
        raise EnvironmentNotReady("\n".join(lines))
    return report
