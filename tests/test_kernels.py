"""fastnet.kernels against fastnet.reference, and the kernels' own promises:
identical bits for serial/parallel drivers and any thread count, no
allocation per mini-batch, the exact decay factor."""

from __future__ import annotations

import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

from fastnet import reference
from fastnet._config import (
    ALPHA_FOLD,
    ALPHA_FOLD_EVERY,
    EVAL_CHUNKS,
    GRAD_CHUNK,
    MAX_GRAD_CHUNKS,
    REFERENCE_RTOL,
)
from fastnet.kernels import activations, codes, mlp
from fastnet.layout import Layout
from fastnet.threads import max_threads
from fastnet.workspace import EvalWorkspace, TrainWorkspace, nonzero_index
from tests.conftest import BAD_BLOCKS, JIT_DISABLED, train_data

PAIRS = [(c, a) for c in codes.COSTS for a in codes.HIDDEN_ACTIVATIONS]
DTYPES = [np.float64, np.float32]
DRIVERS = {"serial": mlp.sgd_serial_, "parallel": mlp.sgd_parallel_}
THREADS = sorted({1, max_threads()})


def takes(driver, mini_batch):
    """Whether `driver` takes mini-batches of this size: the parallel one
    takes one chunk (at most GRAD_CHUNK samples) only."""
    return driver == "serial" or mini_batch <= GRAD_CHUNK


def driver_cases(mini_batches):
    """``(driver, mini_batch)`` for every driver and every size it takes."""
    return [(d, m) for d in DRIVERS for m in mini_batches if takes(d, m)]


def kernel_codes(cost, activation):
    return (
        codes.HIDDEN_ACTIVATIONS[activation],
        codes.ACTIVATIONS[codes.COST_OUTPUT[cost]],
        codes.COSTS[cost],
    )


def run_evaluate(lay, params, X, y, codes3, ws, with_cost=True):
    """``mlp.evaluate`` on ``(X, y)`` with the work buffers of the
    ``EvalWorkspace`` `ws`; `codes3` is ``(hidden, output, cost)``."""
    return mlp.evaluate(
        params,
        lay.table,
        *codes3,
        X,
        y,
        *nonzero_index(X),
        ws.zs,
        ws.acts,
        ws.cost_parts,
        ws.correct_parts,
        with_cost,
    )


def problem(sizes, n, dtype=np.float64, seed=0):
    """Random parameters (scaled as the default init), inputs 80% zeros like MNIST."""
    rng = np.random.default_rng(seed)
    lay = Layout(sizes)
    params = np.zeros(lay.n_params, dtype)  # the padding is zero
    for w, b in zip(lay.weight_views(params), lay.bias_views(params), strict=True):
        w[...] = rng.standard_normal(w.shape) / np.sqrt(w.shape[1])
        b[...] = rng.standard_normal(b.shape)
    X = rng.random((n, sizes[0])).astype(dtype)
    X[X < 0.8] = 0
    y = rng.integers(0, sizes[-1], n)
    return lay, params, X, y


def views(lay, params):
    return [w.copy() for w in lay.weight_views(params)], [b.copy() for b in lay.bias_views(params)]


def flat(lay, weights, biases):
    """Pack per-layer arrays into a flat buffer through the layout's views, so
    the comparison does not depend on the storage order. The padding is zero,
    as the kernels must leave it."""
    out = np.zeros(lay.n_params, weights[0].dtype)
    for view, w in zip(lay.weight_views(out) + lay.bias_views(out), weights + biases, strict=True):
        view[...] = w
    return out


