"""Tests for fastnet.io: the .npz format (atomic, no pickle) and network2 JSON import."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastnet
from fastnet import Network, SymmetryWarning

SIZES = [6, 5, 3]


def synthetic(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, SIZES[0])), rng.integers(0, SIZES[-1], n)


def trained(dtype="float64", cost="cross_entropy", activation="sigmoid"):
    net = Network(SIZES, seed=3, dtype=dtype, cost=cost, activation=activation)
    net.train(synthetic(), 1, 10, 0.5, 0.1)
    return net


@pytest.fixture
def saved(tmp_path):
    net = trained()
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path


def message_names(excinfo, path):
    assert str(path) in str(excinfo.value), str(excinfo.value)


# --------------------------------------------------------------- .npz


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("cost", ["cross_entropy", "quadratic", "log_likelihood"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_npz_round_trip(tmp_path, dtype, cost, activation):
    net = trained(dtype, cost, activation)
    path = tmp_path / "m.npz"
    assert net.save(path) == path
    loaded = fastnet.load(path)
    assert isinstance(loaded, Network)
    assert loaded.sizes == net.sizes
    assert loaded.cost == cost and loaded.activation == activation
    assert loaded.params.dtype == np.dtype(dtype)
    assert loaded.params.tobytes() == net.params.tobytes()
    for w, b in zip(loaded.weights, loaded.biases, strict=True):
        assert np.shares_memory(w, loaded.params) and np.shares_memory(b, loaded.params)
    X, y = synthetic(seed=1)
    assert loaded.feedforward(X).tobytes() == net.feedforward(X).tobytes()
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert loaded.total_cost((X, y), 0.1) == net.total_cost((X, y), 0.1)


def test_npz_loads_without_pickle(saved):
    net, path = saved
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) >= {"sizes", "cost", "activation", "params"}
        assert list(z["sizes"]) == list(SIZES)
        assert str(z["cost"]) == "cross_entropy"
        assert z["params"].tobytes() == net.params.tobytes()


# The SymmetryWarning is the bug of test_training_a_loaded_network_does_not_warn.
@pytest.mark.filterwarnings("ignore::fastnet.SymmetryWarning")
def test_load_accepts_str_path_and_thread_count(saved):
    _, path = saved
    loaded = fastnet.load(str(path), n_threads=1)
    assert loaded.n_threads == 1
    assert loaded.train(synthetic(), 1, 10, 0.5).header["n_threads"] == 1


def test_saved_file_has_ordinary_permissions(saved):
    _, path = saved
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    trained().save(path)
    old = path.read_bytes()
    other = Network(SIZES, seed=99)

    def failing_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_save_overwrites(tmp_path):
    path = tmp_path / "model.npz"
    trained().save(path)
    other = Network(SIZES, seed=99, dtype="float32")
    other.save(path)
    assert fastnet.load(path).params.tobytes() == other.params.tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def rewrite_npz(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        fields = {k: z[k] for k in z.files}
    for key, value in changes.items():
        if value is None:
            del fields[key]
        else:
            fields[key] = value
    np.savez(dst, **fields)
    return dst


def test_truncated_npz(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as info:
        fastnet.load(bad)
    message_names(info, bad)


@pytest.mark.parametrize("size", [0, 1, 1000])
def test_random_bytes(tmp_path, size):
    bad = tmp_path / "random.npz"
    bad.write_bytes(np.random.default_rng(size).bytes(size))
    with pytest.raises(ValueError) as info:
        fastnet.load(bad)
    message_names(info, bad)


@pytest.mark.parametrize("key", ["format", "sizes", "cost", "activation", "params"])
def test_npz_missing_key(saved, tmp_path, key):
    _, path = saved
    bad = rewrite_npz(path, tmp_path / "missing.npz", **{key: None})
    with pytest.raises(ValueError, match=key) as info:
        fastnet.load(bad)
    message_names(info, bad)


def test_npz_of_something_else(tmp_path):
    bad = tmp_path / "other.npz"
    np.savez(bad, a=np.arange(3))
    with pytest.raises(ValueError, match="not a fastnet model") as info:
        fastnet.load(bad)
    message_names(info, bad)


def test_npz_params_size_mismatch(saved, tmp_path):
    net, path = saved
    bad = rewrite_npz(path, tmp_path / "short.npz", params=net.params[:-1])
    with pytest.raises(ValueError, match="params") as info:
        fastnet.load(bad)
    message_names(info, bad)


def test_npz_object_array_is_refused(saved, tmp_path):
    _, path = saved
    bad = rewrite_npz(path, tmp_path / "pickled.npz", params=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError) as info:
        fastnet.load(bad)
    message_names(info, bad)


def test_npz_from_newer_format(saved, tmp_path):
    _, path = saved
    bad = rewrite_npz(path, tmp_path / "future.npz", format_version=np.array(99))
    with pytest.raises(ValueError, match="newer") as info:
        fastnet.load(bad)
    message_names(info, bad)


@pytest.mark.parametrize(
    "change",
    [
        {"cost": np.array("nope")},
        {"activation": np.array("nope")},
        {"sizes": np.array([6])},
        {"params": np.zeros(53, np.int32)},
    ],
    ids=["cost", "activation", "sizes", "dtype"],
)
def test_npz_bad_field_names_the_file(saved, tmp_path, change):
    _, path = saved
    bad = rewrite_npz(path, tmp_path / "bad_field.npz", **change)
    with pytest.raises(ValueError) as info:
        fastnet.load(bad)
    message_names(info, bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastnet.load(tmp_path / "nope.npz")


def test_training_a_loaded_network_does_not_warn(saved):
    _, path = saved
    loaded = fastnet.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SymmetryWarning)
        loaded.train(synthetic(), 1, 10, 0.5)


# ------------------------------------------------------- network2 JSON


def network2_save(path, sizes, weights, biases, cost="CrossEntropyCost"):
    """Exactly what network2.Network.save writes."""
    data = {
        "sizes": sizes,
        "weights": [w.tolist() for w in weights],
        "biases": [b.tolist() for b in biases],
        "cost": cost,
    }
    with open(path, "w") as f:
        json.dump(data, f)
    return Path(path)


def network2_params(sizes, seed=0):
    """network2's default_weight_initializer: column-vector biases."""
    rng = np.random.default_rng(seed)
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    weights = [
        rng.standard_normal((y, x)) / np.sqrt(x) for x, y in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    return weights, biases


def network2_feedforward(weights, biases, a):
    """network2's feedforward for one column-vector input."""
    for b, w in zip(biases, weights, strict=True):
        a = 1.0 / (1.0 + np.exp(-(np.dot(w, a) + b)))
    return a


@pytest.mark.parametrize("sizes", [[6, 5, 3], [6, 5, 4, 3], [784, 30, 10]])
def test_network2_json_import(tmp_path, sizes):
    weights, biases = network2_params(sizes)
    path = network2_save(tmp_path / "net.json", sizes, weights, biases)
    net = fastnet.load(path)
    assert net.sizes == tuple(sizes)
    assert net.cost == "cross_entropy"
    assert net.activation == "sigmoid"
    assert net.params.dtype == np.float64
    for layer in range(len(sizes) - 1):
        assert np.array_equal(net.weights[layer], weights[layer])
        assert np.array_equal(net.biases[layer], biases[layer][:, 0])
    X = np.random.default_rng(1).random((7, sizes[0]))
    expected = np.stack([network2_feedforward(weights, biases, x[:, None])[:, 0] for x in X])
    np.testing.assert_allclose(net.feedforward(X), expected, rtol=1e-12, atol=1e-15)
    assert np.array_equal(net.predict(X), expected.argmax(axis=1))


def test_network2_quadratic_cost(tmp_path):
    weights, biases = network2_params(SIZES)
    path = network2_save(tmp_path / "q.json", SIZES, weights, biases, "QuadraticCost")
    assert fastnet.load(path).cost == "quadratic"


def test_network2_json_then_npz(tmp_path):
    weights, biases = network2_params(SIZES)
    net = fastnet.load(network2_save(tmp_path / "n.json", SIZES, weights, biases))
    net.save(tmp_path / "n.npz")
    assert fastnet.load(tmp_path / "n.npz").params.tobytes() == net.params.tobytes()


def test_network2_unknown_cost(tmp_path):
    weights, biases = network2_params(SIZES)
    path = network2_save(tmp_path / "c.json", SIZES, weights, biases, "LogLikelihoodCost")
    with pytest.raises(ValueError, match="LogLikelihoodCost") as info:
        fastnet.load(path)
    message_names(info, path)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda w, b: (w, b, [6, 4, 3]),  # sizes disagree with the matrices
        lambda w, b: ([w[0].T, w[1]], b, SIZES),  # transposed weights
        lambda w, b: (w, [b[0][:-1], b[1]], SIZES),  # a bias too few
        lambda w, b: (w[:1], b[:1], SIZES),  # a layer missing
        lambda w, b: (w, b, [6, 5, 3, 2]),  # a layer too many in sizes
    ],
    ids=["sizes", "transposed", "bias", "missing-layer", "extra-size"],
)
def test_network2_mismatched_shapes(tmp_path, mangle):
    weights, biases, sizes = mangle(*network2_params(SIZES))
    path = network2_save(tmp_path / "bad.json", sizes, weights, biases)
    with pytest.raises(ValueError) as info:
        fastnet.load(path)
    message_names(info, path)


@pytest.mark.parametrize(
    "text",
    [
        '{"sizes": [6, 5, 3]}',
        "[1, 2, 3]",
        '{"sizes": [6, 5, 3], "weights": [[[1, 2], [3]]], "biases": []}',
        "{",
    ],
    ids=["no-weights", "a-list", "ragged", "broken-json"],
)
def test_not_a_network2_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        fastnet.load(path)
    message_names(info, path)
