"""What the pixel-exact pre-processing costs, and what it fixes, on this machine.

    .venv/bin/python benchmarks/preprocess.py      # -> benchmarks/results/cpu/preprocess.md

Times, per image over the first 8 detect demo val images (batch of 8 in one tf.function, as the
SavedModel's map_fn runs them): JPEG decoding alone; decoding + tftrt_yolo's letterbox (OpenCV's
fixed-point INTER_LINEAR in TensorFlow ops); decoding + tf.image.resize_with_pad (float bilinear, not
exact). Then, on Ultralytics' bus.jpg, how far TensorFlow's default JPEG decoding and a float bilinear
resize are from OpenCV's (the pixels Ultralytics' predict sees).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from tftrt_yolo._ultralytics import ultralytics
from tftrt_yolo.demo import demo_data
from tftrt_yolo.graph.preprocess import decode, letterbox

SIZE, BATCH, CALLS = 640, 8, 20
OUT = Path(__file__).resolve().parent / "results" / "cpu" / "preprocess.md"


def ms_per_image(fn, images) -> float:
    fn(images).numpy()  # trace and warm up
    start = time.perf_counter()
    for _ in range(CALLS):
        fn(images).numpy()
    return (time.perf_counter() - start) / CALLS / BATCH * 1000.0


def batched(per_image, shape):
    return tf.function(lambda images: tf.map_fn(per_image, images, fn_output_signature=tf.TensorSpec(shape, tf.float32)))


def main() -> None:
    folder = demo_data("detect", val_only=True).parent / "images" / "val"
    images = tf.constant([p.read_bytes() for p in sorted(folder.glob("*.jpg"))[:BATCH]])
    as_float = lambda encoded: tf.cast(decode(encoded), tf.float32)  # noqa: E731
    timings = {
        "decode (accurate IDCT)": batched(lambda e: as_float(e)[:1, :1, 0], [1, 1]),
        "decode + letterbox (exact, tftrt_yolo)": batched(lambda e: letterbox(as_float(e), SIZE), [SIZE, SIZE, 3]),
        "decode + tf.image.resize_with_pad (float bilinear)": batched(
            lambda e: tf.image.resize_with_pad(as_float(e), SIZE, SIZE) / 255.0, [SIZE, SIZE, 3]),
    }
    lines = [f"Pre-processing cost (`benchmarks/preprocess.py`), ms per image, batch of {BATCH} detect demo val "
             f"images, {CALLS} calls after one warm-up:", "", "| Step | ms/img |", "|---|---:|"]
    lines += [f"| {name} | {ms_per_image(fn, images):.2f} |" for name, fn in timings.items()]

    bus = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    reference = cv2.cvtColor(cv2.imread(str(bus)), cv2.COLOR_BGR2RGB).astype(int)
    default = tf.io.decode_jpeg(bus.read_bytes(), channels=3).numpy().astype(int)
    exact = decode(tf.constant(bus.read_bytes())).numpy().astype(int)
    h, w = reference.shape[:2]
    new_w = round(w * SIZE / max(h, w))
    cv2_resized = cv2.resize(reference.astype(np.uint8), (new_w, SIZE), interpolation=cv2.INTER_LINEAR).astype(int)
    float_resized = np.round(tf.image.resize(reference.astype(np.float32), [SIZE, new_w]).numpy()).astype(int)
    off = np.abs(float_resized - cv2_resized)
    lines += ["", f"On bus.jpg ({w}x{h}) against OpenCV: TensorFlow's default JPEG decoding is up to "
              f"{np.abs(default - reference).max()} levels off ({(default != reference).mean():.0%} of values), the "
              f"accurate one {np.abs(exact - reference).max()}; a float bilinear resize to {new_w}x{SIZE} is up to "
              f"{off.max()} level off on {(off > 0).mean():.1%} of values."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
