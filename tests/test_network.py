"""Tests for fastnet.network.Network: buffers, seeding, training invariants,
agreement with the NumPy reference, validation, divergence, history, threads."""

from __future__ import annotations

import copy
import logging
import threading
import warnings

import numpy as np
import pytest

import fastnet
import fastnet.network as network_module
from fastnet import DivergenceError, Network, SymmetryWarning, reference
from fastnet._config import GRAD_CHUNK
from fastnet._validation import check_data
from fastnet.network import use_dense, use_parallel
from fastnet.threads import max_threads
from fastnet.workspace import index_cache_info

SIZES = [6, 5, 3]
N = 50
COSTS = ["cross_entropy", "quadratic", "log_likelihood"]
ACTIVATIONS = ["sigmoid", "tanh", "relu"]
DTYPES = ["float32", "float64"]


def synthetic(n=N, sizes=SIZES, seed=0):
    """Inputs in [0, 1) shaped (n, sizes[0]) and labels in [0, sizes[-1])."""
    rng = np.random.default_rng(seed)
    return rng.random((n, sizes[0])), rng.integers(0, sizes[-1], n)


@pytest.fixture
def data():
    return synthetic()


def in_layout(net, weights, biases):
    """Per-layer arrays (e.g. the reference's gradients) written into a flat
    buffer laid out like ``net.params``, through the network's own views."""
    buf = np.zeros_like(net.params, dtype=np.result_type(net.params, *weights, *biases))
    for view, value in zip(net.layout.weight_views(buf), weights, strict=True):
        view[...] = value
    for view, value in zip(net.layout.bias_views(buf), biases, strict=True):
        view[...] = value
    return buf


@pytest.fixture
def default_threads():
    """Restore the process-wide default thread count after the test."""
    yield
    fastnet.set_num_threads(None)


# ----------------------------------------------------------------- the buffer


@pytest.mark.parametrize("sizes", [[784, 30, 10], [784, 100, 10], [784, 256, 128, 10]])
def test_weights_and_biases_are_views_of_params(sizes):
    net = Network(sizes, seed=0)
    n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    n_biases = sum(sizes[1:])
    assert net.layout.n_weights == n_weights and net.layout.n_biases == n_biases
    assert net.params.shape == (net.layout.n_params,)
    assert net.params.shape[0] >= n_weights + n_biases
    assert net.params.flags.c_contiguous
    assert len(net.weights) == len(net.biases) == len(sizes) - 1
    for layer, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        assert w.shape == (sizes[layer + 1], sizes[layer])
        assert b.shape == (sizes[layer + 1],)
        assert np.shares_memory(w, net.params)
        assert np.shares_memory(b, net.params)
    # The views do not overlap, all weights come before all biases, and the
    # entries outside every view are the padding, zero after initialization.
    padding = np.ones(net.params.shape, bool)
    for view in net.weights + net.biases:
        before = net.params.copy()
        view += 1
        changed = net.params != before
        view -= 1
        assert changed.sum() == view.size
        assert padding[changed].all()
        padding &= ~changed
    assert (net.params[padding] == 0).all()
    assert padding.sum() == net.params.shape[0] - n_weights - n_biases
    w_end = net.layout.weight_end
    assert not padding[w_end:].any()
    for w in net.weights:
        w[...] = -1
    assert (net.params[:w_end][~padding[:w_end]] == -1).all() and (net.params[w_end:] != -1).all()
    # Writing through the buffer shows in the views and vice versa.
    net.params[0] = 123.0
    assert net.weights[0][0, 0] == 123.0
    net.biases[-1][-1] = -7.0
    assert net.params[-1] == -7.0


def test_initialize_refills_the_same_buffer(data):
    net = Network(SIZES, seed=1)
    net.train(data, 1, 10, 0.5)
    params, pointer = net.params, net.params.ctypes.data
    weights, biases = net.weights, net.biases
    returned = net.initialize("large", seed=7)
    assert returned is net
    assert net.params is params
    assert net.params.ctypes.data == pointer
    assert net.weights is weights and net.biases is biases
    for w, b in zip(net.weights, net.biases, strict=True):
        assert np.shares_memory(w, params) and np.shares_memory(b, params)
    # The refill is the 'large' scheme with that seed, written into the old buffer.
    fresh = Network(SIZES, init="large", seed=7)
    assert net.params.tobytes() == fresh.params.tobytes()
    assert net.init == "large"
    params[0] = 42.0
    assert net.weights[0][0, 0] == 42.0


