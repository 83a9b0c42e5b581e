"""Ultralytics (and matplotlib) set up so that they never reach the network or the user's config.

Ultralytics checks for updates, writes settings to ~/.config and may pip-install
packages at import unless told otherwise; these variables are its own switches.
`configure()` sets them (setdefault: the caller's choice wins) and is the only
place tftrt_yolo does; importing this module runs it. `YOLO` and `ultralytics`
are imported on first use, so plotting code can call `configure()` without
importing torch.
"""

import os
import tempfile

ENVIRONMENT = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "false",
    "YOLO_VERBOSE": "false",
    "YOLO_CONFIG_DIR": os.path.join(tempfile.gettempdir(), "tftrt_yolo-ultralytics"),
    "MPLCONFIGDIR": os.path.join(tempfile.gettempdir(), "tftrt_yolo-matplotlib"),
}


def configure() -> None:
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)


configure()


def __getattr__(name: str):
    if name == "ultralytics":
        import ultralytics

        return ultralytics
    if name == "YOLO":
        from ultralytics import YOLO

        return YOLO
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENVIRONMENT", "YOLO", "configure", "ultralytics"]