def run_epoch(
    driver, lay, params, X, y, order, mini_batch, eta, lmbda, cost, activation, n_lanes=None
):
    """One epoch through a driver. `n_lanes`: the parallel fused step's team
    (default: two lanes for the parallel driver)."""
    m = min(mini_batch, len(order))
    if n_lanes is None:
        n_lanes = 2 if driver == "parallel" else 1
    ws = TrainWorkspace(lay, params.dtype, m, n_lanes)
    n_batches = -(-len(order) // m)
    DRIVERS[driver](
        params,
        lay.table,
        *kernel_codes(cost, activation),
        X,
        y,
        *train_data(X),
        order,
        m,
        0,
        n_batches,
        eta,
        lmbda,
        len(X),
        *ws.buffers,
    )


@pytest.mark.parametrize("driver,mini_batch", driver_cases([1, 7, GRAD_CHUNK, 23, 50, 64]))
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_epoch_matches_reference_float64(driver, mini_batch, cost, activation):
    # n = 50: mini-batches of 7 and 23 leave a short last batch, 64 > n is one batch.
    lay, params, X, y = problem((12, 9, 7, 4), 50)
    order = np.random.default_rng(5).permutation(len(X))
    w, b = views(lay, params)
    reference.sgd_epoch(w, b, X, y, order, mini_batch, 0.5, 2.0, activation=activation, cost=cost)
    run_epoch(driver, lay, params, X, y, order, mini_batch, 0.5, 2.0, cost, activation)
    np.testing.assert_allclose(params, flat(lay, w, b), rtol=REFERENCE_RTOL, atol=1e-12)


#: Layouts with padded rows (fastnet.layout.row_stride): a hidden layer of 30
#: (stored as 32), of 60 (as 64) before another hidden layer, and a padded
#: output layer (one layer of 29, as 32).
PADDED = [(12, 30, 4), (12, 60, 30, 4), (12, 29)]


def test_padded_layouts_are_padded():
    for sizes in PADDED:
        table = Layout(sizes).table
        assert table[0, codes.STRIDE] > table[0, codes.N_OUT]


@pytest.mark.parametrize("sizes", PADDED)
@pytest.mark.parametrize("driver,mini_batch", driver_cases([1, 10, 23]))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "cost,activation", [("cross_entropy", "sigmoid"), ("log_likelihood", "relu")]
)
def test_padded_epoch_matches_reference(sizes, driver, dtype, mini_batch, cost, activation):
    # Work rows start as garbage: the kernels must zero the padded neurons'
    # activations and errors themselves, or the padding's weights move.
    lay, params, X, y = problem(sizes, 60, dtype)
    order = np.random.default_rng(5).permutation(len(X))
    w, b = views(lay, params)
    reference.sgd_epoch(w, b, X, y, order, mini_batch, 0.5, 2.0, activation=activation, cost=cost)
    m = min(mini_batch, len(order))
    ws = TrainWorkspace(lay, params.dtype, m, 2 if driver == "parallel" else 1)
    for work in (ws.zs, ws.acts, ws.deltas, ws.grads):
        work[...] = np.nan
    DRIVERS[driver](
        params,
        lay.table,
        *kernel_codes(cost, activation),
        X,
        y,
        *train_data(X),
        order,
        m,
        0,
        -(-len(order) // m),
        0.5,
        2.0,
        len(X),
        *ws.buffers,
    )
    expected = flat(lay, w, b)
    tol = (REFERENCE_RTOL, 1e-12) if dtype == np.float64 else (2e-4, 2e-5)
    np.testing.assert_allclose(params, expected, rtol=tol[0], atol=tol[1])
    padding = np.ones(lay.n_params, bool)
    for view in lay.weight_views(padding) + lay.bias_views(padding):
        view[...] = False
    assert padding.sum() == lay.n_params - lay.n_weights - lay.n_biases > 0
    assert (params[padding] == 0).all()


@pytest.mark.parametrize(
    "n,eta,lmbda",
    [
        # decay 0.9 a step: the scale passes ALPHA_FOLD after 66 of 100 steps
        # and is folded into the stored weights mid-epoch.
        (100, 1.0, 10.0),
        # decay 0.4 < LAZY_DECAY_MIN: the weights are decayed every step.
        (10, 1.0, 6.0),
        # no decay at all.
        (60, 0.5, 0.0),
    ],
)
def test_first_layer_decay_scale_matches_reference(n, eta, lmbda):
    decay = 1 - eta * lmbda / n
    if n == 100:
        assert decay**100 < ALPHA_FOLD < decay**60
    lay, start, X, y = problem((12, 30, 4), n)
    order = np.random.default_rng(5).permutation(n)
    w, b = views(lay, start)
    reference.sgd_epoch(w, b, X, y, order, 1, eta, lmbda)
    results = []
    for driver in DRIVERS:
        params = start.copy()
        run_epoch(driver, lay, params, X, y, order, 1, eta, lmbda, "cross_entropy", "sigmoid")
        np.testing.assert_allclose(params, flat(lay, w, b), rtol=REFERENCE_RTOL, atol=1e-12)
        results.append(params.tobytes())
    assert results[0] == results[1]


def test_lazy_factors():
    # Explicit decay: no scale.
    assert mlp.lazy_factors(1.0, 0.9, 0.1, False, 1.0) == (False, 1, 1, 0.9, 0.1)
    # The decay goes into the scale; the stored weights get step / alpha_next.
    fold, alpha, nxt, decay0, step0 = mlp.lazy_factors(0.5, 0.9, 0.1, True, 1.0)
    assert not fold and (alpha, nxt, decay0) == (0.5, 0.5 * 0.9, 1)
    assert step0 == pytest.approx(0.1 / 0.45)
    # Below ALPHA_FOLD the scale must be folded into the stored weights first.
    fold, alpha, nxt, decay0, step0 = mlp.lazy_factors(ALPHA_FOLD * 1.01, 0.9, 0.1, True, 1.0)
    assert fold and (alpha, nxt, decay0) == (1, 0.9, 1) and step0 == pytest.approx(0.1 / 0.9)


def test_scale_first_rows_touches_only_its_rows():
    lay, params, _, _ = problem((12, 30, 4), 1)
    start = params.copy()
    stride = lay.table[0, codes.STRIDE]
    mlp.scale_first_rows_(params, lay.table, 0.5, 3, 7)
    inside = slice(3 * stride, 7 * stride)
    np.testing.assert_array_equal(params[inside], 0.5 * start[inside])
    np.testing.assert_array_equal(params[: inside.start], start[: inside.start])
    np.testing.assert_array_equal(params[inside.stop :], start[inside.stop :])


@pytest.mark.parametrize("mini_batch", [1, 10, 100])
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_epoch_matches_reference_float32(mini_batch, cost, activation):
    lay, params, X, y = problem((12, 9, 4), 200, np.float32)
    order = np.random.default_rng(5).permutation(len(X))
    w, b = views(lay, params)
    reference.sgd_epoch(w, b, X, y, order, mini_batch, 0.1, 1.0, activation=activation, cost=cost)
    run_epoch("serial", lay, params, X, y, order, mini_batch, 0.1, 1.0, cost, activation)
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, flat(lay, w, b), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mini_batch", [1, 10, 100, 700])
def test_serial_parallel_and_thread_counts_give_identical_bits(dtype, mini_batch, numba_threads):
    # 700 samples in one batch exceeds MAX_GRAD_CHUNKS * GRAD_CHUNK: chunks of 22.
    assert 700 > MAX_GRAD_CHUNKS * GRAD_CHUNK
    lay, start, X, y = problem((30, 16, 10), 1000, dtype)
    order = np.random.default_rng(2).permutation(len(X))
    results = {}
    for driver in (d for d in DRIVERS if takes(d, mini_batch)):
        # The parallel fused step's team: one lane, one per thread (or more
        # lanes than threads, which one thread then runs alone), and more
        # lanes than input blocks, whose extra lanes only share the samples.
        teams = [None] if driver == "serial" else [1, 2, 3]
        for n_threads in THREADS:
            numba_threads(n_threads)
            for n_lanes in teams:
                params = start.copy()
                run_epoch(
                    driver,
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
                    n_lanes,
                )
                results[driver, n_threads, str(n_lanes)] = params.tobytes()
    assert len(set(results.values())) == 1, sorted(results)
    assert results["serial", 1, "None"] != start.tobytes()


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mini_batch", [1, 10, 23])
def test_epoch_split_into_calls_gives_identical_bits(driver, mini_batch):
    # Each call sums its first mini-batch's blocks before its loop and folds
    # the decay scale at its end; an epoch split into calls where the fused
    # step folds anyway (every ALPHA_FOLD_EVERY mini-batches, as
    # Network.train's progress bar splits it) must give the bits of one call.
    # With mini-batches of 1 the decay also passes ALPHA_FOLD mid-call.
    if not takes(driver, mini_batch):
        pytest.skip("the parallel driver takes one chunk only")
    n_batches = 3 * ALPHA_FOLD_EVERY + 5
    n = n_batches * mini_batch - (mini_batch - 1)  # a short last mini-batch
    lay, start, X, y = problem((30, 16, 10), n)
    order = np.random.default_rng(4).permutation(n)
    ws = TrainWorkspace(lay, start.dtype, mini_batch, 2 if driver == "parallel" else 1)
    data = train_data(X)
    k = ALPHA_FOLD_EVERY
    results = []
    for cuts in ([0, n_batches], [0, k, n_batches], [0, k, 2 * k, 3 * k, n_batches]):
        params = start.copy()
        for first, last in zip(cuts[:-1], cuts[1:], strict=True):
            DRIVERS[driver](
                params,
                lay.table,
                *kernel_codes("cross_entropy", "sigmoid"),
                X,
                y,
                *data,
                order,
                mini_batch,
                first,
                last,
                1.0,
                0.1 * n,
                n,
                *ws.buffers,
            )
        results.append(params.tobytes())
    # Decay 0.9 a step: with mini-batches of 1 the scale reaches ALPHA_FOLD
    # after 66, before the first periodic fold.
    assert 0.9**66 < ALPHA_FOLD < 0.9**65 and ALPHA_FOLD_EVERY > 66
    assert results[0] != start.tobytes()
    assert results[0] == results[1] == results[2]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # no-JIT runs
def test_all_finite_tests_each_entry_in_the_dtype_of_like():
    # float64 entries are tested as float32 would hold them, rounding to
    # nearest: up to half an ulp past float32's largest value is finite.
    top = float(np.finfo(np.float32).max)
    edge = 2.0**128 - 2.0**103  # halfway to 2**128: rounds up (to even), infinite
    values = [top, -top, np.nextafter(edge, 0), edge, -edge, 1e39, np.inf, -np.inf, np.nan, 1e-50]
    for v in values:
        X = np.zeros((3, 5))
        X[2, 4] = v
        with np.errstate(over="ignore"):
            in_float32 = bool(np.isfinite(np.float32(v)))
        assert mlp.all_finite(X, np.zeros(0, np.float32)) == in_float32, v
        assert mlp.all_finite(X, np.zeros(0, np.float64)) == bool(np.isfinite(v)), v
        assert mlp.all_finite(X.astype(np.float32), np.zeros(0, np.float64)) == in_float32, v
    assert [np.isfinite(np.float32(v)) for v in (np.nextafter(edge, 0), edge)] == [True, False]


@pytest.mark.parametrize("n", [1, 10, EVAL_CHUNKS + 3, 1000])
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_evaluate_and_feedforward_match_reference(n, cost, activation):
    lay, params, X, y = problem((12, 9, 7, 4), n)
    w, b = views(lay, params)
    ws = EvalWorkspace(lay, params.dtype)
    cost_sum, correct = run_evaluate(lay, params, X, y, kernel_codes(cost, activation), ws)
    assert cost_sum / n == pytest.approx(
        reference.total_cost(w, b, X, y, 0.0, activation, cost), rel=REFERENCE_RTOL
    )
    assert correct == round(reference.accuracy(w, b, X, y, activation, cost) * n)
    out = np.empty((n, lay.sizes[-1]))
    mlp.feedforward_(
        params,
        lay.table,
        *kernel_codes(cost, activation)[:2],
        X,
        *nonzero_index(X),
        out,
        ws.zs,
        ws.acts,
    )
    _, acts = reference.feedforward(w, b, X, activation, cost)
    np.testing.assert_allclose(out, acts[-1], rtol=REFERENCE_RTOL, atol=1e-14)


@pytest.mark.parametrize("sizes", PADDED)
def test_padded_evaluate_and_feedforward_match_reference(sizes):
    lay, params, X, y = problem(sizes, EVAL_CHUNKS + 3)
    w, b = views(lay, params)
    ws = EvalWorkspace(lay, params.dtype)
    ws.zs[...] = np.nan
    ws.acts[...] = np.nan
    args = (params, lay.table, *kernel_codes("cross_entropy", "sigmoid"))
    cost_sum, correct = run_evaluate(lay, params, X, y, args[2:], ws)
    n = len(X)
    assert cost_sum / n == pytest.approx(
        reference.total_cost(w, b, X, y, 0.0, "sigmoid", "cross_entropy"), rel=REFERENCE_RTOL
    )
    assert correct == round(reference.accuracy(w, b, X, y, "sigmoid", "cross_entropy") * n)
    out = np.empty((n, lay.sizes[-1]))
    mlp.feedforward_(*args[:4], X, *nonzero_index(X), out, ws.zs, ws.acts)
    _, acts = reference.feedforward(w, b, X, "sigmoid", "cross_entropy")
    np.testing.assert_allclose(out, acts[-1], rtol=REFERENCE_RTOL, atol=1e-14)


def test_evaluate_without_cost_counts_the_same_and_still_flags_bad_inputs():
    lay, params, X, y = problem((12, 9, 7, 4), 100)
    ws = EvalWorkspace(lay, params.dtype)

    def run(X, with_cost):
        return run_evaluate(
            lay, params, X, y, kernel_codes("cross_entropy", "sigmoid"), ws, with_cost
        )

    cost_sum, correct = run(X, True)
    assert cost_sum > 0
    assert run(X, False) == (0.0, correct)
    bad = X.copy()
    bad[37, 3] = np.nan
    assert np.isnan(run(bad, False)[0])


def test_evaluate_is_independent_of_thread_count(numba_threads):
    lay, params, X, y = problem((30, 16, 10), 999)
    ws = EvalWorkspace(lay, params.dtype)
    results = set()
    for n_threads in THREADS:
        numba_threads(n_threads)
        results.add(run_evaluate(lay, params, X, y, (0, 0, 0), ws))
    assert len(results) == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 5, 40])