def test_initialize_with_seed_reproduces_bits(data):
    net = Network(SIZES, seed=5)
    first = net.params.tobytes()
    net.train(data, 1, 10, 0.5)
    assert net.params.tobytes() != first
    net.initialize("default", seed=5)
    assert net.params.tobytes() == first
    # Without a seed the draws continue from the generator's state.
    net.initialize("default")
    assert net.params.tobytes() != first


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_seed_trains_to_identical_bits(data, dtype):
    def trained(seed):
        net = Network(SIZES, seed=seed, dtype=dtype)
        net.train(data, 2, 10, 0.5, 0.1)
        return net.params.tobytes()

    assert trained(3) == trained(3)
    assert trained(3) != trained(4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_both_dtypes_train_and_keep_their_dtype(data, dtype):
    net = Network(SIZES, seed=2, dtype=dtype)
    before = net.params.copy()
    history = net.train(data, 2, 10, 0.5, 0.1)
    assert len(history) == 2
    assert net.params.dtype == np.dtype(dtype)
    assert all(w.dtype == np.dtype(dtype) for w in net.weights + net.biases)
    assert not np.array_equal(net.params, before)
    assert np.isfinite(net.params).all()
    assert net.feedforward(data[0]).dtype == np.dtype(dtype)
    assert history.header["config"]["dtype"] == dtype


def test_float32_training_tracks_float64(data):
    """Same seed, same arithmetic up to rounding: the two precisions agree closely."""
    nets = {dt: Network(SIZES, seed=2, dtype=dt) for dt in DTYPES}
    for net in nets.values():
        net.train(data, 2, 10, 0.5, 0.1)
    np.testing.assert_allclose(nets["float32"].params, nets["float64"].params, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------- symmetry


def hidden_rows_equal(net):
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        if not (np.array_equal(w, np.broadcast_to(w[0], w.shape)) and (b == b[0]).all()):
            return False
    return True


@pytest.mark.parametrize(
    ("init", "options", "start"), [("zeros", {}, 0.0), ("constant", {"value": 0.3}, 0.3)]
)
@pytest.mark.parametrize("sizes", [[6, 5, 3], [6, 5, 4, 3]])
def test_symmetric_init_warns_and_never_breaks_symmetry(data, init, options, start, sizes):
    X, y = synthetic(sizes=sizes)
    net = Network(sizes, init=init, seed=0, **options)
    assert (net.params == np.float64(start)).all()
    with pytest.warns(SymmetryWarning, match=init):
        net.train((X, y), 3, 10, 0.5, 0.1)
    # Training moved the hidden weights (columns differ, as the inputs do), yet
    # every hidden unit of a layer still has exactly the same incoming weights
    # and bias.
    assert np.ptp(net.weights[0]) > 0
    assert hidden_rows_equal(net)


def test_random_init_does_not_warn(data):
    net = Network(SIZES, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SymmetryWarning)
        net.train(data, 1, 10, 0.5)
    assert not hidden_rows_equal(net)


def test_zeros_without_hidden_layer_does_not_warn(data):
    """[6, 3] is logistic regression: identical starting weights are harmless."""
    net = Network([6, 3], init="zeros")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SymmetryWarning)
        net.train(data, 1, 10, 0.5)
    assert np.ptp(net.weights[0]) > 0


def test_symmetry_warning_points_at_the_caller(data):
    net = Network(SIZES, init="zeros")
    with pytest.warns(SymmetryWarning) as record:
        net.train(data, 1, 10, 0.5)
    assert record[0].filename == __file__


# ------------------------------------------------------- the update rule


def dead_relu_net(dtype):
    """A relu net whose hidden units are all dead on inputs in [0, 1): every
    weight gradient is exactly zero while the output bias gradient is not."""
    net = Network(SIZES, activation="relu", seed=11, dtype=dtype)
    net.biases[0][...] = -100.0  # |w . x| < 100 for 6 inputs in [0, 1)
    return net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mini_batch", [N, 10])
def test_zero_gradient_step_is_pure_weight_decay(data, dtype, mini_batch):
    X, y = data
    net = dead_relu_net(dtype)
    # The construction, checked in float64 (a float32 gradient kernel would
    # cost a compilation for no extra information).
    grad = dead_relu_net("float64").gradient(X, y)
    grad_w, grad_b = net.layout.weight_views(grad), net.layout.bias_views(grad)
    assert all((g == 0).all() for g in grad_w)
    assert (grad_b[0] == 0).all()  # hidden biases
    assert (grad_b[1] != 0).any()  # output biases

    eta, lmbda = 0.5, 2.0
    w_before = [w.copy() for w in net.weights]
    b_hidden = net.biases[0].copy()
    b_out = net.biases[1].copy()
    net.train((X, y), 1, mini_batch, eta, lmbda)

    decay = np.dtype(dtype).type(1.0 - eta * lmbda / N)
    expected = [w.copy() for w in w_before]
    for _ in range(N // mini_batch):
        expected = [decay * w for w in expected]
    if mini_batch <= GRAD_CHUNK:
        # The fused step keeps the first layer's decay in one scale, folded
        # into the weights at the end: one product of the decays.
        alpha = np.dtype(dtype).type(1)
        for _ in range(N // mini_batch):
            alpha = alpha * decay
        expected[0] = alpha * w_before[0]
    for w, want, before in zip(net.weights, expected, w_before, strict=True):
        assert want.dtype == np.dtype(dtype)
        assert np.array_equal(w, want)
        assert not np.array_equal(w, before)
    assert np.array_equal(net.biases[0], b_hidden)
    assert not np.array_equal(net.biases[1], b_out)


@pytest.mark.parametrize("mini_batch", [10, 20, 1000])
@pytest.mark.parametrize("cost", COSTS)
def test_epoch_matches_reference_sgd(data, cost, mini_batch):
    """One training epoch = the reference's mini-batch SGD over the same order
    (the last mini-batch shorter for 20, one batch for 1000 > n)."""
    X, y = data
    net = Network(SIZES, seed=8, cost=cost, activation="tanh")
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    order = copy.deepcopy(net.rng).permutation(N)
    net.train((X, y), 1, mini_batch, 0.7, 3.0)
    reference.sgd_epoch(
        weights, biases, X, y, order, mini_batch, 0.7, 3.0, N, activation="tanh", cost=cost
    )
    expected = in_layout(net, weights, biases)
    np.testing.assert_allclose(net.params, expected, rtol=1e-9, atol=1e-12)


def test_mini_batch_larger_than_n_is_one_batch(data):
    nets = [Network(SIZES, seed=4) for _ in range(2)]
    nets[0].train(data, 2, N, 0.5, 0.1)
    history = nets[1].train(data, 2, 10 * N, 0.5, 0.1)
    assert nets[0].params.tobytes() == nets[1].params.tobytes()
    assert history.header["config"]["mini_batch_size"] == 10 * N


def test_sgd_is_train(data):
    a, b = Network(SIZES, seed=4), Network(SIZES, seed=4)
    ha = a.train(data, 2, 10, 0.5, 0.1, evaluation_data=data, monitor_evaluation_accuracy=True)
    hb = b.SGD(data, 2, 10, 0.5, 0.1, evaluation_data=data, monitor_evaluation_accuracy=True)
    assert a.params.tobytes() == b.params.tobytes()
    assert ha.evaluation_accuracy == hb.evaluation_accuracy


def test_zero_epochs_changes_nothing(data):
    net = Network(SIZES, seed=4)
    before = net.params.tobytes()
    history = net.train(data, 0, 10, 0.5)
    assert len(history) == 0
    assert net.params.tobytes() == before


# ----------------------------------------------- agreement with the reference


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("cost", COSTS)
def test_gradient_matches_reference_backprop(data, cost, activation):
    X, y = data
    net = Network([6, 5, 4, 3], seed=2, cost=cost, activation=activation)
    expected = in_layout(net, *reference.backprop(net.weights, net.biases, X, y, activation, cost))
    got = net.gradient(X, y)
    assert got.shape == net.params.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-13)
    assert np.abs(expected).max() > 1e-3  # not a vacuous comparison


def test_gradient_does_not_touch_params(data):
    net = Network(SIZES, seed=2)
    before = net.params.tobytes()
    net.gradient(*data)
    assert net.params.tobytes() == before


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("cost", COSTS)
def test_evaluation_matches_reference(data, cost, activation):
    X, y = data
    net = Network([6, 5, 4, 3], seed=3, cost=cost, activation=activation, init="large")
    _, acts = reference.feedforward(net.weights, net.biases, X, activation, cost)
    out = net.feedforward(X)
    assert out.shape == (N, 3)
    np.testing.assert_allclose(out, acts[-1], rtol=1e-12, atol=1e-15)
    if cost == "log_likelihood":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(net.predict(X), np.argmax(acts[-1], axis=1))
    expected_acc = reference.accuracy(net.weights, net.biases, X, y, activation, cost)
    assert net.accuracy((X, y)) == expected_acc
    assert 0 < expected_acc < 1
    for lmbda in (0.0, 2.5):
        expected = reference.total_cost(net.weights, net.biases, X, y, lmbda, activation, cost)
        assert net.total_cost((X, y), lmbda) == pytest.approx(expected, rel=1e-12)
    assert net.total_cost((X, y), 2.5) > net.total_cost((X, y))


def test_evaluation_does_not_depend_on_thread_count():
    X, y = synthetic(n=301)
    results = []
    for n_threads in sorted({1, max_threads()}):
        net = Network(SIZES, seed=3, n_threads=n_threads)
        results.append((net.feedforward(X).tobytes(), net.total_cost((X, y), 1.0)))
    assert all(r == results[0] for r in results)


# ------------------------------------------------------------ validation


def call_train(**overrides):
    X, y = synthetic()
    kwargs = {"training_data": (X, y), "epochs": 1, "mini_batch_size": 10, "eta": 0.5}
    kwargs.update(overrides)
    return Network(SIZES, seed=0).train(**kwargs)


def with_nan(value=np.nan):
    X, y = synthetic()
    X[7, 2] = value
    return X, y


BAD_TRAIN = [
    ({"training_data": (np.zeros((N, 5)), np.zeros(N, int))}, ValueError, "training_data"),
    ({"training_data": (synthetic()[0], np.full(N, 3))}, ValueError, "training_data"),
    ({"training_data": (synthetic()[0], np.full(N, -1))}, ValueError, "labels"),
    ({"training_data": (synthetic()[0], np.zeros(N))}, TypeError, "training_data"),
    ({"training_data": with_nan()}, ValueError, "NaN"),
    # Found while the non-zero index is built, still before anything runs.
    ({"training_data": with_nan(-np.inf)}, ValueError, "training_data: X contains NaN or inf"),
    ({"training_data": (np.zeros((0, 6)), np.zeros(0, int))}, ValueError, "training_data"),
    ({"training_data": (np.zeros((N, 6)), np.zeros(N - 1, int))}, ValueError, "training_data"),
    ({"training_data": np.zeros((N, 6))}, TypeError, "training_data"),
    ({"eta": 0}, ValueError, "eta"),
    ({"eta": -0.1}, ValueError, "eta"),
    ({"eta": float("nan")}, ValueError, "eta"),
    ({"lmbda": -1.0}, ValueError, "lmbda"),
    ({"epochs": -1}, ValueError, "epochs"),
    ({"epochs": 1.5}, TypeError, "epochs"),
    ({"mini_batch_size": 0}, ValueError, "mini_batch_size"),
    ({"monitor_evaluation_accuracy": True}, ValueError, "evaluation_data"),
    ({"monitor_evaluation_cost": True}, ValueError, "evaluation_data"),
    ({"evaluation_data": (np.zeros((N, 7)), np.zeros(N, int))}, ValueError, "evaluation_data"),
]


@pytest.mark.parametrize(("overrides", "exc", "text"), BAD_TRAIN)
def test_train_rejects_bad_arguments(overrides, exc, text):
    with pytest.raises(exc, match=text):
        call_train(**overrides)


def test_bad_arguments_leave_params_untouched(data):
    net = Network(SIZES, seed=0)
    before = net.params.tobytes()
    with pytest.raises(ValueError):
        net.train(data, 1, 10, 0.5, evaluation_data=(np.zeros((3, 7)), np.zeros(3, int)))
    assert net.params.tobytes() == before


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"sizes": [6]}, ValueError, "sizes"),
        ({"sizes": [6, 0, 3]}, ValueError, "sizes"),
        ({"sizes": "6,5,3"}, TypeError, "sizes"),
        ({"sizes": [6, 5.0, 3]}, TypeError, "sizes"),
        ({"cost": "quadratc"}, ValueError, "cost.*did you mean 'quadratic'"),
        ({"activation": "sigmod"}, ValueError, "activation.*did you mean 'sigmoid'"),
        ({"init": "defualt"}, ValueError, "init.*did you mean 'default'"),
        ({"init": "xavier"}, ValueError, "init.*did you mean 'xavier_normal'"),
        ({"bias_init": "nope"}, ValueError, "bias_init"),
        ({"dtype": "int32"}, ValueError, "dtype"),
        ({"dtype": np.float16}, ValueError, "dtype"),
        ({"n_threads": 0}, ValueError, "n_threads"),
        ({"init": "small", "epsilon": 0.1}, TypeError, "epsilon"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, exc, text):
    kwargs = {"sizes": SIZES, **kwargs}
    with pytest.raises(exc, match=text):
        Network(kwargs.pop("sizes"), **kwargs)


