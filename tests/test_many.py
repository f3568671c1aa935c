"""train_many: K networks in one kernel call per epoch, each bitwise equal to
training it alone."""

from __future__ import annotations

import numpy as np
import pytest

import fastnet
from fastnet.many import train_many

CONFIGS = [
    dict(sizes=[20, 8, 4], seed=1),
    dict(sizes=[20, 8, 4], seed=1, init="large"),
    dict(sizes=[20, 13, 6, 4], seed=2, activation="tanh", cost="log_likelihood"),
    dict(sizes=[20, 5, 4], seed=3, activation="relu", cost="quadratic"),
    dict(sizes=[20, 8, 4], seed=4, init="zeros"),
]


def data(seed=0, n=230):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 20))
    X[X < 0.6] = 0
    return X, rng.integers(0, 4, n)


@pytest.mark.filterwarnings("ignore::fastnet.SymmetryWarning")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_network_gets_the_bits_it_gets_alone(dtype):
    X, y = data()
    Xe, ye = data(1, 50)
    # Mini-batches: one-chunk (fused) and multi-chunk paths, and one > n.
    mbs = [10, 7, 40, 1, 500]
    etas = [0.5, 0.1, 0.3, 0.2, 0.5]
    kw = dict(
        evaluation_data=(Xe, ye), monitor_evaluation_accuracy=True, monitor_training_cost=True
    )
    alone = []
    for cfg, m, e in zip(CONFIGS, mbs, etas, strict=True):
        net = fastnet.Network(dtype=dtype, **cfg)
        h = net.train((X, y), 3, m, e, 2.0, **kw)
        alone.append((net.params.tobytes(), h))
    nets = [fastnet.Network(dtype=dtype, **cfg) for cfg in CONFIGS]
    histories = train_many(nets, (X, y), 3, mbs, etas, 2.0, **kw)
    for net, h, (params, h_alone) in zip(nets, histories, alone, strict=True):
        assert net.params.tobytes() == params
        for r, r_alone in zip(h.records, h_alone.records, strict=True):
            r, r_alone = dict(r), dict(r_alone)
            r.pop("seconds"), r_alone.pop("seconds")
            assert r == r_alone


def test_float64_data_trains_float32_networks_as_a_converted_copy_and_keeps_its_index():
    # The data is kept as it is (its index holds each entry in float32), so
    # a second call finds the kept index; the bits are those of a copy.
    X, y = data(2)
    X[X > 0] += 1e-12  # not float32 values
    Xe, ye = data(3, 40)
    kw = dict(
        evaluation_data=(Xe, ye), monitor_evaluation_cost=True, monitor_training_accuracy=True
    )
    results = []
    for d, de in (((X, y), (Xe, ye)), ((X.astype(np.float32), y), (Xe.astype(np.float32), ye))):
        nets = [fastnet.Network([20, 8, 4], seed=s, dtype="float32") for s in range(3)]
        before = fastnet.workspace.index_cache_info()["hits"]
        runs = [train_many(nets, d, 1, 10, 0.5, 1.0, **{**kw, "evaluation_data": de}) for _ in "ab"]
        assert fastnet.workspace.index_cache_info()["hits"] > before
        records = [dict(r, seconds=0) for hs in runs for h in hs for r in h.records]
        results.append(([net.params.tobytes() for net in nets], records))
    assert results[0] == results[1]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # no-JIT runs
def test_float64_data_beyond_float32_is_refused_naming_the_argument():
    X, y = data()
    nets = [fastnet.Network([20, 8, 4], seed=s, dtype="float32") for s in range(2)]
    bad = X.copy()
    bad[5, 2] = 1e39
    with pytest.raises(ValueError, match="training_data: X contains NaN or infinite values, or"):
        train_many(nets, (bad, y), 1, 10, 0.5)
    with pytest.raises(ValueError, match="evaluation_data: X contains NaN or infinite values, or"):
        train_many(nets, (X, y), 1, 10, 0.5, evaluation_data=(bad, y))


def test_thread_count_does_not_change_the_bits():
    X, y = data()
    results = []
    for n_threads in (1, fastnet.threads.max_threads()):
        nets = [fastnet.Network([20, 8, 4], seed=s) for s in range(3)]
        train_many(nets, (X, y), 2, 10, 0.5, n_threads=n_threads)
        results.append([net.params.tobytes() for net in nets])
    assert results[0] == results[1]


def test_bad_arguments_are_named():
    X, y = data()
    a = fastnet.Network([20, 8, 4])
    with pytest.raises(TypeError, match="nets"):
        train_many([], (X, y), 1, 10, 0.1)
    with pytest.raises(ValueError, match="float32"):
        train_many([a, fastnet.Network([20, 8, 4], dtype="float32")], (X, y), 1, 10, 0.1)
    with pytest.raises(ValueError, match="nets\\[1\\]"):
        train_many([a, fastnet.Network([20, 8, 5])], (X, y), 1, 10, 0.1)
    with pytest.raises(ValueError, match="eta must be one value or one per network"):
        train_many([a, a], (X, y), 1, 10, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="eta"):
        train_many([a], (X, y), 1, 10, -1.0)


def test_train_many_announces_its_kernel_compile(notices):
    X, y = data()
    train_many([fastnet.Network([20, 8, 4], seed=s) for s in range(2)], (X, y), 2, 10, 0.5)
    (message,) = notices
    assert "compiling" in message and "many-networks" in message and "float64" in message
