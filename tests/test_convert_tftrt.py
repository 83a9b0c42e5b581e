"""convert() around TF-TRT: the report only where TF-TRT ran, the accuracy guard's arguments, TF-TRT models
(the dry run is tested through the command line, in tests/test_cli.py)."""

from __future__ import annotations

import pytest

import tftrt_yolo
from tftrt_yolo.demo import demo_model
from tftrt_yolo.errors import InputError
from tftrt_yolo.report import ConversionReport


@pytest.mark.slow
def test_plain_and_xla_conversions_carry_no_tftrt_report(converted):
    for path in (converted("detect"), converted("detect", backend="xla")):
        model = tftrt_yolo.load(path)
        assert model.metadata.report == {}
        assert "TF-TRT" not in model.summary()


def test_tftrt_only_arguments_are_checked_before_any_work(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="max_map_drop guards fp16/int8 TF-TRT conversions"):
        tftrt_yolo.convert(demo_model("detect"), max_map_drop=0.01, output=out, verbose=False)
    with pytest.raises(InputError, match="max_map_drop needs labelled data"):  # not a demo model, no data
        tftrt_yolo.convert("yolov8n.yaml", precision="fp16", max_map_drop=0.01, output=out, verbose=False)
    with pytest.raises(InputError, match="dry_run shows what TF-TRT would convert"):
        tftrt_yolo.convert(demo_model("detect"), backend="xla", dry_run=True, output=out, verbose=False)
    assert not out.exists()


# TF-TRT integration: only where TF-TRT is usable (TensorRT 8.6 and a GPU); they skip with doctor's reason here.


@pytest.fixture(scope="module")
def tftrt_usable():
    from tftrt_yolo.environment import check_environment

    environment = check_environment()
    if not environment.tftrt_usable:
        pytest.skip(environment.reason())
    return environment


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_tftrt_models_predict_like_fp32_and_share_a_process(tftrt_usable, converted, demo_images, precision):
    import numpy as np

    from helpers import match

    images = demo_images("detect", 8)
    reference = tftrt_yolo.load(converted("detect"))(images)
    first = tftrt_yolo.load(converted("detect", precision=precision))
    second = tftrt_yolo.load(converted("detect", precision=precision, batch=1))  # a second model, same process
    meta = first.metadata
    report = ConversionReport.from_dict(meta.report)
    assert len(report.engines) == 1 and report.problems == [], report.format()
    assert report.engines[0].serialized and not report.engines[0].allow_build_at_runtime
    assert "drop" in meta.accuracy and meta.accuracy["drop"] < 0.05
    for model in (first, second):
        for want, got in zip(reference, model(images)):
            pairs = match(got.boxes, got.classes, want.boxes, want.classes, min_iou=0.9)
            assert len(pairs) >= 0.9 * len(want), (len(pairs), len(want))
            assert np.allclose([got.scores[i] for i, _ in pairs], [want.scores[j] for _, j in pairs], atol=0.05)
