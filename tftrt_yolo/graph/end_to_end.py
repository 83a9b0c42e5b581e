"""The end-to-end tf.Module: encoded or uint8 images in, final results out.

It wraps the network (float32 NHWC in [0, 1], raw heads out: what onnx2tf
wrote, or that network after TF-TRT converted it) between the in-graph
pre-processing and post-processing, which stay fp32 TensorFlow for every
backend and precision (the XLA backend compiles the letterbox of uint8
batches and, on a GPU, greedy NMS too; the other backends have no XLA in
them: TensorFlow Serving 2.17 has no XLA compiler for GPUs), and exposes two
signatures:

- `serving_default`: `images` (string [N], JPEG/PNG/BMP/GIF bytes, any sizes),
  `conf`, `iou`, `max_det` ([N] each, one per image, or [1] for all) -- what
  TensorFlow Serving clients send;
- `predict_images`: `images` (uint8 [N, H, W, 3] RGB), `conf`, `iou`, `max_det`.

and the functions `run_network` (the network alone) and `preprocess` (encoded
images -> the network's exact input), for benchmarks and checks.

A static-batch network of batch B takes any N <= B (the batch is zero-padded).
"""

from __future__ import annotations

import tensorflow as tf

from tftrt_yolo.graph import postprocess
from tftrt_yolo.graph.preprocess import compiled_image_batch, image_sizes_of, preprocess_encoded, preprocess_images
from tftrt_yolo.metadata import ModelInfo
from tftrt_yolo.signatures import ARRAYS, ENCODED, IMAGE_SIZES, IMAGES
from tftrt_yolo.tasks import task_spec

# Per image ([N]), not scalars: TensorFlow Serving's batching concatenates every input along axis 0.
_THRESHOLD_SPECS = (
    tf.TensorSpec([None], tf.float32, name="conf"),
    tf.TensorSpec([None], tf.float32, name="iou"),
    tf.TensorSpec([None], tf.int32, name="max_det"),
)
_ENCODED_IMAGES = tf.TensorSpec([None], tf.string, name=IMAGES)
_IMAGE_ARRAYS = tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES)


class EndToEndModel(tf.Module):
    def __init__(self, network, info: ModelInfo, *, batch: int, dynamic: bool, jit_compile: bool = False):
        super().__init__(name="tftrt_yolo")
        self.network = network  # tracked: its constants, and a TF-TRT network's engine resources, are saved too
        self._info = info
        self._spec = task_spec(info.task)
        self._batch = None if dynamic else batch
        self._jit_compile = jit_compile
        network_fn = network.signatures["serving_default"]
        self.run_network = tf.function(
            lambda x: [network_fn(images=x)[f"output_{i}"] for i in range(self._spec.network_outputs)],
            jit_compile=jit_compile,
            autograph=False,
        )
        if jit_compile:  # XLA compiles the batched letterbox too, once per input shape (uint8 batches: one size)
            self._preprocess_images = lambda images: (
                compiled_image_batch(images, info.imgsz, self._spec.letterbox),
                image_sizes_of(images),
            )
        else:
            self._preprocess_images = lambda images: preprocess_images(images, info.imgsz, self._spec.letterbox)

    def _forward(self, floats: tf.Tensor, image_sizes: tf.Tensor, conf, iou, max_det) -> dict:
        n = tf.shape(floats)[0]
        if self._batch is not None:
            too_many = tf.debugging.assert_less_equal(
                n, self._batch, message=f"this model was converted for at most {self._batch} images per call"
            )
            with tf.control_dependencies([too_many]):  # fail with that message, before the pad does
                floats = tf.pad(floats, [[0, self._batch - n], [0, 0], [0, 0], [0, 0]])
            # the pad amount is data-dependent: restore the static shape the network was converted for
            floats = tf.reshape(floats, [self._batch, self._info.imgsz, self._info.imgsz, 3])
        outputs = [o[:n] for o in self.run_network(floats)]
        conf, iou, max_det = (tf.broadcast_to(tf.reshape(t, [-1]), [n]) for t in (conf, iou, max_det))
        result = postprocess.BY_TASK[self._info.task](
            outputs, image_sizes, self._info, imgsz=self._info.imgsz, conf=conf, iou=iou, max_det=max_det,
            compiled=self._jit_compile,
        )
        return result | {IMAGE_SIZES: image_sizes}

    @tf.function(input_signature=(_ENCODED_IMAGES,))
    def preprocess(self, images):
        """Encoded images -> the letterboxed (classify: resized and cropped) float batch the network takes."""
        return preprocess_encoded(images, self._info.imgsz, self._spec.letterbox)[0]

    @tf.function(input_signature=(_ENCODED_IMAGES,) + _THRESHOLD_SPECS)
    def predict_encoded(self, images, conf, iou, max_det):
        floats, image_sizes = preprocess_encoded(images, self._info.imgsz, self._spec.letterbox)
        return self._forward(floats, image_sizes, conf, iou, max_det)

    @tf.function(input_signature=(_IMAGE_ARRAYS,) + _THRESHOLD_SPECS)
    def predict_images(self, images, conf, iou, max_det):
        floats, image_sizes = self._preprocess_images(images)
        return self._forward(floats, image_sizes, conf, iou, max_det)

    def signatures(self) -> dict:
        return {ENCODED: self.predict_encoded, ARRAYS: self.predict_images}


def build_and_save(network_dir, output_dir, info: ModelInfo, *, batch: int, dynamic: bool, jit_compile: bool):
    """Wrap the network SavedModel at `network_dir` (onnx2tf's, or its TF-TRT conversion) and save the
    end-to-end model to `output_dir`; returns the signature names."""
    module = EndToEndModel(tf.saved_model.load(str(network_dir)), info, batch=batch, dynamic=dynamic, jit_compile=jit_compile)
    signatures = module.signatures()
    tf.saved_model.save(module, str(output_dir), signatures=signatures)
    return tuple(signatures)