@pytest.mark.parametrize("cost,activation", PAIRS)
def test_batch_gradient_matches_reference(dtype, m, cost, activation):
    lay, params, X, y = problem((12, 9, 7, 4), m, dtype)
    w, b = views(lay, params)
    ws = TrainWorkspace(lay, dtype, m)
    mlp.batch_gradient_(
        params,
        lay.table,
        *kernel_codes(cost, activation),
        X,
        y,
        *nonzero_index(X),
        np.arange(m),
        *ws.buffers[:4],
    )
    gw, gb = reference.backprop(w, b, X, y, activation, cost)
    rtol, atol = (REFERENCE_RTOL, 1e-12) if dtype == np.float64 else (1e-4, 1e-5)
    np.testing.assert_allclose(ws.grads[0], flat(lay, gw, gb), rtol=rtol, atol=atol)


@pytest.mark.parametrize("cost,activation", PAIRS)
def test_gradient_central_differences(cost, activation):
    """The kernel gradient is the derivative of the kernel cost."""
    lay, params, X, y = problem((5, 4, 3, 3), 6, seed=7)
    hidden, output, cost_code = kernel_codes(cost, activation)
    ws = TrainWorkspace(lay, np.float64, len(X))
    mlp.batch_gradient_(
        params,
        lay.table,
        hidden,
        output,
        cost_code,
        X,
        y,
        *nonzero_index(X),
        np.arange(len(X)),
        *ws.buffers[:4],
    )
    grad = ws.grads[0].copy()
    ev = EvalWorkspace(lay, np.float64)

    def f():
        return run_evaluate(lay, params, X, y, (hidden, output, cost_code), ev)[0]

    eps = 1e-6
    for p in range(lay.n_params):
        old = params[p]
        params[p] = old + eps
        up = f()
        params[p] = old - eps
        down = f()
        params[p] = old
        assert (up - down) / (2 * eps) == pytest.approx(grad[p], rel=1e-5, abs=1e-8), p


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_gradient_step_scales_weights_by_decay_exactly(dtype):
    lay, params, _, _ = problem((12, 9, 4), 1, dtype)
    before = params.copy()
    eta, lmbda, n = 0.5, 5.0, 1000
    grads = np.zeros((3, lay.n_params), dtype)
    decay = dtype(1.0 - eta * lmbda / n)
    mlp.update_block_(params, grads, 3, lay.n_weights, decay, dtype(eta / 10), 0, lay.n_params)
    assert np.array_equal(params[: lay.n_weights], decay * before[: lay.n_weights])
    assert np.array_equal(params[lay.n_weights :], before[lay.n_weights :])


