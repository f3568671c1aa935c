"""fastnet.kernels.rows: the vector row kernels give the bits of the obvious
NumPy loops, for every row length (whole blocks of 8, 4, 2 and 1 vectors, a
rest shorter than a vector, rows too long for the registers), and so do the
batch sums for every number of sample columns and outputs."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastnet._config import ROW_BLOCK_VECTORS, ROW_VECTOR_BYTES
from fastnet.kernels.rows import (
    add_rows_,
    batch_sums_,
    first_layer_sums_,
    layer_add_,
    layer_sums_,
    padded_columns,
)

# Row lengths: every block combination of 1 to 8 vectors of float64 (4 to
# 32 in steps of 4) and of float32 (8 to 64 in steps of 8), the book's 30
# (stored as 32), rows that are not whole vectors, and rows longer than the
# registers hold (the plain loops).
STRIDES = [1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 20, 24, 28, 30, 31, 32, 33, 40, 48, 56, 64, 65, 100]

#: Numbers of non-zero inputs: none, one, an even and an odd count.
N_NONZERO = [0, 1, 6, 7]


@njit
def _sums(params, w_off, stride, cols, v, zw):
    first_layer_sums_(params, w_off, stride, cols, v, zw)


@njit
def _add(out, w_off, stride, cols, v, q_lo, q_hi, scale, d):
    add_rows_(out, w_off, stride, cols, v, q_lo, q_hi, scale, d)


def _problem(dtype, stride, n_nonzero, seed):
    rng = np.random.default_rng(seed)
    n_rows, w_off = 20, 3
    params = rng.standard_normal(w_off + n_rows * stride + 5).astype(dtype)
    cols = np.sort(rng.choice(n_rows, n_nonzero, replace=False)).astype(np.int32)
    v = rng.standard_normal(n_nonzero).astype(dtype)
    rows = params[w_off : w_off + n_rows * stride].reshape(n_rows, stride)
    return params, w_off, cols, v, rows


def _expected_sums(rows, cols, v):
    """Pairs of inputs in order, the last alone: ``z += x0*row0 + x1*row1``."""
    z = np.zeros(rows.shape[1], rows.dtype)
    n = len(cols)
    for q in range(0, n - 1, 2):
        z += v[q] * rows[cols[q]] + v[q + 1] * rows[cols[q + 1]]
    if n % 2:
        z += v[n - 1] * rows[cols[n - 1]]
    return z


@pytest.mark.parametrize("n_nonzero", N_NONZERO)
@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_layer_sums_match_the_obvious_loop_bit_for_bit(dtype, stride, n_nonzero):
    params, w_off, cols, v, rows = _problem(dtype, stride, n_nonzero, stride * 10 + n_nonzero)
    before = params.copy()
    zw = np.full(stride + 4, 7, dtype)
    _sums(params, w_off, stride, cols, v, zw)
    np.testing.assert_array_equal(zw[:stride], _expected_sums(rows, cols, v))
    np.testing.assert_array_equal(zw[stride:], 7)  # nothing past the row
    np.testing.assert_array_equal(params, before)


@pytest.mark.parametrize("q_range", [(0, None), (2, 5), (3, 3)])
@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_rows_matches_the_obvious_loop_bit_for_bit(dtype, stride, q_range):
    params, w_off, cols, v, rows = _problem(dtype, stride, 7, stride)
    q_lo, q_hi = q_range[0], len(cols) if q_range[1] is None else q_range[1]
    d = np.random.default_rng(stride + 1).standard_normal(stride).astype(dtype)
    scale = dtype(-0.37)
    expected = params.copy()
    exp_rows = expected[w_off : w_off + rows.size].reshape(rows.shape)
    for q in range(q_lo, q_hi):
        exp_rows[cols[q]] += (scale * v[q]) * d
    _add(params, w_off, stride, cols, v, q_lo, q_hi, scale, d)
    np.testing.assert_array_equal(params, expected)


def test_an_integer_scale_is_taken_in_the_arrays_dtype():
    """The dense driver adds a gradient with scale 1: ``1 * v[q]`` is v[q]."""
    params, w_off, cols, v, rows = _problem(np.float32, 32, 5, 0)
    d = np.linspace(-1, 1, 32, dtype=np.float32)
    expected = params.copy()
    exp_rows = expected[w_off : w_off + rows.size].reshape(rows.shape)
    for q in range(5):
        exp_rows[cols[q]] += v[q] * d
    _add(params, w_off, 32, cols, v, 0, 5, 1, d)
    np.testing.assert_array_equal(params, expected)


def test_the_longest_register_row_and_the_first_plain_one_are_in_the_strides():
    """STRIDES covers both sides of the switch to the plain loops."""
    for dtype in (np.float32, np.float64):
        longest = ROW_BLOCK_VECTORS * ROW_VECTOR_BYTES // np.dtype(dtype).itemsize
        assert longest in STRIDES and longest + 1 in STRIDES


# Later layers: rows of n_out entries (stride >= n_out), dense inputs with
# zeros skipped; whole vectors, then one masked vector for the rest.
N_OUT = [1, 3, 4, 7, 8, 10, 12, 17, 30, 33, 64, 100]


@njit
def _layer_sums(params, w_off, stride, b_off, a, z):
    layer_sums_(params, w_off, stride, b_off, a, z)


@njit
def _layer_add(out, w_off, stride, a, scale, d):
    layer_add_(out, w_off, stride, a, scale, d)


def _layer_problem(dtype, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    stride = n_out + 3 * (n_out % 2)  # some rows longer than n_out
    w_off = 5
    params = rng.standard_normal(w_off + n_in * stride + n_out + 2).astype(dtype)
    a = rng.standard_normal(n_in).astype(dtype)
    a[::3] = 0
    if n_in > 3:
        params[w_off + 3 * stride] = np.inf  # behind a zero input: skipped
    return params, w_off, stride, a


@pytest.mark.parametrize("n_in", [0, 7, 30])
@pytest.mark.parametrize("n_out", N_OUT)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_sums_match_the_obvious_loop_bit_for_bit(dtype, n_out, n_in):
    params, w_off, stride, a = _layer_problem(dtype, n_in, n_out, n_out * 100 + n_in)
    b_off = w_off + n_in * stride
    expected = params[b_off : b_off + n_out].copy()
    for k in range(n_in):
        if a[k] != 0:
            expected += a[k] * params[w_off + k * stride : w_off + k * stride + n_out]
    z = np.full(n_out + 9, 7, dtype)
    _layer_sums(params, w_off, stride, b_off, a, z[:n_out])
    np.testing.assert_array_equal(z[:n_out], expected)
    np.testing.assert_array_equal(z[n_out:], 7)  # the masked lanes are not written


@pytest.mark.parametrize("n_in", [0, 7, 30])
@pytest.mark.parametrize("n_out", N_OUT)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_add_matches_the_obvious_loop_bit_for_bit(dtype, n_out, n_in):
    params, w_off, stride, a = _layer_problem(dtype, n_in, n_out, n_out * 100 + n_in + 1)
    d = np.random.default_rng(n_out).standard_normal(n_out).astype(dtype)
    d[-1] = np.inf  # a zero input that were not skipped would add 0 * inf = NaN
    scale = dtype(-0.37)
    expected = params.copy()
    for k in range(n_in):
        if a[k] != 0:
            row = expected[w_off + k * stride : w_off + k * stride + n_out]
            row += (scale * a[k]) * d
    _layer_add(params, w_off, stride, a, scale, d)
    # Entries between rows (stride > n_out) and past the block are untouched.
    np.testing.assert_array_equal(params, expected)


# Batches of samples held as columns (the fused step's later layers):
# columns of one vector and of several, and a rest; outputs in blocks of
# BATCH_OUTPUTS and one at a time.
N_COLS = [1, 3, 4, 5, 8, 9, 16]


@njit
def _batch(params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward):
    batch_sums_(params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward)


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("n_q", [0, 1, 7, 30])
@pytest.mark.parametrize("n_out", [1, 3, 4, 5, 9, 30])
@pytest.mark.parametrize("n_cols", N_COLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_sums_match_the_obvious_loop_bit_for_bit(dtype, n_cols, n_out, n_q, forward):
    rng = np.random.default_rng(n_cols * 1000 + n_out * 10 + n_q)
    stride = 33  # rows longer than either count, so no layout helps
    w_off, b_off = 4, 4 + 31 * stride
    params = rng.standard_normal(b_off + 31).astype(dtype)
    ld = int(padded_columns(params, n_cols))
    assert ld % (ROW_VECTOR_BYTES // np.dtype(dtype).itemsize) == 0 and ld >= n_cols
    xt = rng.standard_normal((max(n_q, 1), ld)).astype(dtype)
    xt[::3, ::2] = 0
    if forward and n_q > 3 and n_cols > 2:
        xt[3, 2] = 0
        params[w_off + 3 * stride] = np.inf  # behind a zero input: skipped
    q_stride, o_stride = (stride, 1) if forward else (1, stride)
    expected = np.empty((n_out, n_cols), dtype)
    for o in range(n_out):
        for r in range(n_cols):
            s = params[b_off + o] if forward else dtype(0)
            for q in range(n_q):
                c = params[w_off + q * q_stride + o * o_stride]
                if forward:
                    if xt[q, r] != 0:
                        s = s + xt[q, r] * c
                else:
                    s = s + c * xt[q, r]
            expected[o, r] = s
    out = np.full((n_out + 2, ld), 7, dtype)
    _batch(params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward)
    np.testing.assert_array_equal(out[:n_out, :n_cols], expected)
    np.testing.assert_array_equal(out[n_out:], 7)  # rows past n_out are not written


def test_batch_sums_take_columns_that_are_not_whole_vectors_through_the_loops():
    """Rows of `xt` that are not whole vectors run the plain loops (and give
    the same numbers)."""
    params = np.arange(12.0)
    xt = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.5]])
    out = np.zeros((2, 3))
    _batch(params, 0, 4, 1, 8, xt, 2, 2, 3, out, True)
    expected = (
        params[8:10, None]
        + xt[0] * params[0:2, None]
        + np.where(xt[1] != 0, xt[1] * params[4:6, None], 0)
    )
    np.testing.assert_array_equal(out, expected)
