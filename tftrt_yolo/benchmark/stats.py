"""Timing statistics, as tensorflow/tensorrt's benchmark runner reports them.

Needs numpy alone (benchmarks/gpu/timing.py loads this file in device
environments that lack TensorFlow or OpenCV).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

TRIM = 0.1  # tensorflow/tensorrt benchmark runner's default --trim_mean_percentage


@dataclasses.dataclass
class Stats:
    """Latency of one kind of call, in ms per image (the call's time divided by its batch)."""

    mean: float
    min: float
    max: float
    trimmed_mean: float
    median: float
    p99: float
    iterations: int
    batch: int

    @classmethod
    def from_seconds(cls, seconds, batch: int) -> "Stats":
        ms = np.sort(np.asarray(seconds, np.float64)) * 1000.0 / batch
        if ms.size == 0:
            raise ValueError("no timed iterations")
        cut = int(TRIM * ms.size)  # scipy.stats.trim_mean(ms, 0.1)
        trimmed = ms[cut : ms.size - cut] if ms.size - 2 * cut > 0 else ms
        return cls(
            mean=float(ms.mean()),
            min=float(ms.min()),
            max=float(ms.max()),
            trimmed_mean=float(trimmed.mean()),
            median=float(np.median(ms)),
            p99=float(np.percentile(ms, 99, method="lower")),
            iterations=int(ms.size),
            batch=int(batch),
        )

    @property
    def images_per_second(self) -> float:
        return 1000.0 / self.trimmed_mean if self.trimmed_mean > 0 else float("inf")

    def to_dict(self) -> dict:
        """The fields and images_per_second (what benchmark JSON holds)."""
        return {**dataclasses.asdict(self), "images_per_second": self.images_per_second}


def time_calls(fn, *, warmup: int, iterations: int, batch: int, desc: str = "", verbose: bool = False) -> Stats:
    """Call `fn` warmup + iterations times; the timed calls become Stats. `fn` must return only when done.

    `verbose` shows a progress bar (`desc`) on stderr.
    """
    if iterations < 1 or warmup < 0:
        from tftrt_yolo.errors import InputError  # here, not above: the file must load with numpy alone

        raise InputError(f"need iterations >= 1 and warmup >= 0, got iterations={iterations}, warmup={warmup}")
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=warmup + iterations, desc=desc, unit="call", leave=False)
    seconds = []
    try:
        for i in range(warmup + iterations):
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                seconds.append(time.perf_counter() - t0)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return Stats.from_seconds(seconds, batch)