@pytest.mark.parametrize(
    ("call", "exc", "text"),
    [
        (lambda net: net.feedforward(np.zeros((4, 5))), ValueError, "X"),
        (lambda net: net.feedforward(np.zeros((0, 6))), ValueError, "X"),
        (lambda net: net.predict(np.full((2, 6), np.inf)), ValueError, "X"),
        (lambda net: net.accuracy((np.zeros((4, 6)), np.array([0, 1, 2, 3]))), ValueError, "data"),
        (lambda net: net.total_cost((np.zeros((4, 6)), np.zeros(4, int)), -1), ValueError, "lmbda"),
        (lambda net: net.gradient(np.zeros((4, 6)), np.zeros(4)), TypeError, "data"),
    ],
)
def test_evaluation_rejects_bad_arguments(call, exc, text):
    with pytest.raises(exc, match=text):
        call(Network(SIZES, seed=0))


def train_on(X, y, **kwargs):
    net = Network(SIZES, seed=6, **kwargs)
    net.train((X, y), 2, 10, 0.5, 0.1)
    return net


def test_int_inputs_are_converted(data):
    X = np.random.default_rng(1).integers(0, 2, (N, 6))
    y = data[1]
    assert train_on(X, y).params.tobytes() == train_on(X.astype(np.float64), y).params.tobytes()
    net = Network(SIZES, seed=0)
    np.testing.assert_array_equal(net.feedforward(X), net.feedforward(X.astype(float)))


