"""load() and the Keras-style model: predict on paths, folders, videos, arrays or tf.data."""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path

import numpy as np

from tftrt_yolo import inputs
from tftrt_yolo.errors import InputError, UnreadableImageWarning
from tftrt_yolo.image_batch import ImageBatchBuffer
from tftrt_yolo.metadata import read_metadata
from tftrt_yolo.results import Result, from_outputs
from tftrt_yolo import signatures
from tftrt_yolo.signatures import PREDICT_DEFAULTS as DEFAULTS
from tftrt_yolo.signatures import check_thresholds, threshold_inputs
from tftrt_yolo.tasks import task_spec


def load(model_dir: str | Path) -> "YoloModel":
    """Load a SavedModel folder written by `tftrt_yolo.convert`.

    Args:
        model_dir: the folder (`output/name/version`); its metadata gives the task, class names,
            image size and batch.

    Example::

        model = tftrt_yolo.load("saved_models/best/1")
        print(model.summary())
    """
    return YoloModel(model_dir)


class YoloModel:
    """A converted model: `predict(x)` / `model(x)` return one `Result` per image."""

    def __init__(self, model_dir: str | Path):
        import tensorflow as tf

        self.path = Path(model_dir)
        self.metadata = read_metadata(self.path)
        self._saved_model = tf.saved_model.load(str(self.path))
        self._serve = self._saved_model.signatures[signatures.ENCODED]
        self._serve_arrays = self._saved_model.signatures[signatures.ARRAYS]
        self._per_thread = threading.local()  # an ImageBatchBuffer per thread: a call refills its buffer

    task = property(lambda self: self.metadata.info.task)
    names = property(lambda self: self.metadata.info.names)
    imgsz = property(lambda self: self.metadata.info.imgsz)
    batch = property(lambda self: self.metadata.batch)

    def predict_encoded(self, encoded: list[bytes], *, conf: float, iou: float, max_det: int) -> dict:
        """One call of the serving signature on encoded images; outputs as numpy."""
        import tensorflow as tf

        thresholds = threshold_inputs(len(encoded), conf, iou, max_det)
        outputs = self._serve(images=tf.constant(encoded, tf.string), **thresholds)
        return {k: v.numpy() for k, v in outputs.items()}

    def predict_arrays(self, images, *, conf: float, iou: float, max_det: int, bgr: bool = False) -> dict:
        """One call of the `predict_images` signature on a uint8 [N, H, W, 3] batch, or N [H, W, 3] arrays of one
        size (RGB, or BGR when `bgr`); outputs as numpy. The batch reaches TensorFlow through an
        `ImageBatchBuffer`, without TensorFlow's copy."""
        thresholds = threshold_inputs(len(images), conf, iou, max_det)
        buffer = getattr(self._per_thread, "image_batch", None) or ImageBatchBuffer()
        self._per_thread.image_batch = buffer
        outputs = self._serve_arrays(images=buffer.tensor(images, bgr=bgr), **thresholds)
        return {k: v.numpy() for k, v in outputs.items()}  # read before the buffer is refilled

    def run_network(self, images):
        """The network alone, without pre- or post-processing: float32 [batch, imgsz, imgsz, 3] RGB in [0, 1]
        -> its raw head outputs as tensors (for benchmarks; XLA models run it compiled, TF-TRT models
        run their TensorRT engine)."""
        return self._saved_model.run_network(images)

    def predict(
        self,
        x,
        batch_size: int | None = None,
        conf: float = DEFAULTS["conf"],
        iou: float = DEFAULTS["iou"],
        max_det: int = DEFAULTS["max_det"],
        verbose: bool | str = False,
        strict: bool = False,
    ) -> list[Result]:
        """Results for every image in `x`, one `Result` each, in order.

        An image file that cannot be decoded is skipped with an UnreadableImageWarning, as Ultralytics
        does, so one bad file among many costs only its own result; `strict=True` raises InputError
        instead. InputError too when no image at all could be read.

        Args:
            x: a path, paths, folder, glob, video, BGR uint8 array(s) or a tf.data.Dataset of images.
                Arrays and video frames go to the graph as pixels (`predict_images`), a batch of one size at
                a time; files go encoded (`serving_default`), which decodes them.
            batch_size: images per call of the graph, up to the batch the model was converted for
                (default: that batch).
            conf, iou, max_det: confidence threshold, NMS IoU threshold, most detections per image.
            verbose: show a progress bar on stderr (True), or only when there is more than one
                batch ("auto").
            strict: raise InputError at the first unreadable image instead of skipping it.

        Example::

            model = tftrt_yolo.load("saved_models/best/1")
            for r in model.predict("images/", conf=0.25):
                print(r.path, len(r), r.to_json())
        """
        batch_size = self.batch if batch_size is None else batch_size
        if not isinstance(batch_size, int) or not 1 <= batch_size <= self.batch:
            raise InputError(f"batch_size must be between 1 and {self.batch} (the batch this model was converted for)")
        check_thresholds(conf, iou, max_det)
        unreadable = []

        def skip(error: InputError) -> None:
            if strict:
                raise error
            unreadable.append(str(error))
            warnings.warn(str(error), UnreadableImageWarning, stacklevel=4)

        results = []
        with _progress(inputs.count(x), batch_size, verbose) as bar:
            for batch in inputs.batches(x, batch_size, on_error=skip):
                readable, outputs = self._run_batch(batch, conf, iou, max_det, skip)
                results.extend(from_outputs(outputs, self.task, self.names, readable) if readable else [])
                bar.update(len(batch))
        if not results:
            raise InputError(f"no image could be read: {'; '.join(unreadable)}" if unreadable
                             else "no images to predict on: the source is empty")  # fmt: skip
        return results

    __call__ = predict

    def _run_batch(self, batch, conf, iou, max_det, skip) -> tuple[list, dict | None]:
        """(the items the graph could decode, their outputs); `skip(InputError)` gets each other one. Arrays of
        one size go as pixels; a batch with files, or arrays of several sizes, goes encoded."""
        import tensorflow as tf

        images = [image for _, image in batch]
        if all(isinstance(image, np.ndarray) and image.shape == images[0].shape for image in images):
            return batch, self.predict_arrays(images, conf=conf, iou=iou, max_det=max_det, bgr=True)
        encoded = [inputs.encoded(image) for image in images]
        try:
            return batch, self.predict_encoded(encoded, conf=conf, iou=iou, max_det=max_det)
        except tf.errors.InvalidArgumentError:
            bad = [name for (name, _), data in zip(batch, encoded) if not _decodes(data)]
            if not bad:
                raise  # not a decoding problem
            for name in bad:
                skip(InputError(f"cannot decode image {name}: the file is corrupt or not an image"))
            readable = [item for item in batch if item[0] not in bad]
            return self._run_batch(readable, conf, iou, max_det, skip) if readable else ([], None)

    def summary(self, print_fn=None) -> str:
        """A description of the model (task, classes, shapes, backend, conversion report)."""
        m, info = self.metadata, self.metadata.info
        lines = [
            f"tftrt_yolo model {self.path}",
            f"  task        {info.task} ({len(info.names)} classes: {_preview(info.names)})",
            f"  input       encoded images, letterboxed in-graph to {info.imgsz}x{info.imgsz}"
            if task_spec(info.task).letterbox
            else f"  input       encoded images, resized and centre-cropped in-graph to {info.imgsz}",
            f"  batch       {'up to ' if m.dynamic else 'static '}{m.batch}",
            f"  backend     {m.backend} {m.precision}",
            f"  signatures  {', '.join(m.signatures)}",
            f"  source      {info.source} (sha256 {info.source_sha256[:12]})",
            f"  made with   {', '.join(f'{k} {v}' for k, v in sorted(m.versions.items()))}",
        ]
        if m.report:
            from tftrt_yolo.report import ConversionReport

            lines.append(ConversionReport.from_dict(m.report).format())
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


@contextlib.contextmanager
def _progress(total: int | None, batch_size: int, verbose: bool | str):
    """A progress bar on stderr when `verbose` is True, or "auto" and there is more than one batch; else
    one that shows nothing."""
    from tqdm.auto import tqdm

    shown = verbose is True or (verbose == "auto" and (total is None or total > batch_size))
    bar = tqdm(total=total, desc="predict", unit="img", leave=False, disable=not shown)
    try:
        yield bar
    finally:
        bar.close()


def _decodes(encoded: bytes) -> bool:
    """Whether the graph's decoder reads `encoded` (what the serving signature runs first)."""
    import tensorflow as tf

    try:
        tf.io.decode_image(encoded, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        return False
    return True


def _preview(names: dict, limit: int = 6) -> str:
    shown = ", ".join(names[i] for i in sorted(names)[:limit])
    return shown + (", ..." if len(names) > limit else "")


__all__ = ["load", "YoloModel", "Result"]
