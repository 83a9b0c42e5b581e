"""What the benchmark ran on: platform, CPU, GPUs, package versions, and whether TF-TRT can run."""

from __future__ import annotations

import platform
from pathlib import Path


def machine_info() -> dict:
    """Platform, CPU, GPUs TensorFlow sees, package versions and a one-line `summary`."""
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


def tftrt_status() -> tuple[bool, str]:
    """(whether TF-TRT runs here, why not / "TF-TRT is usable"): the TF-TRT rows say it."""
    try:
        from tftrt_yolo.environment import check_environment

        report = check_environment()
    except Exception as e:  # noqa: BLE001 - the probe itself failing is a reason too
        return False, f"environment check failed ({type(e).__name__}: {e})"
    return bool(report.tftrt_usable), report.reason() or "TF-TRT is usable"