def test_list_inputs_are_converted(data):
    X, y = data
    a = train_on(X.tolist(), y.tolist())
    assert a.params.tobytes() == train_on(X, y).params.tobytes()


def test_read_only_inputs_work_and_stay_untouched(data):
    X, y = data
    Xr = X.copy()
    Xr.setflags(write=False)
    assert train_on(Xr, y).params.tobytes() == train_on(X, y).params.tobytes()
    assert not Xr.flags.writeable
    assert np.array_equal(Xr, X)


def test_read_only_labels_are_copied_like_read_only_inputs(data):
    X, y = data
    y = y.copy()
    y.setflags(write=False)
    _, y_checked = check_data((X, y), "training_data", 6, 3, np.dtype(np.float64))
    assert y_checked.flags.writeable


def test_training_does_not_modify_inputs(data):
    X, y = data
    X0, y0 = X.copy(), y.copy()
    train_on(X, y)
    assert np.array_equal(X, X0) and np.array_equal(y, y0)


def non_contiguous_inputs():
    X, y = synthetic(n=2 * N)
    fortran = np.asfortranarray(X[:N])
    yield "fortran", fortran[:, ::1], y[:N]
    yield "strided rows", X[::2], y[::2]
    yield "strided float32", X.astype(np.float32)[1::2], y[1::2]
    wide = np.random.default_rng(2).random((N, 12))
    yield "strided columns", wide[:, ::2], y[:N]


