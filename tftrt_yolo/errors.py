"""Errors that tftrt_yolo raises for problems a user can fix.

Every message says what is wrong and how to fix it; the CLI prints the message
alone (no traceback) and exits non-zero.
"""


class TftrtYoloError(Exception):
    """Base class: a problem with the user's input or machine, not a bug."""


class InputError(TftrtYoloError, ValueError):
    """A missing, corrupt or unsupported file, image, model or argument."""


class EnvironmentNotReady(TftrtYoloError, RuntimeError):
    """The machine lacks something the request needs (GPU, TensorRT, ...)."""


class ConversionError(TftrtYoloError, RuntimeError):
    """A conversion step (ONNX export, onnx2tf, TF-TRT) failed."""


class UnreadableImageWarning(UserWarning):
    """An image predict skipped because it cannot be decoded (the others still get results)."""
