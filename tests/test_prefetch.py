"""fastnet.kernels.prefetch: hints compile for every array the kernels use
and change nothing."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastnet.kernels.prefetch import prefetch, prefetch_range, prefetch_sample
from fastnet.workspace import nonzero_index


@njit
def _hint_everything(a, b, idx):
    for i in range(a.shape[0]):
        prefetch(a, i)
    prefetch(a, np.int32(0))
    prefetch_range(b, 0, b.shape[0])
    prefetch_range(b, 3, 3)  # empty range
    for i in idx:
        prefetch_range(a, i, a.shape[0])


# The dtypes the kernels prefetch: values and rows (float32/64), columns (int32).
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_prefetch_leaves_arrays_unchanged(dtype):
    a = np.arange(100).astype(dtype)
    b = np.arange(7).astype(dtype)
    before = a.copy(), b.copy()
    _hint_everything(a, b, np.array([0, 50, 99], np.int64))
    np.testing.assert_array_equal(a, before[0])
    np.testing.assert_array_equal(b, before[1])


@njit
def _hint_samples(indptr, indices, values):
    for i in range(indptr.shape[0] - 1):
        prefetch_sample(indptr, indices, values, i)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prefetch_sample_covers_every_row_including_empty_ones(dtype):
    X = np.zeros((5, 40), dtype)
    X[1, ::3] = 1
    X[4] = 2  # the last row, full: its hints end at the arrays' ends
    index = nonzero_index(X)
    before = [a.copy() for a in index]
    _hint_samples(*index)
    for a, b in zip(index, before, strict=True):
        np.testing.assert_array_equal(a, b)