@pytest.mark.parametrize(
    ("X", "y"),
    [case[1:] for case in non_contiguous_inputs()],
    ids=[case[0] for case in non_contiguous_inputs()],
)
def test_non_contiguous_inputs_match_contiguous_copy(X, y):
    assert not X.flags.c_contiguous
    Xc = np.ascontiguousarray(X)
    assert train_on(X, y).params.tobytes() == train_on(Xc, y).params.tobytes()
    net = Network(SIZES, seed=0)
    assert net.feedforward(X).tobytes() == net.feedforward(Xc).tobytes()
    assert net.total_cost((X, y), 0.5) == net.total_cost((Xc, y), 0.5)


@pytest.mark.parametrize(
    "sizes,mini_batch",
    [(SIZES, 7), ([200, 30, 10], 10), ([200, 30, 10], 40)],
    ids=["serial", "fused", "dense"],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_data_changed_in_place_between_calls_is_trained_on_as_it_is_now(
    request, sizes, mini_batch, dtype
):
    # The non-zero index is kept between calls on the same array: a call
    # after the array changed must train on the new values, and a call on
    # unchanged data must train as on a fresh copy.
    X, y = synthetic(n=90, sizes=sizes, seed=4)
    X[X < 0.6] = 0
    Xe, ye = synthetic(n=30, sizes=sizes, seed=5)
    kept, fresh = Network(sizes, seed=3, dtype=dtype), Network(sizes, seed=3, dtype=dtype)
    changes = [
        lambda X: None,  # unchanged: the kept index is reused
        lambda X: X.__setitem__((slice(None), 1), 0.25),  # zeros made non-zero
        lambda X: X.__setitem__(X > 0.9, 0.0),  # non-zeros made zero
        lambda X: X.__imul__(0.5),  # same zeros, other values
    ]
    for change in changes:
        change(X)
        histories = [
            net.train(
                (data, y),
                1,
                mini_batch,
                0.5,
                0.1,
                evaluation_data=(Xe, ye),
                monitor_evaluation_accuracy=True,
            )
            for net, data in ((kept, X), (fresh, X.copy()))
        ]
        assert kept.params.tobytes() == fresh.params.tobytes()
        assert histories[0].evaluation_accuracy == histories[1].evaluation_accuracy
    kernel = histories[0].header["kernel"]
    assert kernel == "dense" if "dense" in request.node.name else kernel != "dense"


@pytest.mark.parametrize("mini_batch", [7, 40])
def test_float64_and_read_only_data_train_as_converted_copies_without_a_copy_per_call(mini_batch):
    # Training keeps float64 or read-only data as it is (its kernels read the
    # non-zero index only), so a second call finds the kept index; the bits
    # are those of training on a float32, writeable copy.
    sizes = [200, 30, 10]
    X, y = synthetic(n=90, sizes=sizes, seed=6)
    X[X < 0.6] = 0
    X[0, :3] = [1e-50, 1 / 3, 3e-39]  # rounds to zero, rounds, subnormal
    read_only = X.astype(np.float32)
    read_only.flags.writeable = False
    cases = {"float64": X, "read-only": read_only}
    for name, data in cases.items():
        kept = Network(sizes, seed=2, dtype="float32")
        converted = Network(sizes, seed=2, dtype="float32")
        before = index_cache_info()["hits"]
        for _ in range(2):
            histories = [
                net.train((d, y), 1, mini_batch, 0.5, 0.1, monitor_training_accuracy=True)
                for net, d in ((kept, data), (converted, X.astype(np.float32)))
            ]
            assert kept.params.tobytes() == converted.params.tobytes(), name
            assert histories[0].training_accuracy == histories[1].training_accuracy
        assert index_cache_info()["hits"] > before, name  # no conversion or copy per call


def test_float64_data_that_overflows_float32_is_refused():
    X, y = synthetic()
    X[3, 1] = 1e39
    message = "training_data: X contains NaN or infinite values, or values beyond float32's"
    with pytest.raises(ValueError, match=message):
        Network(SIZES, seed=0, dtype="float32").train((X, y), 1, 5, 0.1)


def test_data_that_turned_non_finite_is_refused_on_the_next_call(data):
    X, y = data[0].copy(), data[1]
    net = Network(SIZES, seed=0)
    net.train((X, y), 1, 5, 0.1)
    X[4, 2] = np.nan
    with pytest.raises(ValueError, match="training_data"):
        net.train((X, y), 1, 5, 0.1)


# ------------------------------------------------------------ divergence


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # no-JIT runs
def test_divergence_in_first_epoch_keeps_last_good_params(tmp_path, data):
    net = Network(SIZES, activation="relu", seed=1)
    net.train(data, 1, 10, 0.5)
    snapshot = net.params.copy()
    records = []
    metrics = tmp_path / "m.jsonl"
    # eta*lmbda/n = 2e28: each of the 50 steps multiplies the weights by about
    # -2e28, which overflows float64 within the epoch.
    with pytest.raises(DivergenceError) as info:
        net.train(data, 3, 1, 1e30, 1.0, metrics=metrics, callback=records.append)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert err.epoch == 1
    assert isinstance(err.history, fastnet.History) and len(err.history) == 0
    assert "smaller eta" in str(err)
    assert np.isfinite(net.params).all()
    assert net.params.tobytes() == snapshot.tobytes()
    assert records == []
    history = fastnet.History.from_jsonl(metrics)
    assert len(history) == 0 and history.header["config"]["eta"] == 1e30


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # no-JIT runs
def test_divergence_in_a_later_epoch_keeps_previous_epoch():
    """decay = 1 - eta*lmbda/n = -1000 per epoch: float32 overflows after a
    dozen epochs, not in the first."""
    X, y = synthetic()
    net = Network(SIZES, seed=1, dtype="float32")
    snapshots = {}
    with pytest.raises(DivergenceError) as info:
        net.train(
            (X, y),
            100,
            N,
            1.0,
            1001.0 * N,
            callback=lambda rec: snapshots.__setitem__(rec["epoch"], net.params.copy()),
            monitor_training_accuracy=True,
        )
    err = info.value
    assert 1 < err.epoch < 100
    assert len(err.history) == err.epoch - 1
    assert [r["epoch"] for r in err.history.records] == list(range(1, err.epoch))
    assert sorted(snapshots) == list(range(1, err.epoch))
    assert np.isfinite(net.params).all()
    assert net.params.tobytes() == snapshots[err.epoch - 1].tobytes()
    assert f"epoch {err.epoch}" in str(err) and "smaller eta" in str(err)


# --------------------------------------------------------------- history


MONITORS = ["training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy"]


@pytest.mark.parametrize("monitor", MONITORS)
def test_monitors_record_only_what_is_switched_on(data, monitor):
    X, y = data
    Xe, ye = synthetic(n=30, seed=9)
    net = Network(SIZES, seed=0)
    history = net.train(
        (X, y), 3, 10, 0.5, 0.1, evaluation_data=(Xe, ye), **{f"monitor_{monitor}": True}
    )
    assert len(history) == 3
    assert [r["epoch"] for r in history.records] == [1, 2, 3]
    assert all(r["seconds"] >= 0 for r in history.records)
    for name in MONITORS:
        series = getattr(history, name)
        assert len(series) == (3 if name == monitor else 0), name
    values = getattr(history, monitor)
    if monitor.endswith("accuracy"):
        assert all(0 <= v <= 1 for v in values)
    else:
        assert all(np.isfinite(v) and v > 0 for v in values)
    # The last recorded value is what the network now gives.
    data_for = (X, y) if monitor.startswith("training") else (Xe, ye)
    if monitor.endswith("accuracy"):
        assert values[-1] == net.accuracy(data_for)
    else:
        assert values[-1] == pytest.approx(net.total_cost(data_for, 0.1), rel=1e-12)


def test_all_monitors_and_callback(data):
    seen = []
    net = Network(SIZES, seed=0)
    history = net.train(
        data,
        2,
        10,
        0.5,
        evaluation_data=data,
        monitor_evaluation_cost=True,
        monitor_evaluation_accuracy=True,
        monitor_training_cost=True,
        monitor_training_accuracy=True,
        callback=seen.append,
    )
    assert seen == history.records
    # Same data for training and evaluation: the same numbers.
    assert history.training_accuracy == history.evaluation_accuracy
    assert history.training_cost == history.evaluation_cost
    assert history.header["config"]["n_evaluation"] == N


def test_no_monitors_by_default(data):
    history = Network(SIZES, seed=0).train(data, 2, 10, 0.5)
    assert [set(r) for r in history.records] == [{"epoch", "seconds"}] * 2


# --------------------------------------------------------------- threads


needs_two_threads = pytest.mark.skipif(max_threads() < 2, reason="needs 2 Numba threads")


def trained_bits(X, y, sizes, n_threads, mini_batch, dtype="float64"):
    net = Network(sizes, seed=13, n_threads=n_threads, dtype=dtype)
    history = net.train((X, y), 2, mini_batch, 0.3, 0.5)
    assert history.header["n_threads"] == n_threads
    return net.params.tobytes(), history.header["kernel"]


@needs_two_threads
@pytest.mark.needs_jit
@pytest.mark.parametrize(
    "mini_batch,driver_one,driver_two",
    [(10, "serial", "parallel"), (200, "dense", "dense")],
)
def test_thread_count_gives_identical_bits_on_book_sized_net(mini_batch, driver_one, driver_two):
    sizes = [784, 30, 10]
    X, y = synthetic(n=400, sizes=sizes, seed=3)
    one, kernel_one = trained_bits(X, y, sizes, 1, mini_batch)
    two, kernel_two = trained_bits(X, y, sizes, 2, mini_batch)
    # The drivers are really exercised: the fused step split between threads
    # (10), and the dense driver's input split (200) on one thread and on two.
    assert (kernel_one, kernel_two) == (driver_one, driver_two)
    assert one == two


@needs_two_threads
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mini_batch", [1, 4, 10, GRAD_CHUNK])
def test_serial_and_parallel_kernels_give_identical_bits(monkeypatch, data, dtype, mini_batch):
    X, y = data
    # (Mini-batches this small on these layers never take the dense driver.)
    monkeypatch.setattr(network_module, "use_parallel", lambda m, n_weights: True)
    parallel, kernel = trained_bits(X, y, SIZES, 2, mini_batch, dtype)
    assert kernel == "parallel"
    one, kernel = trained_bits(X, y, SIZES, 1, mini_batch, dtype)
    assert kernel == "serial"  # one thread never uses the parallel kernel
    monkeypatch.setattr(network_module, "use_parallel", lambda m, n_weights: False)
    serial, kernel = trained_bits(X, y, SIZES, 2, mini_batch, dtype)
    assert kernel == "serial"
    assert parallel == serial == one


@pytest.mark.parametrize("n_threads", sorted({1, max_threads()}))
def test_progress_bar_does_not_change_the_bits(monkeypatch, capsys, n_threads):
    # On a terminal the bar splits each epoch into calls of the kernel; the
    # bits must be those of one call per epoch (the fused step's decay scale
    # is folded only where it would be anyway).
    pytest.importorskip("tqdm")
    sizes = [784, 30, 10]
    X, y = synthetic(n=3000, sizes=sizes, seed=5)
    bits = []
    for bar in (False, True):
        monkeypatch.setattr(network_module, "_progress_bar_wanted", lambda progress, bar=bar: bar)
        net = Network(sizes, seed=3, n_threads=n_threads)
        net.train((X, y), 2, 2, 0.5, 5.0, progress=True)
        bits.append(net.params.tobytes())
    # 1,500 mini-batches of 2: the bar's slices really split the epoch.
    assert 1500 > network_module.ALPHA_FOLD_EVERY
    assert bits[0] == bits[1]


def test_driver_choice_follows_the_measured_crossovers():
    # n_weights of [784, 30, 10], [784, 100, 10] and [784, 256, 128, 10].
    book, wide, big = 23_820, 79_400, 234_752
    assert not use_dense(10, book) and not use_dense(GRAD_CHUNK, wide)
    assert use_dense(GRAD_CHUNK + 1, book) and use_dense(100, book)
    # Wide layers take BLAS from small mini-batches on, single samples never.
    assert use_dense(10, big) and use_dense(6, big)
    assert not use_dense(5, big) and not use_dense(1, 10 * big)
    # The fused step runs in parallel from 2 samples on the book's layers.
    assert use_parallel(2, book) and use_parallel(10, book)
    assert not use_parallel(1, big) and not use_parallel(GRAD_CHUNK + 1, book)


def test_set_num_threads_sets_the_default(data, default_threads):
    fastnet.set_num_threads(1)
    net = Network(SIZES, seed=0)
    assert net.train(data, 1, 10, 0.5).header["n_threads"] == 1
    # An explicit count wins over the default.
    explicit = Network(SIZES, seed=0, n_threads=max_threads())
    assert explicit.train(data, 1, 10, 0.5).header["n_threads"] == max_threads()
    fastnet.set_num_threads(None)
    assert net.train(data, 1, 10, 0.5).header["n_threads"] == max_threads()


@pytest.mark.parametrize(
    ("n", "exc"), [(0, ValueError), (-1, ValueError), (10_000, ValueError), (1.5, TypeError)]
)
def test_invalid_thread_counts(n, exc, default_threads):
    with pytest.raises(exc, match="n_threads"):
        fastnet.set_num_threads(n)
    with pytest.raises(exc, match="n_threads"):
        Network(SIZES, n_threads=n)


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
def test_copies_keep_weights_as_views_of_params(copier):
    import copy
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 6)), rng.integers(0, 3, 40)
    net = Network([6, 5, 3], seed=1)
    net.train((X, y), 1, 5, 0.5)
    twin = pickle.loads(pickle.dumps(net)) if copier == "pickle" else copy.deepcopy(net)
    assert twin.params.tobytes() == net.params.tobytes()
    assert not np.shares_memory(twin.params, net.params)
    for w, b in zip(twin.weights, twin.biases, strict=True):
        assert np.shares_memory(w, twin.params) and np.shares_memory(b, twin.params)
    # Training both from here gives the same bits: generator state came along.
    net.train((X, y), 2, 5, 0.5)
    twin.train((X, y), 2, 5, 0.5)
    assert twin.params.tobytes() == net.params.tobytes()
    np.testing.assert_array_equal(twin.weights[0], net.weights[0])


