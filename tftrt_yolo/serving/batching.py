"""`batching_parameters.txt`: TensorFlow Serving's server-side batching, up to the batch the models were converted for.

Server-side batching concatenates the inputs of concurrent requests along
their first axis, and TensorFlow Serving refuses it for a signature with scalar
inputs ("Batching Run() input tensors must have at least one dimension"): this
is why the end-to-end signatures take `conf`, `iou` and `max_det` per image.
"""

from __future__ import annotations

import os
from pathlib import Path

from tftrt_yolo.errors import InputError
from tftrt_yolo.metadata import ModelMetadata

BATCHING_FILE = "batching_parameters.txt"


def batching_parameters_class():
    """The `tensorflow.serving.BatchingParameters` message class.

    tensorflow-serving-api does not ship `session_bundle_config_pb2`, so when it is missing
    the message is declared here with the fields and numbers of
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto (1-7), in a private
    descriptor pool; text format depends on names only, so the file reads the same.
    """
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2  # type: ignore

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    return _declared_batching_parameters()


_BATCHING_CLASS = None


def _declared_batching_parameters():
    global _BATCHING_CLASS
    if _BATCHING_CLASS is not None:
        return _BATCHING_CLASS
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    m = f.message_type.add(name="BatchingParameters")
    fd = descriptor_pb2.FieldDescriptorProto
    for number, (name, wrapper) in enumerate(
        [
            ("max_batch_size", "Int64Value"),
            ("batch_timeout_micros", "Int64Value"),
            ("max_enqueued_batches", "Int64Value"),
            ("num_batch_threads", "Int64Value"),
            ("thread_pool_name", "StringValue"),
        ],
        start=1,
    ):
        m.field.add(name=name, number=number, label=fd.LABEL_OPTIONAL, type=fd.TYPE_MESSAGE,
                    type_name=f".google.protobuf.{wrapper}")
    m.field.add(name="allowed_batch_sizes", number=6, label=fd.LABEL_REPEATED, type=fd.TYPE_INT64)
    m.field.add(name="pad_variable_length_inputs", number=7, label=fd.LABEL_OPTIONAL, type=fd.TYPE_BOOL)
    pool.Add(f)
    _BATCHING_CLASS = message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))
    return _BATCHING_CLASS


def batching_parameters(
    metadata: ModelMetadata,
    *,
    batch_timeout_micros: int = 1000,
    num_batch_threads: int = 4,
    max_enqueued_batches: int = 100,
):
    """`BatchingParameters` for a model: batches up to the batch its engines were built for.

    A static-batch model runs exactly `batch` images (TF-TRT built one engine of that shape),
    so `allowed_batch_sizes` is `[batch]` and the server pads smaller batches; a dynamic one
    takes any size up to `batch`, so no sizes are fixed. Inputs are never padded: the images
    of `predict_images` would be padded with image content, which changes their sizes.
    """
    if batch_timeout_micros < 0 or num_batch_threads < 1 or max_enqueued_batches < 1:
        raise InputError("batch_timeout_micros must be >= 0, num_batch_threads and max_enqueued_batches >= 1")
    params = batching_parameters_class()()
    params.max_batch_size.value = metadata.batch
    params.batch_timeout_micros.value = batch_timeout_micros
    params.max_enqueued_batches.value = max_enqueued_batches
    params.num_batch_threads.value = num_batch_threads
    params.thread_pool_name.value = "tftrt_yolo_batch_threads"
    if not metadata.dynamic:
        params.allowed_batch_sizes.append(metadata.batch)
    params.pad_variable_length_inputs = False
    return params


def batching_text(params) -> str:
    """The text of `batching_parameters.txt`: a short header, then the parameters."""
    from google.protobuf import text_format

    lines = [
        "# TensorFlow Serving batching parameters (text-format tensorflow.serving.BatchingParameters),",
        "# for --enable_batching --batching_parameters_file=<this file>. Written by tftrt_yolo.serving.",
        "# pad_variable_length_inputs is false: padding would change the sizes of predict_images' images.",
    ]
    return "\n".join(lines) + "\n" + text_format.MessageToString(params)


def read_batching_parameters(path: str | os.PathLike):
    """Parse a batching parameters file as TensorFlow Serving does (comments allowed)."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(Path(path).read_text(), batching_parameters_class()())
    except text_format.ParseError as e:
        raise InputError(f"{path} is not a text-format BatchingParameters: {e}") from None
