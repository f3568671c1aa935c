"""fastnet.kernels.dense against fastnet.reference, and its promises: the same
bits for any thread count, no allocation per mini-batch, the driver choice in
Network.train and train_many, dense evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

import fastnet
import fastnet.network as network_module
from fastnet import reference
from fastnet._config import (
    DENSE_EVAL_CONVERT_ROWS,
    DENSE_EVAL_ROWS,
    DENSE_TRANSPOSE_MAX,
    EVAL_CHUNKS,
    GRAD_CHUNK,
    REFERENCE_RTOL,
)
from fastnet.kernels import dense
from fastnet.kernels.codes import STRIDE, W_OFF, W_ROWS
from fastnet.layout import Layout
from fastnet.many import train_many
from fastnet.threads import blas_threads
from fastnet.workspace import DenseWorkspace, EvalWorkspace, nonzero_index
from tests.conftest import BAD_BLOCKS, JIT_DISABLED, train_data
from tests.test_kernels import PADDED, PAIRS, THREADS, flat, kernel_codes, problem, views


def run_dense(lay, params, X, y, order, mini_batch, eta, lmbda, cost, activation, lanes=1, calls=1):
    """An epoch of the dense driver, in `calls` calls of about equal numbers
    of mini-batches."""
    m = min(mini_batch, len(order))
    ws = DenseWorkspace(lay, params.dtype, m, lanes)
    n_batches = -(-len(order) // m)
    data = train_data(X)
    with blas_threads(1):
        for c in range(calls):
            dense.sgd_dense_(
                params,
                lay.table,
                *kernel_codes(cost, activation),
                X,
                y,
                *data,
                order,
                m,
                c * n_batches // calls,
                (c + 1) * n_batches // calls,
                eta,
                lmbda,
                len(X),
                *ws.buffers,
            )


@pytest.mark.parametrize("mini_batch", [1, 7, GRAD_CHUNK + 1, 23, 50, 64])
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_epoch_matches_reference_float64(mini_batch, cost, activation):
    # n = 50: 7 and 23 leave a short last batch, 64 > n is one batch.
    lay, params, X, y = problem((12, 9, 7, 4), 50)
    order = np.random.default_rng(5).permutation(len(X))
    w, b = views(lay, params)
    reference.sgd_epoch(w, b, X, y, order, mini_batch, 0.5, 2.0, activation=activation, cost=cost)
    run_dense(lay, params, X, y, order, mini_batch, 0.5, 2.0, cost, activation)
    np.testing.assert_allclose(params, flat(lay, w, b), rtol=REFERENCE_RTOL, atol=1e-12)


@pytest.mark.parametrize("sizes", [(12, 9, 7, 4), (12, 4), (1, 9, 4)])
@pytest.mark.parametrize("mini_batch", [23, 101])
@pytest.mark.parametrize(
    "cost,activation",
    [("cross_entropy", "sigmoid"), ("log_likelihood", "relu"), ("quadratic", "tanh")],
)
def test_input_split_edge_cases_match_reference_float64(sizes, mini_batch, cost, activation):
    # One layer, and one input (an empty half of the first layer's split).
    lay, params, X, y = problem(sizes, 300)
    order = np.random.default_rng(5).permutation(len(X))
    w, b = views(lay, params)
    reference.sgd_epoch(w, b, X, y, order, mini_batch, 0.5, 2.0, activation=activation, cost=cost)
    run_dense(lay, params, X, y, order, mini_batch, 0.5, 2.0, cost, activation)
    np.testing.assert_allclose(params, flat(lay, w, b), rtol=REFERENCE_RTOL, atol=1e-12)


@pytest.mark.parametrize("sizes", PADDED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mini_batch", [23, 101])
def test_padded_epoch_matches_reference(sizes, dtype, mini_batch):
    # Work buffers start as garbage: the driver must zero the padded
    # neurons' activations and errors, or the padding's weights move.
    lay, params, X, y = problem(sizes, 300, dtype)
    order = np.random.default_rng(5).permutation(len(X))
    w, b = views(lay, params)
    reference.sgd_epoch(w, b, X, y, order, mini_batch, 0.5, 2.0)
    ws = DenseWorkspace(lay, params.dtype, mini_batch, 2)
    for work in (ws.zs, ws.acts, ws.deltas, ws.grads):
        work[...] = np.nan
    ws.partials[...] = np.nan
    ws.transposed[...] = np.nan
    ws.sync[...] = 7
    with blas_threads(1):
        dense.sgd_dense_(
            params,
            lay.table,
            *kernel_codes("cross_entropy", "sigmoid"),
            X,
            y,
            *train_data(X),
            order,
            mini_batch,
            0,
            -(-len(order) // mini_batch),
            0.5,
            2.0,
            len(X),
            *ws.buffers,
        )
    tol = (REFERENCE_RTOL, 1e-12) if dtype == np.float64 else (2e-4, 2e-5)
    np.testing.assert_allclose(params, flat(lay, w, b), rtol=tol[0], atol=tol[1])
    padding = np.ones(lay.n_params, bool)
    for view in lay.weight_views(padding) + lay.bias_views(padding):
        view[...] = False
    assert padding.any() and (params[padding] == 0).all()


@pytest.mark.parametrize("sizes", PADDED)
def test_padded_evaluate_matches_reference(sizes):
    lay, params, X, y = problem(sizes, EVAL_CHUNKS + 3)
    w, b = views(lay, params)
    cost_sum, correct = run_dense_evaluate(lay, params, X, y, "cross_entropy", "sigmoid", 1)
    n = len(X)
    assert cost_sum / n == pytest.approx(
        reference.total_cost(w, b, X, y, 0.0, "sigmoid", "cross_entropy"), rel=REFERENCE_RTOL
    )
    assert correct == round(reference.accuracy(w, b, X, y, "sigmoid", "cross_entropy") * n)


@pytest.mark.parametrize("mini_batch", [17, 100, 101])
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_epoch_matches_reference_float32(mini_batch, cost, activation):
    lay, params, X, y = problem((12, 9, 4), 300, np.float32)
    order = np.random.default_rng(5).permutation(len(X))
    w, b = views(lay, params)
    reference.sgd_epoch(w, b, X, y, order, mini_batch, 0.1, 1.0, activation=activation, cost=cost)
    run_dense(lay, params, X, y, order, mini_batch, 0.1, 1.0, cost, activation)
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, flat(lay, w, b), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mini_batch", [GRAD_CHUNK + 1, 101, 500])
def test_thread_count_gives_identical_bits(dtype, mini_batch, numba_threads):
    # Wide enough that BLAS takes its blocked kernels, not a tiny-matrix path.
    lay, start, X, y = problem((200, 64, 10), 1000, dtype)
    order = np.random.default_rng(2).permutation(len(X))
    results = {}
    for n_threads in THREADS:
        numba_threads(n_threads)
        params = start.copy()
        run_dense(
            lay,
            params,
            X,
            y,
            order,
            mini_batch,
            0.3,
            1.0,
            "cross_entropy",
            "sigmoid",
            n_threads,
        )
        results[n_threads] = params.tobytes()
    assert len(set(results.values())) == 1
    assert results[1] != start.tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lane_count_gives_identical_bits(dtype):
    # One lane takes every unit, two share the input blocks from both ends,
    # three a pair and a lane alone; with more lanes than threads one lane
    # does all the work (fastnet.kernels.sync). The same bits every time.
    lay, start, X, y = problem((200, 64, 10), 700, dtype)
    order = np.random.default_rng(3).permutation(len(X))
    results = {}
    for lanes in (1, 2, 3, 4):
        params = start.copy()
        run_dense(lay, params, X, y, order, 101, 0.3, 1.0, "cross_entropy", "sigmoid", lanes)
        results[lanes] = params.tobytes()
    assert len(set(results.values())) == 1
    assert results[1] != start.tobytes()


@pytest.mark.parametrize(
    "case",
    [*BAD_BLOCKS, "partials", "transposed", "sync", "n_lanes", "row_block"],
)
def test_driver_refuses_blocks_and_scratch_that_do_not_fit(case):
    lay, params, X, y = problem((12, 9, 4), 40)
    ws = DenseWorkspace(lay, params.dtype, 10, 2)
    indptr, indices, values, cuts, bounds = train_data(X)
    data = {"cuts": cuts, "bounds": bounds}
    field, short = {
        **{k: (f, spoil(data[f])) for k, (f, spoil) in BAD_BLOCKS.items()},
        "partials": ("partials", ws.partials[:, :9]),
        "transposed": ("transposed", ws.transposed[:-1]),
        "sync": ("sync", ws.sync[:-8]),
        "n_lanes": ("n_lanes", 0),
        "row_block": ("row_block", 0),
    }[case]
    if field in data:
        data[field] = short
        match = "sgd_dense_: cuts or bounds"
    else:
        setattr(ws, field, short)
        match = "sgd_dense_: partials"
    args = (params, lay.table, 0, 0, 0, X, y, indptr, indices, values, data["cuts"])
    with pytest.raises(ValueError, match=match), blas_threads(1):
        dense.sgd_dense_(*args, data["bounds"], np.arange(40), 10, 0, 4, 0.1, 1.0, 40, *ws.buffers)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transpose_later_copies_the_small_later_layers_only(dtype):
    lay = Layout([5, 70, 60, 3])
    table = lay.table
    params = np.random.default_rng(0).standard_normal(lay.n_params).astype(dtype)
    transposed = np.full(dense.transposed_size(table), np.nan, dtype)
    dense.transpose_later_(params, table, transposed)
    sizes = [table[layer, W_ROWS] * table[layer, STRIDE] for layer in (1, 2)]
    assert sizes[0] > DENSE_TRANSPOSE_MAX >= sizes[1]  # one of each
    assert dense.transposed_layer(table, 0) == -1 and dense.transposed_layer(table, 1) == -1
    big = transposed[: sizes[0]]
    assert np.isnan(big).all()  # not copied, not written
    off = dense.transposed_layer(table, 2)
    assert off == table[2, W_OFF] - table[1, W_OFF] == sizes[0]
    w = dense.layer_weights(params, table, 2)
    np.testing.assert_array_equal(transposed[off : off + w.size].reshape(w.shape[::-1]), w.T)


def naive_first_gradient(X, rows, d, k_lo, k_hi):
    return X[rows][:, k_lo:k_hi].T @ d


def test_block_bounds_split_each_sample_at_the_cuts():
    lay, params, X, y = problem((40, 8, 3), 60)
    X[:, 17:23] = 0  # a block with no non-zeros at all
    X[5] = 0  # a sample with none
    indptr, indices, values = nonzero_index(X)
    cuts = np.array([0, 9, 17, 23, 31, 40])
    out = np.full(len(cuts), -1, np.int64)
    every = np.full((len(X), len(cuts)), -1, np.int64)
    dense.sample_bounds_(indptr, indices, cuts, every)
    for i in range(len(X)):
        dense.block_bounds_(indptr, indices, i, cuts, out)
        cols = np.flatnonzero(X[i])
        expected = indptr[i] + np.searchsorted(cols, cuts)
        np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(every[i], expected)


# Rows of 8 take the vector code (fastnet.kernels.rows.row_fits_registers);
# of 5 (not whole vectors) and of 70 (too long) the plain loop.
@pytest.mark.parametrize("width", [8, 5, 70])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_first_gradient_blocks_match_naive(dtype, width):
    lay, params, X, y = problem((40, 8, 3), 60, dtype)
    X[:, 17:23] = 0  # a block with no non-zeros at all
    indptr, indices, values = nonzero_index(X)
    rows = np.random.default_rng(1).permutation(len(X))[:23]
    d = np.random.default_rng(2).standard_normal((len(rows), width)).astype(dtype)
    cuts = np.array([0, 9, 17, 23, 31, 40])
    bounds = np.full((len(X), len(cuts)), -1, np.int64)
    dense.sample_bounds_(indptr, indices, cuts, bounds)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    # Blocks in any order, each writing its own rows only.
    g = np.full((40, width), np.nan, dtype)
    for b in (4, 0, 2, 1, 3):
        dense.first_gradient_rows_(indices, values, bounds, rows, b, d, cuts[b], cuts[b + 1], g)
        np.testing.assert_allclose(
            g[cuts[b] : cuts[b + 1]],
            naive_first_gradient(X, rows, d, cuts[b], cuts[b + 1]),
            atol=tol,
        )
    np.testing.assert_allclose(g, naive_first_gradient(X, rows, d, 0, 40), atol=tol)


# Rows of 8 take the vector code, of 5 and 70 the plain loop (as above).
@pytest.mark.parametrize("width", [8, 5, 70])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_first_block_sums_match_naive(dtype, width):
    lay, params, X, y = problem((40, 8, 3), 60, dtype)
    X[:, 17:23] = 0  # a block with no non-zeros at all
    X[4] = 0  # a sample with none
    indptr, indices, values = nonzero_index(X)
    w = np.random.default_rng(2).standard_normal((40, width)).astype(dtype)
    rows = np.random.default_rng(1).permutation(len(X))[:23]
    rows[5] = 4
    cuts = np.array([0, 9, 17, 23, 31, 40])
    bounds = np.empty((len(X), len(cuts)), np.int64)
    dense.sample_bounds_(indptr, indices, cuts, bounds)
    partials = np.full((5, 30, width + 3), np.nan, dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for b in (3, 0, 4, 2, 1):
        dense.first_block_sums_(w.ravel(), 0, width, indices, values, bounds, rows, b, partials)
        k = slice(cuts[b], cuts[b + 1])
        np.testing.assert_allclose(partials[b, :23, :width], X[rows][:, k] @ w[k], atol=tol)
    assert np.isnan(partials[:, 23:]).all() and np.isnan(partials[:, :, width:]).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lanes", [1, 2])
def test_epoch_split_into_calls_gives_identical_bits(dtype, lanes):
    # Each call sums its first mini-batch's first layer before its loop,
    # later mini-batches' during the previous one's update: the same sums.
    lay, start, X, y = problem((200, 64, 10), 700, dtype)
    order = np.random.default_rng(4).permutation(len(X))
    results = set()
    for calls in (1, 3, 7):
        params = start.copy()
        run_dense(lay, params, X, y, order, 101, 0.3, 1.0, "cross_entropy", "sigmoid", lanes, calls)
        results.add(params.tobytes())
    assert len(results) == 1


@pytest.mark.parametrize("rows", [1, 7, 100])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_sums_add_rows_in_order(dtype, rows):
    # Bit for bit the sums of a plain loop down each column; the columns past
    # len(out) (padding) are not read into it.
    d = np.random.default_rng(3).standard_normal((rows, 12)).astype(dtype) * 1e3
    d[:, 10:] = np.nan
    out = np.full(10, np.nan, dtype)
    dense.column_sums_(d, out)
    expected = d[0, :10].copy()
    for r in range(1, rows):
        expected = expected + d[r, :10]
    assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize("n_blocks", [1, 2, 4, 7])
@pytest.mark.parametrize("first_share", [None, 0.42, 0.53])
@pytest.mark.parametrize("n_chunks", [1, 3, 8])
def test_balance_inputs_gives_runs_of_their_share_of_nonzeros(n_blocks, first_share, n_chunks):
    X, _ = mnist_like(300)
    X[:, :200] = 0  # non-zeros only in the upper columns
    indptr, indices, _ = nonzero_index(X)
    parts = np.full((n_chunks, 784), -1, np.int64)
    cuts = np.full(n_blocks + 1, -1, np.int64)
    share = 1 / n_blocks if first_share is None else first_share
    dense.balance_inputs_(indptr, indices, share, parts, cuts)
    counts = parts.sum(axis=0)
    np.testing.assert_array_equal(counts, np.count_nonzero(X, axis=0))
    assert cuts[0] == 0 and cuts[-1] == 784 and (np.diff(cuts) >= 0).all()
    per_block = np.add.reduceat(np.append(counts, 0), cuts[:-1])[:n_blocks]
    per_block[np.diff(cuts) == 0] = 0
    assert per_block.sum() == counts.sum()
    # Each run ends at the first input where the running count reaches its
    # share, so no run holds more than its share plus one input's count,
    # nor (but the last) less than its share minus one input's count.
    shares = np.full(n_blocks, (1 - share) / max(n_blocks - 1, 1))
    shares[0] = share if n_blocks > 1 else 1
    assert (per_block <= shares * counts.sum() + counts.max()).all()
    assert (per_block[:-1] >= shares[:-1] * counts.sum() - counts.max()).all()
    assert cuts[1] >= 200 or n_blocks == 1


def test_balance_inputs_without_nonzeros_covers_every_input():
    indptr = np.zeros(4, np.int64)
    indices = np.zeros(0, np.int32)
    cuts = np.empty(5, np.int64)
    dense.balance_inputs_(indptr, indices, 0.5, np.empty((3, 10), np.int64), cuts)
    assert cuts[0] == 0 and cuts[-1] == 10 and (np.diff(cuts) >= 0).all()


@pytest.mark.skipif(JIT_DISABLED, reason="NRT statistics need compiled kernels")
def test_epoch_allocates_nothing_per_mini_batch():
    lay, params, X, y = problem((20, 8, 4), 2000)
    order = np.arange(len(X))
    m = 96
    ws = DenseWorkspace(lay, params.dtype, m, 2)
    args = (params, lay.table, 0, 0, 0, X, y, *train_data(X), order, m)
    tail = (0.1, 1.0, len(X), *ws.buffers)
    with blas_threads(1):
        dense.sgd_dense_(*args, 0, 1, *tail)  # compile
        _nrt_python.memsys_enable_stats()
        try:
            s0 = rtsys.get_allocation_stats()
            dense.sgd_dense_(*args, 0, 1, *tail)
            s1 = rtsys.get_allocation_stats()
            dense.sgd_dense_(*args, 0, 20, *tail)
            s2 = rtsys.get_allocation_stats()
        finally:
            _nrt_python.memsys_disable_stats()
    # Whatever a call costs, 20 mini-batches cost the same as 1, and nothing leaks.
    assert s2.alloc - s1.alloc == s1.alloc - s0.alloc
    assert s2.alloc - s2.free == s0.alloc - s0.free


def mnist_like(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784))
    X[X < 0.8] = 0
    return X, rng.integers(0, 10, n)


@pytest.mark.parametrize(
    "sizes,mini_batch,expected",
    [
        ([784, 30, 10], 10, {"serial", "parallel"}),  # the fused step
        ([784, 30, 10], 17, {"dense"}),
        ([784, 30, 10], 100, {"dense"}),
        ([12, 9, 4], 100, {"serial"}),  # toy layers stay on one thread's loops
    ],
)
def test_train_picks_the_driver_by_size(sizes, mini_batch, expected):
    net = fastnet.Network(sizes, seed=0)
    history = net.train(_data(sizes), 1, mini_batch, 0.1)
    assert history.header["kernel"] in expected
    assert network_module.use_dense(mini_batch, net.layout.n_weights) == (expected == {"dense"})


@pytest.mark.parametrize("mini_batch", [GRAD_CHUNK + 1, 100, 10_000])
def test_mini_batches_of_several_chunks_never_take_the_parallel_driver(mini_batch):
    # The parallel driver takes one chunk; more goes dense if there is work to split.
    for n_weights in (1, 1_000, 10**7):
        assert not network_module.use_parallel(mini_batch, n_weights)
    assert network_module.use_dense(mini_batch, 10**7)


def _data(sizes):
    X, y = mnist_like(200)
    return np.ascontiguousarray(X[:, : sizes[0]]), y % sizes[-1]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_network_threads_give_identical_bits(dtype):
    data = mnist_like(600)
    bits = set()
    for n_threads in THREADS:
        net = fastnet.Network([784, 30, 10], seed=4, dtype=dtype, n_threads=n_threads)
        history = net.train(data, 2, 99, 0.3, 1.0)
        assert history.header["kernel"] == "dense"
        bits.add(net.params.tobytes())
    assert len(bits) == 1


def test_network_dense_matches_reference_over_epochs():
    X, y = mnist_like(300)
    net = fastnet.Network([784, 30, 10], seed=7)
    w = [v.copy() for v in net.weights]
    b = [v.copy() for v in net.biases]
    rng = np.random.default_rng(net.seed)
    net.rng = np.random.default_rng(net.seed)
    net.train((X, y), 3, 40, 0.3, 2.0)
    for _ in range(3):
        reference.sgd_epoch(w, b, X, y, rng.permutation(len(X)), 40, 0.3, 2.0)
    for got, want in zip(net.weights + net.biases, w + b, strict=True):
        np.testing.assert_allclose(got, want, rtol=REFERENCE_RTOL, atol=1e-12)


def test_train_many_with_dense_mini_batches_equals_training_alone():
    data = mnist_like(300)
    alone = []
    for seed in (1, 2):
        net = fastnet.Network([784, 30, 10], seed=seed)
        net.train(data, 2, 50, 0.3, 1.0)
        alone.append(net.params.tobytes())
    nets = [fastnet.Network([784, 30, 10], seed=seed) for seed in (1, 2)]
    seen = []
    histories = train_many(nets, data, 2, 50, 0.3, 1.0, callback=lambda i, r: seen.append(i))
    assert [net.params.tobytes() for net in nets] == alone
    assert [h.header["kernel"] for h in histories] == ["dense", "dense"]
    assert seen == [0, 0, 1, 1]


def run_dense_evaluate(lay, params, X, y, cost, activation, n_threads, with_cost=True, ws=None):
    ws = EvalWorkspace(lay, params.dtype, True, n_threads) if ws is None else ws
    with blas_threads(1):
        return dense.dense_evaluate(
            params,
            lay.table,
            *kernel_codes(cost, activation),
            X,
            y,
            ws.dense_xs,
            ws.dense_zs,
            ws.dense_acts,
            ws.cost_parts,
            ws.correct_parts,
            ws.claims,
            with_cost,
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "n", [1, 10, EVAL_CHUNKS + 3, 3 * DENSE_EVAL_ROWS + 1, EVAL_CHUNKS * DENSE_EVAL_ROWS + 7]
)
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_evaluate_matches_reference(dtype, n, cost, activation):
    # 3 * DENSE_EVAL_ROWS + 1: four chunks, fewer than EVAL_CHUNKS;
    # EVAL_CHUNKS * DENSE_EVAL_ROWS + 7: chunks longer than a row block.
    lay, params, X, y = problem((12, 9, 7, 4), n, dtype)
    w, b = views(lay, params)
    cost_sum, correct = run_dense_evaluate(lay, params, X, y, cost, activation, 1)
    rel = REFERENCE_RTOL if dtype == np.float64 else 1e-4
    assert cost_sum / n == pytest.approx(
        reference.total_cost(w, b, X, y, 0.0, activation, cost), rel=rel
    )
    if dtype == np.float64:
        assert correct == round(reference.accuracy(w, b, X, y, activation, cost) * n)


def test_evaluate_without_cost_counts_the_same_and_still_flags_bad_inputs():
    lay, params, X, y = problem((12, 9, 7, 4), 300)
    cost_sum, correct = run_dense_evaluate(lay, params, X, y, "cross_entropy", "sigmoid", 2)
    assert cost_sum > 0
    assert run_dense_evaluate(lay, params, X, y, "cross_entropy", "sigmoid", 2, False) == (
        0.0,
        correct,
    )
    bad = X.copy()
    bad[137, 3] = np.inf
    flagged = run_dense_evaluate(lay, params, bad, y, "cross_entropy", "sigmoid", 2, False)
    assert np.isnan(flagged[0])


def test_evaluate_is_independent_of_thread_count(numba_threads):
    lay, params, X, y = problem((200, 64, 10), 3001)
    results = {
        run_dense_evaluate(lay, params, X, y, "cross_entropy", "sigmoid", t) for t in (1, 2, 3)
    }
    for t in THREADS:
        numba_threads(t)
        results.add(run_dense_evaluate(lay, params, X, y, "cross_entropy", "sigmoid", t))
    assert len(results) == 1


@pytest.mark.parametrize("n", [1000, 5 * DENSE_EVAL_ROWS, EVAL_CHUNKS * DENSE_EVAL_ROWS + 1])
@pytest.mark.parametrize("n_lanes", [1, 2, 3])
def test_evaluate_takes_every_chunk_once(n_lanes, n):
    # Each lane takes chunks until the counter passes the chunk count: one
    # claim per chunk plus one that finds none left per lane, whoever took
    # which; the parts of chunks not used are zeroed.
    lay, params, X, y = problem((20, 9, 4), n)
    ws = EvalWorkspace(lay, params.dtype, True, n_lanes)
    ws.claims[0] = 12345
    ws.correct_parts[...] = -1
    ws.cost_parts[...] = np.nan
    cost_sum, correct = run_dense_evaluate(
        lay, params, X, y, "cross_entropy", "sigmoid", n_lanes, ws=ws
    )
    n_chunks = dense.eval_chunks(n)
    assert n_chunks == min(EVAL_CHUNKS, -(-n // DENSE_EVAL_ROWS))
    assert ws.claims[0] == n_chunks + n_lanes
    assert (ws.correct_parts >= 0).all() and ws.correct_parts.sum() == correct
    assert (ws.correct_parts[n_chunks:] == 0).all() and (ws.cost_parts[n_chunks:] == 0).all()
    assert np.isfinite(cost_sum)


def test_eval_chunks_hold_at_most_a_product_where_they_can():
    chunks = dense.eval_chunks
    assert chunks(0) == chunks(1) == 1
    assert chunks(DENSE_EVAL_ROWS) == 1 and chunks(DENSE_EVAL_ROWS + 1) == 2
    assert chunks(10_000) * DENSE_EVAL_ROWS >= 10_000 > (chunks(10_000) - 1) * DENSE_EVAL_ROWS
    assert chunks(EVAL_CHUNKS * DENSE_EVAL_ROWS) == EVAL_CHUNKS
    assert chunks(10**9) == EVAL_CHUNKS


def test_network_evaluates_mnist_sized_layers_densely():
    X, y = mnist_like(500)
    net = fastnet.Network([784, 30, 10], seed=2)
    assert net._eval_ws.dense_zs.shape[0] >= 1
    w, b = [v.copy() for v in net.weights], [v.copy() for v in net.biases]
    assert net.accuracy((X, y)) == reference.accuracy(w, b, X, y)
    assert net.total_cost((X, y), 2.0) == pytest.approx(
        reference.total_cost(w, b, X, y, 2.0), rel=REFERENCE_RTOL
    )
    small = fastnet.Network([12, 9, 4], seed=2)
    assert small._eval_ws.dense_zs.shape[0] == 0  # toy layers: the loop kernel


@pytest.mark.parametrize("sizes", [[784, 30, 10], [12, 9, 4]], ids=["dense", "loops"])
@pytest.mark.parametrize("net_dtype", ["float64", "float32"])
def test_network_evaluates_data_of_the_other_dtype_without_converting(
    sizes, net_dtype, monkeypatch
):
    # Same bits as converting first (float32 -> float64 is exact; float64 ->
    # float32 rounds entry by entry, as astype does), for the dense
    # evaluation and the loop kernel alike, whatever the thread count.
    X, y = mnist_like(700, seed=3)
    X = X[:, : sizes[0]]
    data_dtype = np.float32 if net_dtype == "float64" else np.float64
    X = np.ascontiguousarray(X, dtype=data_dtype)
    if data_dtype == np.float64:
        X[X > 0] += 1e-12  # not float32 values: the rounding is exercised
    y = y % sizes[-1]
    converted = []
    real = network_module.Network._evaluate

    def spy(self, X, y, index=None, unchecked=None, with_cost=True):
        converted.append(X.dtype)
        return real(self, X, y, index, unchecked, with_cost)

    for n_threads in THREADS:
        net = fastnet.Network(sizes, seed=5, dtype=net_dtype, n_threads=n_threads)
        assert bool(net._eval_ws.dense_zs.shape[0]) == (sizes[0] == 784)
        Xc = X.astype(net_dtype)
        want = (net.accuracy((Xc, y)), net.total_cost((Xc, y), 1.0))
        with monkeypatch.context() as m:
            m.setattr(network_module.Network, "_evaluate", spy)
            assert (net.accuracy((X, y)), net.total_cost((X, y), 1.0)) == want
    assert converted == [data_dtype] * 2 * len(THREADS)


@pytest.mark.parametrize("n", [1, DENSE_EVAL_CONVERT_ROWS + 1, 3 * DENSE_EVAL_ROWS + 5])
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("float64", "float32")])
def test_dense_evaluate_converts_rows_as_converting_first(n, n_threads, dtypes):
    # Parts of DENSE_EVAL_CONVERT_ROWS rows and fewer; chunks of several parts.
    net_dtype, data_dtype = dtypes
    lay, params, X, y = problem((12, 9, 7, 4), n, net_dtype)
    X = np.random.default_rng(n).random(X.shape).astype(data_dtype)
    want = run_dense_evaluate(lay, params, X.astype(net_dtype), y, "cross_entropy", "sigmoid", 1)
    got = run_dense_evaluate(lay, params, X, y, "cross_entropy", "sigmoid", n_threads)
    assert got == want


def test_dense_evaluate_refuses_a_short_conversion_buffer():
    lay, params, X, y = problem((12, 9, 7, 4), 50, "float32")
    ws = EvalWorkspace(lay, params.dtype, True, 1)
    ws.dense_xs = ws.dense_xs[:, : 49 * 12]
    with pytest.raises(ValueError, match="xs is too short"):
        run_dense_evaluate(
            lay, params, X.astype(np.float64), y, "cross_entropy", "sigmoid", 1, ws=ws
        )


@pytest.mark.parametrize(
    "sizes,mini_batch,n_threads,driver",
    [
        ([784, 30, 10], 3, 1, "serial"),
        ([784, 30, 10], 10, 2, "parallel"),
        ([784, 30, 10], 50, 2, "dense"),
        ([12, 9, 4], 40, 1, "serial"),  # chunked loops
    ],
)
def test_float64_network_trains_on_float32_data_as_on_converted_data(
    sizes, mini_batch, n_threads, driver
):
    # Each driver widens float32 inputs where it reads them: the same bits as
    # converting the data to float64 first, with no float64 copy.
    X, y = mnist_like(300, seed=8)
    X32 = np.ascontiguousarray(X[:, : sizes[0]], dtype=np.float32)
    y = y % sizes[-1]
    bits = []
    for data in ((X32.astype(np.float64), y), (X32, y)):
        net = fastnet.Network(sizes, seed=3, n_threads=n_threads)
        history = net.train(
            data, 2, mini_batch, 0.3, 1.0, evaluation_data=data, monitor_evaluation_accuracy=True
        )
        assert history.header["kernel"] == driver
        bits.append((net.params.tobytes(), history.evaluation_accuracy))
    assert bits[0] == bits[1]


@pytest.mark.parametrize("sizes", [[784, 30, 10], [12, 9, 4]], ids=["dense", "loops"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_evaluation_finds_non_finite_inputs_without_a_separate_pass(sizes, bad, dtype):
    # accuracy() and total_cost() leave the NaN/inf search to the evaluation
    # kernel (a non-finite first layer) and must still name the argument,
    # wherever the bad value sits, zero weights included (inf * 0 is NaN).
    X, y = mnist_like(400, seed=2)
    X = np.ascontiguousarray(X[:, : sizes[0]], dtype=dtype)
    y = y % sizes[-1]
    net = fastnet.Network(sizes, seed=1)
    net.weights[0][:, 5] = 0.0
    for row, col in ((0, 0), (399, 5), (200, sizes[0] - 1)):
        Xb = X.copy()
        Xb[row, col] = bad
        with pytest.raises(ValueError, match="data: X contains NaN or infinite values"):
            net.accuracy((Xb, y))
        with pytest.raises(ValueError, match="data: X contains NaN or infinite values"):
            net.total_cost((Xb, y))
        with pytest.raises(ValueError, match="X: X contains NaN or infinite values"):
            net.feedforward(Xb)


def run_dense_feedforward(lay, params, X, activation, cost, n_threads):
    ws = EvalWorkspace(lay, params.dtype, True, n_threads)
    out = np.full((len(X), lay.sizes[-1]), np.nan, params.dtype)
    with blas_threads(1):
        finite = dense.dense_feedforward_(
            params,
            lay.table,
            *kernel_codes(cost, activation)[:2],
            X,
            ws.dense_xs,
            ws.dense_zs,
            ws.dense_acts,
            out,
            ws.claims,
        )
    return finite, out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "n",
    [
        1,
        10,
        DENSE_EVAL_CONVERT_ROWS + 3,
        3 * DENSE_EVAL_ROWS + 1,
        EVAL_CHUNKS * DENSE_EVAL_ROWS + 7,
    ],
)
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_dense_feedforward_matches_reference_on_any_thread_count(dtype, n, cost, activation):
    lay, params, X, _ = problem((12, 9, 7, 4), n, dtype)
    w, b = views(lay, params)
    _, acts = reference.feedforward(w, b, X.astype(np.float64), activation, cost)
    outs = []
    for n_threads in THREADS:
        finite, out = run_dense_feedforward(lay, params, X, activation, cost, n_threads)
        assert finite
        outs.append(out.tobytes())
        rtol = REFERENCE_RTOL if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(out, acts[-1], rtol=rtol, atol=1e-6)
    assert len(set(outs)) == 1
    other = X.astype(np.float32 if dtype == np.float64 else np.float64)
    # The other dtype, converted block by block: the bits of converting first.
    want = run_dense_feedforward(lay, params, other.astype(dtype), activation, cost, 1)[1]
    got = run_dense_feedforward(lay, params, other, activation, cost, max(THREADS))[1]
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_dense_feedforward_flags_non_finite_inputs(bad):
    lay, params, X, _ = problem((12, 9, 7, 4), 3 * DENSE_EVAL_ROWS + 1)
    X[2 * DENSE_EVAL_ROWS + 5, 3] = bad
    assert not run_dense_feedforward(lay, params, X, "sigmoid", "cross_entropy", 2)[0]


@pytest.mark.parametrize("sizes", [[784, 30, 10], [12, 9, 4]], ids=["dense", "loops"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_feedforward_agrees_with_accuracy_and_the_thread_count(sizes, dtype):
    # feedforward and the evaluation share their products: the predicted
    # classes are the ones accuracy() counts, on one thread or all.
    X, y = mnist_like(1500, seed=6)
    X = np.ascontiguousarray(X[:, : sizes[0]])
    y = y % sizes[-1]
    outs = []
    for n_threads in THREADS:
        net = fastnet.Network(sizes, seed=4, dtype=dtype, n_threads=n_threads)
        out = net.feedforward(X)
        assert out.dtype == np.dtype(dtype)
        assert np.mean(np.argmax(out, axis=1) == y) == net.accuracy((X, y))
        outs.append(out.tobytes())
    assert len(set(outs)) == 1


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # no-JIT runs
@pytest.mark.parametrize("sizes", [[784, 30, 10], [12, 9, 4]], ids=["dense", "loops"])
def test_float64_data_beyond_float32_is_refused_by_a_float32_network(sizes):
    # Finite in float64, infinite in the network's dtype: refused as
    # converting first would be, naming the argument and the range.
    X, y = mnist_like(400, seed=2)
    X = np.ascontiguousarray(X[:, : sizes[0]])
    y = y % sizes[-1]
    X[150, 3] = -1e39
    net = fastnet.Network(sizes, seed=1, dtype="float32")
    message = "data: X contains NaN or infinite values, or values beyond float32's range"
    with pytest.raises(ValueError, match=message):
        net.accuracy((X, y))
    with pytest.raises(ValueError, match=message):
        net.total_cost((X, y))
    with pytest.raises(ValueError, match="evaluation_data: X contains NaN"):
        net.train((X.astype(np.float32).clip(0, 1), y), 1, 10, 0.1, evaluation_data=(X, y))
    X[150, 3] = 3e38  # within float32's range
    assert 0.0 <= net.accuracy((X, y)) <= 1.0


def test_evaluation_of_finite_inputs_that_overflow_is_not_an_input_error():
    # Finite inputs whose weighted sums overflow are valid data: the answer
    # is reported, not rejected.
    X, y = mnist_like(300, seed=4)
    X[7] = 3e38
    net = fastnet.Network([784, 30, 10], seed=1, dtype="float32")
    assert 0.0 <= net.accuracy((X.astype(np.float32), y)) <= 1.0