def test_update_adds_chunk_gradients_with_step():
    lay, params, _, _ = problem((3, 2, 2), 1)
    before = params.copy()
    grads = np.arange(2 * lay.n_params, dtype=float).reshape(2, -1)
    mlp.update_block_(params, grads, 2, lay.n_weights, 0.9, 0.1, 0, lay.n_params)
    g = grads.sum(axis=0)
    nw = lay.n_weights
    np.testing.assert_allclose(params[:nw], 0.9 * before[:nw] - 0.1 * g[:nw], rtol=1e-15)
    np.testing.assert_allclose(params[nw:], before[nw:] - 0.1 * g[nw:], rtol=1e-15)


@pytest.mark.skipif(JIT_DISABLED, reason="NRT statistics need compiled kernels")
@pytest.mark.parametrize("driver", DRIVERS)
def test_epoch_allocates_nothing_per_mini_batch(driver):
    lay, params, X, y = problem((20, 8, 4), 400)
    order = np.arange(len(X))
    ws = TrainWorkspace(lay, params.dtype, 10)
    args = (params, lay.table, 0, 0, 0, X, y, *train_data(X), order, 10)
    tail = (0.1, 1.0, len(X), *ws.buffers)
    DRIVERS[driver](*args, 0, 1, *tail)  # compile
    _nrt_python.memsys_enable_stats()
    try:
        s0 = rtsys.get_allocation_stats()
        DRIVERS[driver](*args, 0, 1, *tail)
        s1 = rtsys.get_allocation_stats()
        DRIVERS[driver](*args, 0, 40, *tail)
        s2 = rtsys.get_allocation_stats()
    finally:
        _nrt_python.memsys_disable_stats()
    # Whatever a call costs (argument wrapping), 40 mini-batches cost the same as 1.
    assert s2.alloc - s1.alloc == s1.alloc - s0.alloc
    assert s2.alloc - s2.free == s0.alloc - s0.free


