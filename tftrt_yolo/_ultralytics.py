"""Import Ultralytics so that it never reaches the network or the user's config.

Ultralytics checks for updates, writes settings to ~/.config and may pip-install
packages at import unless told otherwise; these variables are its own switches.
"""

import os
import tempfile

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_VERBOSE", "false")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "tftrt_yolo-ultralytics"))
os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "tftrt_yolo-matplotlib"))

import ultralytics  # noqa: E402
from ultralytics import YOLO  # noqa: E402

__all__ = ["YOLO", "ultralytics"]
