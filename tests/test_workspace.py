"""fastnet.workspace: buffer shapes, the non-zero index and the input blocks."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from fastnet._config import (
    BUFFER_ALIGN,
    DENSE_FIRST_BLOCK_SHARE,
    DENSE_ROW_BLOCK,
    FIRST_BLOCK_SHARE,
    INDEX_CACHE_ENTRIES,
    INPUT_BLOCKS,
    NONZERO_GROUP,
)
from fastnet.kernels.codes import B_OFF, STRIDE, W_OFF
from fastnet.kernels.mlp import aligned_length, index_mismatches
from fastnet.kernels.sync import SYNC_SIZE
from fastnet.layout import Layout
from fastnet.workspace import (
    DenseWorkspace,
    TrainWorkspace,
    clear_index_cache,
    data_index,
    dense_row_block,
    index_cache_info,
    input_blocks,
    no_index,
    nonzero_index,
    train_pool_size,
)


def test_train_workspace_key_and_buffers():
    lay = Layout([6, 4, 3])
    ws = TrainWorkspace(lay, np.float32, 40, 2)
    assert ws.key == ((6, 4, 3), np.dtype(np.float32), 40, 2)
    zs, acts, deltas, grads, partials, columns, sync, n_lanes = ws.buffers
    assert zs.shape == acts.shape == deltas.shape == (3, 16, 7)
    assert grads.shape == (3, lay.n_params) and grads.dtype == np.float32
    assert partials.shape == (INPUT_BLOCKS, 16, lay.table[0, STRIDE])
    assert partials.dtype == np.float32
    # Per lane: two halves of the widest later layer (4) times a chunk's 16
    # samples, a whole number of vectors.
    assert columns.shape == (2, 2, 4 * 16) and columns.dtype == np.float32
    assert sync.shape == (SYNC_SIZE,) and sync.dtype == np.int64
    assert n_lanes == 2
    # The many-networks pool holds the same buffers, one lane's columns,
    # back to back, each from an aligned offset.
    parts = (zs, acts, deltas, grads, partials, columns[0])
    n_pool = sum(aligned_length(a.size, 4) for a in parts)
    assert train_pool_size(lay, 40, np.float32) == n_pool
    assert n_pool - sum(a.size for a in parts) < len(parts) * BUFFER_ALIGN // 4


def naive_index(X):
    """The compressed-row index built the obvious way."""
    rows, cols = np.nonzero(X)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(X)))])
    return indptr, cols, X[rows, cols]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonzero_index_matches_a_naive_build(dtype):
    rng = np.random.default_rng(3)
    X = rng.random((50, 37)).astype(dtype)
    X[X < 0.8] = 0
    X[7] = 0  # an empty row
    X[8] = 1.5  # a full row
    X[9, 3] = -0.0  # equal to zero: skipped
    X[10, 4] = np.nan  # not equal to zero: kept (training rejects it earlier)
    # Groups of NONZERO_GROUP columns that are all zero are skipped whole:
    # rows whose only non-zeros are in the last, short group or fill one group.
    X[11] = 0
    X[11, 36] = 2.0
    X[12] = 0
    X[12, NONZERO_GROUP : 2 * NONZERO_GROUP] = 3.0
    indptr, indices, values = nonzero_index(X)
    want_ptr, want_idx, want_val = naive_index(X)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32 and values.dtype == dtype
    np.testing.assert_array_equal(indptr, want_ptr)
    np.testing.assert_array_equal(indices, want_idx)
    np.testing.assert_array_equal(values, want_val)  # NaN compares equal here


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_index_is_typed_like_a_real_one(dtype):
    X = np.ones((3, 4), dtype)
    fake, real = no_index(X), nonzero_index(X)
    assert [a.dtype for a in fake] == [a.dtype for a in real]
    assert [a.ndim for a in fake] == [1, 1, 1]
    assert fake[0].tolist() == [0] and len(fake[1]) == len(fake[2]) == 0


@pytest.mark.parametrize("n_lanes", [1, 2, 3])
def test_dense_workspace_key_and_buffers(n_lanes):
    lay = Layout([6, 4, 3])
    ws = DenseWorkspace(lay, np.float32, 100, n_lanes)
    assert ws.key == ((6, 4, 3), np.dtype(np.float32), 100, ("dense", n_lanes))
    zs, acts, deltas, grads, partials, transposed, sync, lanes, row_block = ws.buffers
    assert zs.shape == acts.shape == deltas.shape == (100 * lay.n_z,)
    assert grads.shape == (1, lay.n_params) and grads.dtype == np.float32
    # As many input blocks whatever the lanes: the bits depend on them.
    assert partials.shape == (INPUT_BLOCKS, 100, lay.table[0, STRIDE])
    assert partials.dtype == np.float32
    # Room for the later layer's copy: its stored weights.
    assert transposed.shape == (lay.table[0, B_OFF] - lay.table[1, W_OFF],)
    assert transposed.dtype == np.float32
    # The team's counters, then one claim counter per pair of lanes.
    assert sync.shape == (SYNC_SIZE + 8 * ((n_lanes + 1) // 2),)
    assert lanes == n_lanes and row_block == dense_row_block(100)


@pytest.mark.parametrize("first_share", [None, FIRST_BLOCK_SHARE, DENSE_FIRST_BLOCK_SHARE])
def test_input_blocks_share_the_nonzeros_and_bound_every_sample(first_share):
    rng = np.random.default_rng(6)
    X = rng.random((80, 50))
    X[X < 0.7] = 0
    X[:, :20] = 0  # non-zeros only in the upper columns
    X[3] = 0
    indptr, indices, _ = nonzero_index(X)
    cuts, bounds = input_blocks(indptr, indices, 50, first_share)
    assert cuts.shape == (INPUT_BLOCKS + 1,) and cuts[0] == 0 and cuts[-1] == 50
    assert (np.diff(cuts) >= 0).all() and cuts[1] > 20
    per_block = [np.count_nonzero(X[:, cuts[b] : cuts[b + 1]]) for b in range(INPUT_BLOCKS)]
    total, widest = np.count_nonzero(X), np.count_nonzero(X, 0).max()
    share = 1 / INPUT_BLOCKS if first_share is None else first_share
    # The first block ends where the running count first reaches its share.
    assert share * total <= per_block[0] <= share * total + widest
    assert max(per_block) <= max(share, 1 - share) * total + widest
    assert bounds.shape == (80, INPUT_BLOCKS + 1)
    for i in range(80):
        expected = indptr[i] + np.searchsorted(np.flatnonzero(X[i]), cuts)
        np.testing.assert_array_equal(bounds[i], expected)


@pytest.mark.parametrize("mini_batch", [1, 2, 17, 63, 64, 65, 100, 128, 200, 1000])
def test_dense_row_block_gives_an_even_number_of_short_units(mini_batch):
    rows = dense_row_block(mini_batch)
    units = -(-mini_batch // rows)
    assert 1 <= rows <= DENSE_ROW_BLOCK
    assert units % 2 == 0 or mini_batch == 1
    # Units are equal but for the last, which is never longer.
    assert mini_batch - (units - 1) * rows <= rows


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonzero_index_names_the_argument_of_non_finite_data(bad):
    X = np.array([[0.0, 1.0, 0.0], [2.0, bad, 0.0]], np.float32)
    with pytest.raises(ValueError, match="training_data: X contains NaN or infinite values"):
        nonzero_index(X, argname="training_data")
    # Without a name, no check: the entry is a non-zero like any other.
    indptr, indices, values = nonzero_index(X)
    assert indptr.tolist() == [0, 1, 3] and indices.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(values, [1.0, 2.0, bad])


def sparse_rows(rng, shape, dtype):
    X = rng.random(shape).astype(dtype)
    X[X < 0.7] = 0
    X[3] = 0  # an empty row
    return X


def rows_unlike(X, index):
    """Rows of `X` whose naive index (of `X` converted to the index's dtype)
    differs from the rows of `index`."""
    indptr, indices, values = index
    want_ptr, want_idx, want_val = naive_index(X.astype(values.dtype))
    bad = 0
    for i in range(len(X)):
        got = slice(indptr[i], indptr[i + 1])
        want = slice(want_ptr[i], want_ptr[i + 1])
        same = np.array_equal(indices[got], want_idx[want]) and np.array_equal(
            values[got], want_val[want].astype(values.dtype)
        )
        bad += not same
    return bad


@pytest.mark.parametrize("n_chunks", [1, 3, 16, 80])
@pytest.mark.parametrize(
    "x_dtype,v_dtype",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.float32, np.float64),
        (np.float64, np.float32),
    ],
)
def test_index_mismatches_counts_the_rows_that_changed(x_dtype, v_dtype, n_chunks):
    rng = np.random.default_rng(5)
    X = sparse_rows(rng, (60, 37), x_dtype)
    index = nonzero_index(X, v_dtype)
    scratch = np.zeros((n_chunks, 37), v_dtype)
    assert index_mismatches(X, *index, scratch) == 0
    X[0, 1] = X[0, 1] + 1  # a value changed (or a zero made non-zero)
    X[3, 36] = 0.25  # a non-zero in the empty row
    nz = np.flatnonzero(X[5])
    X[5, nz[0]] = 0  # a non-zero made zero
    X[7] = np.where(X[7] == 0, -0.0, X[7])  # -0.0 is a zero: no change
    X[9, 0] = np.nan  # never equal
    assert index_mismatches(X, *index, scratch) == rows_unlike(X, index) == 4
    assert not scratch.any()  # zero again for the next call


def test_data_index_reuses_a_checked_index_and_rebuilds_a_changed_one():
    rng = np.random.default_rng(6)
    X = sparse_rows(rng, (40, 12), np.float32)
    before = index_cache_info()
    index, none = data_index(X, np.float64)
    assert none is None
    want = nonzero_index(X, np.float64)
    assert all(np.array_equal(a, b) for a, b in zip(index, want, strict=True))
    again, _ = data_index(X, np.float64)
    view, _ = data_index(X[:], np.float64)  # a new view of the same memory
    assert again is index and view is index
    other, _ = data_index(X.copy(), np.float64)  # same values, other memory
    assert other is not index
    X[2, 2] = 7.0  # in place: the next call sees it
    changed, _ = data_index(X, np.float64)
    assert changed is not index
    want = nonzero_index(X, np.float64)
    assert all(np.array_equal(a, b) for a, b in zip(changed, want, strict=True))
    after = index_cache_info()
    assert after["hits"] - before["hits"] == 2
    assert after["stale"] - before["stale"] == 1
    assert after["misses"] - before["misses"] == 3
    assert after["entries"] <= INDEX_CACHE_ENTRIES


def test_data_index_checks_finite_data_when_named():
    X = np.array([[0.0, 1.0], [2.0, 0.0]])
    data_index(X)
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="training_data: X contains NaN or infinite"):
        data_index(X, argname="training_data")
    # Kept without a name (an evaluation does not check), then asked for
    # with one: still refused.
    data_index(X)
    with pytest.raises(ValueError, match="training_data: X contains NaN or infinite"):
        data_index(X, argname="training_data")


def test_data_index_keeps_the_blocks_of_each_share():
    rng = np.random.default_rng(7)
    X = sparse_rows(rng, (30, 20), np.float64)
    index, blocks = data_index(X, blocks_share=0.53)
    _, same = data_index(X, blocks_share=0.53)
    _, even = data_index(X, blocks_share=None)
    assert same is blocks
    for got, want in zip(blocks, input_blocks(*index[:2], 20, 0.53), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(even, input_blocks(*index[:2], 20), strict=True):
        np.testing.assert_array_equal(got, want)


def test_data_index_entries_go_with_their_data():
    rng = np.random.default_rng(8)
    kept = [sparse_rows(rng, (10, 6), np.float32) for _ in range(INDEX_CACHE_ENTRIES + 2)]
    for X in kept:
        data_index(X)
    assert index_cache_info()["entries"] == INDEX_CACHE_ENTRIES  # the oldest went first
    del X, kept
    gc.collect()
    assert index_cache_info()["entries"] == 0  # every entry was one of them


def test_clear_index_cache_forgets_every_index_and_the_counts():
    X = np.array([[0.0, 1.0], [2.0, 0.0]])
    first, _ = data_index(X)
    data_index(X)
    clear_index_cache()
    assert index_cache_info() == {"hits": 0, "misses": 0, "stale": 0, "entries": 0}
    again, _ = data_index(X)  # built anew, equal
    assert again is not first
    assert all(np.array_equal(a, b) for a, b in zip(again, first, strict=True))
    assert index_cache_info()["misses"] == 1


def test_float64_data_indexed_into_float32_is_the_index_of_the_converted_data():
    rng = np.random.default_rng(9)
    X = sparse_rows(rng, (40, 30), np.float64)
    X[0, :4] = [1e-50, -1e-50, 0.1, 1 / 3]  # round to zero (left out); rounded
    X[1, 5] = 3e-39  # a float32 subnormal: kept
    got = nonzero_index(X, np.float32)
    want = naive_index(X.astype(np.float32))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got[2].dtype == np.float32
    assert index_mismatches(X, *got, np.zeros((4, 30), np.float32)) == 0
    X[2, 7] = 1e39  # finite in float64, infinite in float32
    with pytest.raises(ValueError, match="training_data: X contains NaN or infinite values"):
        nonzero_index(X, np.float32, argname="training_data")
