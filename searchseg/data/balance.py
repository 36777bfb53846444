"""Class balance as loss weights, computed from pixel frequencies (numpy only: the data check uses it too)."""

from __future__ import annotations

import numpy as np


def median_frequency_weights(frequencies: np.ndarray, low: float = 0.05, high: float = 20.0) -> tuple[float, ...]:
    """Median-frequency balancing (Eigen & Fergus, 2015): ``median(f) / f_c``, clipped to ``[low, high]``.

    Classes absent from the training pixels get weight 1: no pixel of theirs is ever weighted.
    """
    present = frequencies > 0
    if not present.any():
        return tuple(1.0 for _ in frequencies)
    median = float(np.median(frequencies[present]))
    weights = np.where(present, median / np.where(present, frequencies, 1.0), 1.0)
    return tuple(float(w) for w in np.clip(weights, low, high))
