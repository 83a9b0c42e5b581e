"""The task table: every task-keyed mapping covers exactly the tasks, and each fact is read from the table."""

import dataclasses

import numpy as np
import pytest

from tftrt_yolo import tasks
from tftrt_yolo.data import synthetic
from tftrt_yolo.errors import InputError
from tftrt_yolo.signatures import OUTPUT_TYPES, check_thresholds
from tftrt_yolo.tasks import SPECS, TASKS, task_spec


def test_order_of_tasks_is_part_of_the_demo_data_seeds():
    assert TASKS == ("detect", "segment", "classify", "pose", "obb")


@pytest.mark.parametrize(
    "mapping",
    [SPECS, synthetic.DEFAULT_N_TRAIN, synthetic.DEFAULT_IMGSZ, synthetic._CLASS_NAMES, synthetic._SAMPLERS],
    ids=["SPECS", "DEFAULT_N_TRAIN", "DEFAULT_IMGSZ", "_CLASS_NAMES", "_SAMPLERS"],
)
def test_every_task_keyed_mapping_covers_exactly_the_tasks(mapping):
    assert set(mapping) == set(TASKS)


def test_every_spec_is_complete_and_consistent():
    for name, spec in SPECS.items():
        assert spec.name == name
        assert all(getattr(spec, f.name) is not None for f in dataclasses.fields(spec))
        assert set(spec.outputs) | {"image_sizes"} <= set(OUTPUT_TYPES)
        assert spec.guarded_metric in spec.headline or spec.guarded_metric == "top1"
        assert {key for key, _ in spec.quality_bars} <= {key for key, _ in spec.card_metrics}
        assert spec.class_folders == (not spec.metric_groups) == (not spec.letterbox) == (not spec.has_detections)
    assert set(OUTPUT_TYPES) == {"image_sizes"}.union(*(s.outputs for s in SPECS.values()))


def test_table_names_real_ultralytics_files_and_classes():
    from ultralytics.nn.tasks import guess_model_task, yaml_model_load
    from ultralytics.utils import metrics

    for spec in SPECS.values():
        architecture = yaml_model_load(spec.ultralytics_yaml)  # ships in the wheel (yolov8-seg.yaml, scale n)
        assert architecture["scale"] == "n" and guess_model_task(architecture) == spec.name
        cls = getattr(metrics, spec.metrics_class)
        instance = cls() if not spec.metric_groups else cls(names={0: "a"})
        for _, attribute in spec.metric_groups:
            assert hasattr(instance, attribute)


def test_val_settings_follow_ultralytics_validators():
    assert {t: task_spec(t).val_conf for t in TASKS} == {t: 0.01 if t == "obb" else 0.001 for t in TASKS}


@pytest.mark.parametrize("bad", ["detection", "", None, "DETECT"])
def test_unknown_tasks_name_the_supported_ones(bad):
    with pytest.raises(InputError) as e:
        tasks.check_task(bad)
    assert all(t in str(e.value) for t in TASKS)


def test_thresholds():
    check_thresholds(0.0, 1.0, np.int64(5))
    for conf, iou, max_det in [(1.5, 0.5, 1), (0.5, -0.1, 1), (0.5, 0.5, 0), (0.5, 0.5, True), (0.5, 0.5, 2.0)]:
        with pytest.raises(InputError):
            check_thresholds(conf, iou, max_det)
