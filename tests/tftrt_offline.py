"""TF-TRT's conversion steps that run without TensorRT, for tests on any machine.

`save_segmented()` runs TF 2.17.1's own graph pass (`tensorrt.segment_network`) and then
`TrtGraphConverterV2.save()` itself, on a converter whose state is what `convert()` leaves:
`__init__` refuses without TensorRT (a version check) and `convert()` without a GPU, but the
pass and `save()` do not need either. Engines cannot be built here, so none is serialized;
everything else (TRTEngineOp nodes, their attributes, native segments, the saved signature)
is what a TensorRT machine's conversion saves before its engines.
"""

from __future__ import annotations

from tensorflow.python.compiler.tensorrt import trt_convert as trt

from tftrt_yolo.tensorrt import NETWORK_SIGNATURE, segment_network


def save_segmented(network_dir, output_dir, precision: str, minimum_segment_size: int = 3):
    segmented = segment_network(network_dir, precision=precision, minimum_segment_size=minimum_segment_size)
    converter = object.__new__(trt.TrtGraphConverterV2)
    converter.__dict__.update(
        _conversion_params=trt.TrtConversionParams(
            precision_mode=precision.upper(),
            minimum_segment_size=minimum_segment_size,
            use_calibration=precision == "int8",
            allow_build_at_runtime=False,  # as tensorrt.convert_network asks
        ),
        _input_saved_model_signature_key=NETWORK_SIGNATURE,
        _need_calibration=False,  # calibration runs in build(), which needs TensorRT
        _calibrated=False,
        _converted=True,
        freeze=True,
        _converted_graph_def=segmented.graph_def,
        _converted_func=trt._construct_function_from_graph_def(
            segmented.function, segmented.graph_def, segmented.frozen
        ),
    )
    converter.save(str(output_dir))
    return output_dir
