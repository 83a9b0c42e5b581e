"""The end-to-end tf.Module: encoded or uint8 images in, final results out.

It wraps the network that onnx2tf wrote (float32 NHWC in [0, 1]) between the
in-graph pre-processing and post-processing, and exposes two signatures:

- `serving_default`: `images` (string [N], JPEG/PNG/BMP bytes, any sizes),
  `conf`, `iou`, `max_det` ([N] each, one per image, or [1] for all) -- what TensorFlow
  Serving clients send, and the signature that TF-TRT converts (its `save()`
  keeps only one);
- `predict_images`: `images` (uint8 [N, H, W, 3] RGB), `conf`, `iou`, `max_det`.

A static-batch network of batch B takes any N <= B (the batch is zero-padded).
"""

from __future__ import annotations

import tensorflow as tf

from tftrt_yolo.graph import postprocess
from tftrt_yolo.graph.preprocess import decode, preprocess_one
from tftrt_yolo.source import ModelInfo
from tftrt_yolo.tasks import task_spec

# Per image ([N]), not scalars: TensorFlow Serving's batching concatenates every input along axis 0.
_THRESHOLD_SPECS = (
    tf.TensorSpec([None], tf.float32, name="conf"),
    tf.TensorSpec([None], tf.float32, name="iou"),
    tf.TensorSpec([None], tf.int32, name="max_det"),
)


class EndToEndModel(tf.Module):
    def __init__(self, network, info: ModelInfo, *, batch: int, dynamic: bool, jit_compile: bool = False):
        super().__init__(name="tftrt_yolo")
        self.network = network  # tracked, so its constants are saved with this module
        self._info = info
        self._spec = task_spec(info.task)
        self._batch = None if dynamic else batch
        network_fn = network.signatures["serving_default"]
        self.run_network = tf.function(
            lambda x: [network_fn(images=x)[f"output_{i}"] for i in range(self._spec.network_outputs)],
            jit_compile=jit_compile,
            autograph=False,
        )

    def _forward(self, floats: tf.Tensor, image_sizes: tf.Tensor, conf, iou, max_det) -> dict:
        n = tf.shape(floats)[0]
        if self._batch is not None:
            too_many = tf.debugging.assert_less_equal(
                n, self._batch, message=f"this model was converted for at most {self._batch} images per call"
            )
            with tf.control_dependencies([too_many]):  # fail with that message, before the pad does
                floats = tf.pad(floats, [[0, self._batch - n], [0, 0], [0, 0], [0, 0]])
            # the pad amount is data-dependent: restore the static shape TF-TRT needs to convert the first conv
            floats = tf.reshape(floats, [self._batch, self._info.imgsz, self._info.imgsz, 3])
        outputs = [o[:n] for o in self.run_network(floats)]
        conf, iou, max_det = (tf.broadcast_to(tf.reshape(t, [-1]), [n]) for t in (conf, iou, max_det))
        info, kwargs = self._info, dict(imgsz=self._info.imgsz, conf=conf, iou=iou, max_det=max_det)
        nc = len(info.names)
        if info.task == "classify":
            result = postprocess.classify(outputs[0])
        elif info.task == "segment":
            result = postprocess.segment(outputs[0], outputs[1], image_sizes, nc=nc, **kwargs)
        elif info.task == "pose":
            result = postprocess.pose(outputs[0], image_sizes, nc=nc, kpt_shape=info.kpt_shape, **kwargs)
        elif info.task == "obb":
            result = postprocess.obb(outputs[0], image_sizes, nc=nc, **kwargs)
        else:
            result = postprocess.detect(outputs[0], image_sizes, nc=nc, **kwargs)
        return result | {"image_sizes": image_sizes}

    def _preprocess(self, image):
        return preprocess_one(image, self._info.imgsz, self._spec.letterbox)

    @tf.function(input_signature=(tf.TensorSpec([None], tf.string, name="images"),) + _THRESHOLD_SPECS)
    def predict_encoded(self, images, conf, iou, max_det):
        def one(encoded):
            # cast before taking the shape: TF-TRT would otherwise make an engine with a uint8 input
            image = tf.cast(decode(encoded), tf.float32)
            return self._preprocess(image), tf.shape(image)[:2]

        size = self._info.imgsz
        floats, image_sizes = tf.map_fn(
            one,
            images,
            fn_output_signature=(tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.int32)),
        )
        return self._forward(floats, image_sizes, conf, iou, max_det)

    @tf.function(input_signature=(tf.TensorSpec([None, None, None, 3], tf.uint8, name="images"),) + _THRESHOLD_SPECS)
    def predict_images(self, images, conf, iou, max_det):
        size = self._info.imgsz
        images = tf.cast(images, tf.float32)
        floats = tf.map_fn(self._preprocess, images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        image_sizes = tf.tile(tf.shape(images)[1:3][None], [tf.shape(images)[0], 1])
        return self._forward(floats, image_sizes, conf, iou, max_det)

    def signatures(self) -> dict:
        return {"serving_default": self.predict_encoded, "predict_images": self.predict_images}


def build_and_save(network_dir, output_dir, info: ModelInfo, *, batch: int, dynamic: bool, jit_compile: bool):
    """Wrap the onnx2tf SavedModel at `network_dir` and save the end-to-end model to `output_dir`."""
    module = EndToEndModel(tf.saved_model.load(str(network_dir)), info, batch=batch, dynamic=dynamic, jit_compile=jit_compile)
    signatures = module.signatures()
    tf.saved_model.save(module, str(output_dir), signatures=signatures)
    return tuple(signatures)
