"""fastnet.kernels.activations: the float32 exp behind the sigmoid."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit

from fastnet.kernels.activations import activate_, exp32
from fastnet.kernels.codes import SIGMOID


@njit
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = exp32(x[i])


def test_exp32_within_two_ulp_over_its_range():
    # Fewer points without JIT, where exp32 runs as Python.
    x = np.linspace(-87, 88, 2_001 if numba.config.DISABLE_JIT else 400_001).astype(np.float32)
    out = np.empty_like(x)
    _exp_all(x, out)
    exact = np.exp(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact) / ulp) < 2.0


def test_exp32_edges():
    x = np.array([0, np.nan, np.inf, -np.inf, 1000, -1000], np.float32)
    out = np.empty_like(x)
    _exp_all(x, out)
    assert out[0] == 1 and np.isnan(out[1])
    # Clamped to [-87, 88]: finite, and a sigmoid of them gives 1 or ~0.
    assert np.isfinite(out[2:]).all()
    assert out[2] == out[4] > 1e38 and 0 < out[3] == out[5] < 1e-37


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_close_to_float64(dtype):
    z = (np.random.default_rng(0).standard_normal(10_001) * 6).astype(dtype)
    a = np.empty_like(z)
    activate_(SIGMOID, z, a)
    exact = 1 / (1 + np.exp(-z.astype(np.float64)))
    if dtype == np.float64:
        # float64 uses the C library's exp: NumPy's bits where NumPy has no
        # SIMD exp for the CPU, within 1 ulp of them where it has (AVX-512),
        # so the reference's formula within 2 ulp.
        np.testing.assert_array_max_ulp(a, 1 / (1 + np.exp(-z)), maxulp=2)
    else:
        # exp32 when compiled; NumPy's float32 exp without JIT.
        np.testing.assert_allclose(a, exact, rtol=3e-7)
