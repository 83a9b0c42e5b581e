"""Reductions the graph modules share."""

from __future__ import annotations

import tensorflow as tf


def largest(values: tf.Tensor, floor) -> tf.Tensor:
    """The largest of `values` (any shape) and `floor`. Defined for an empty batch, where `tf.reduce_max` gives
    the dtype's lowest value: `floor` stands in for the missing values (0 for a count or a size)."""
    flat = values if values.shape.rank == 1 else tf.reshape(values, [-1])
    return tf.reduce_max(tf.concat([flat, [floor]], 0))
