"""Synthetic labelled data for tftrt_yolo's demo models (see :mod:`tftrt_yolo.data.synthetic`)."""

from tftrt_yolo.data.synthetic import (
    DEFAULT_IMGSZ,
    DEFAULT_N_TRAIN,
    DEFAULT_N_VAL,
    FLIP_IDX,
    KPT_NAMES,
    OBB_NAMES,
    SHAPE_NAMES,
    TASKS,
    class_names,
    dataset_entry,
    generate_dataset,
    make_sample,
    read_meta,
)

__all__ = [
    "DEFAULT_IMGSZ",
    "DEFAULT_N_TRAIN",
    "DEFAULT_N_VAL",
    "FLIP_IDX",
    "KPT_NAMES",
    "OBB_NAMES",
    "SHAPE_NAMES",
    "TASKS",
    "class_names",
    "dataset_entry",
    "generate_dataset",
    "make_sample",
    "read_meta",
]