def test_parallel_driver_refuses_mini_batches_of_several_chunks():
    lay, params, X, y = problem((12, 9, 4), 40)
    with pytest.raises(ValueError, match="mini_batch must be at most GRAD_CHUNK"):
        run_epoch(
            "parallel",
            lay,
            params,
            X,
            y,
            np.arange(40),
            GRAD_CHUNK + 1,
            0.5,
            1.0,
            "cross_entropy",
            "sigmoid",
        )


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (2, 7), (0, GRAD_CHUNK)])
@pytest.mark.parametrize("sizes", [(6, 5, 4), (9, 12, 7, 3)])
@pytest.mark.parametrize(("cost", "activation"), PAIRS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_errors_give_the_bits_of_one_sample_at_a_time(
    dtype, cost, activation, sizes, lo, hi
):
    """The fused step's later layers run for a batch of samples at once
    (batch sums over columns); each sample's numbers are those of
    forward_rest_ and backward_sample_ on it alone."""
    lay, params, X, y = problem(sizes, GRAD_CHUNK, dtype, seed=lo + hi)
    hidden, output, cost_code = kernel_codes(cost, activation)
    ws = TrainWorkspace(lay, dtype, GRAD_CHUNK)
    table = lay.table
    stride0 = table[0, codes.STRIDE]
    rng = np.random.default_rng(hi)
    partials = (3 * rng.standard_normal(ws.partials.shape)).astype(dtype)
    alpha = dtype(0.75)
    batch = rng.permutation(GRAD_CHUNK).astype(np.int64)
    mlp.sample_errors_(
        params,
        table,
        hidden,
        output,
        cost_code,
        y,
        np.zeros(0, np.int32),  # the index is not read when the sums are given
        np.zeros(0, dtype),
        np.zeros((GRAD_CHUNK, partials.shape[0] + 1), np.int64),
        batch,
        lo,
        hi,
        alpha,
        False,
        partials,
        ws.zs[0],
        ws.acts[0],
        ws.deltas[0],
        ws.columns[0],
    )
    for s in range(lo, hi):
        z = np.zeros(lay.n_z, dtype)
        a = np.zeros(lay.n_z, dtype)
        delta = np.zeros(lay.n_z, dtype)
        z[:stride0] = partials[0, s, :stride0]
        for p in partials[1:, s]:
            z[:stride0] += p[:stride0]
        mlp.forward_rest_(params, table, hidden, output, z, a, alpha)
        mlp.backward_sample_(params, table, hidden, cost_code, y[batch[s]], z, a, delta)
        np.testing.assert_array_equal(ws.acts[0, s], a)
        np.testing.assert_array_equal(ws.deltas[0, s], delta)
        for layer in range(lay.n_layers):  # (z's padding is never read)
            off, n_out = table[layer, codes.Z_OFF], table[layer, codes.N_OUT]
            np.testing.assert_array_equal(ws.zs[0, s, off : off + n_out], z[off : off + n_out])


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize(
    "case",
    [*BAD_BLOCKS, "partials", "partials_rows", "partials_stride", "columns", "columns_lanes"],
)
def test_drivers_refuse_blocks_and_scratch_that_do_not_fit(driver, case):
    lay, params, X, y = problem((12, 9, 4), 40)
    ws = TrainWorkspace(lay, params.dtype, 10, 2)
    indptr, indices, values, cuts, bounds = train_data(X)
    data = {"cuts": cuts, "bounds": bounds}
    if case == "columns_lanes" and driver == "serial":
        pytest.skip("the serial driver's one lane takes columns[0] only")
    field, short = {
        **{k: (f, spoil(data[f])) for k, (f, spoil) in BAD_BLOCKS.items()},
        "partials": ("partials", ws.partials[:1]),
        "partials_rows": ("partials", ws.partials[:, :9]),
        "partials_stride": ("partials", ws.partials[:, :, :-1]),
        # Too short for the widest later layer (9) times the mini-batch's
        # 10 columns (rounded up to whole vectors); one lane's columns for a
        # team of two.
        "columns": ("columns", np.ascontiguousarray(ws.columns[:, :, : 9 * 10 - 1])),
        "columns_lanes": ("columns", ws.columns[:1]),
    }[case]
    if field in data:
        data[field] = short
    else:
        setattr(ws, field, short)
    args = (params, lay.table, 0, 0, 0, X, y, indptr, indices, values, data["cuts"], data["bounds"])
    before = params.copy()
    with pytest.raises(ValueError, match=f"sgd_{driver}_: cuts, bounds, partials or columns"):
        DRIVERS[driver](*args, np.arange(40), 10, 0, 4, 0.1, 1.0, 40, *ws.buffers)
    assert np.array_equal(params, before)


@pytest.mark.parametrize("case", ["n_lanes", "sync"])
def test_parallel_driver_refuses_a_team_that_does_not_fit(case):
    lay, params, X, y = problem((12, 9, 4), 40)
    ws = TrainWorkspace(lay, params.dtype, 10, 2)
    if case == "n_lanes":
        ws.n_lanes = 0
    else:
        ws.sync = ws.sync[:-1]
    args = (params, lay.table, 0, 0, 0, X, y, *train_data(X), np.arange(40), 10, 0, 4)
    with pytest.raises(ValueError, match="sgd_parallel_: n_lanes must be at least 1"):
        mlp.sgd_parallel_(*args, 0.1, 1.0, 40, *ws.buffers)


def test_n_chunks_depends_on_batch_size_only():
    assert mlp.n_chunks(1) == 1
    assert mlp.n_chunks(GRAD_CHUNK) == 1
    assert mlp.n_chunks(GRAD_CHUNK + 1) == 2
    assert mlp.n_chunks(10**6) == MAX_GRAD_CHUNKS


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "softmax"])
def test_activate_matches_reference(dtype, name):
    z = np.linspace(-30, 30, 41).astype(dtype)
    a = np.empty_like(z)
    activations.activate_(codes.ACTIVATIONS[name], z, a)
    expected = reference.ACTIVATIONS[name](z[None, :])[0]
    assert a.dtype == dtype
    np.testing.assert_allclose(a, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("cost", list(codes.COSTS))
def test_sample_cost_is_finite_when_outputs_saturate(cost):
    z = np.array([800.0, -800.0, 0.0])
    a = np.empty(3)
    activations.activate_(codes.ACTIVATIONS[codes.COST_OUTPUT[cost]], z, a)
    for label in range(3):
        c = activations.sample_cost(codes.COSTS[cost], z, a, label)
        expected = reference.sample_costs(z[None], a[None], np.array([label]), cost)[0]
        assert np.isfinite(c)
        assert c == pytest.approx(expected, rel=1e-12)