def test_notice_if_slow_speaks_only_when_the_body_outlasts_the_delay(caplog):
    caplog.set_level(logging.INFO, logger="fastnet.network")
    with network_module.notice_if_slow("quick", after=60.0):
        pass
    spoken = threading.Event()

    class Flag(logging.Handler):
        def emit(self, record):
            spoken.set()

    # On the root logger after caplog's handler: once it fires, caplog has
    # the record too.
    flag = Flag()
    logging.getLogger().addHandler(flag)
    try:
        with network_module.notice_if_slow("compiling...", after=0.0):
            # The body lasts until the notice is out: no timing assumption.
            assert spoken.wait(30)
    finally:
        logging.getLogger().removeHandler(flag)
    messages = [r.getMessage() for r in caplog.records if r.name == "fastnet.network"]
    assert messages[0] == "compiling..."
    assert messages[1].startswith("... done in ")
    assert len(messages) == 2


def test_train_announces_its_kernel_compile(data, notices):
    Network(SIZES, dtype="float32", seed=0).train(data, 1, 10, 0.1, 5.0)
    assert len(notices) == 1 and "compiling" in notices[0] and "float32" in notices[0]


def test_first_evaluation_of_its_kind_announces_a_compile(data, notices):
    net = Network(SIZES, dtype="float32", seed=0)
    first = net.accuracy(data)
    assert net.accuracy(data) == first
    assert len(notices) == 1 and "evaluation" in notices[0] and "float32" in notices[0]
    Network(SIZES, dtype="float64", seed=0).accuracy(data)
    assert len(notices) == 2 and "float64" in notices[1]
