"""Tests for fastnet.init: in-place fills, seeding, statistics, the book's arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnet import init
from fastnet.init import (
    INITIALIZERS,
    Initializer,
    calculate_gain,
    fan_in_fan_out,
    get_initializer,
    initialize_layer_,
    register_initializer,
)

DTYPES = [np.float32, np.float64]
NAMES = list(INITIALIZERS)
BUILTINS = (
    "large default small uniform zeros constant xavier_normal xavier_uniform "
    "he_normal he_uniform lecun_normal lecun_uniform orthogonal"
).split()
RANDOM_NAMES = [n for n in NAMES if not INITIALIZERS[n].symmetric]
SENTINEL = 7.0
SHAPE = (1000, 784)  # (n_out, n_in): fan_in = 784, fan_out = 1000
# QR of a (1000, 784) matrix can take seconds when OpenBLAS threads compete for
# busy cores; a smaller tall matrix keeps the orthogonal statistics fast.
ORTHO_SHAPE = (256, 128)


@pytest.fixture
def registry():
    """Restore INITIALIZERS after a test that registers schemes."""
    saved = dict(INITIALIZERS)
    yield INITIALIZERS
    INITIALIZERS.clear()
    INITIALIZERS.update(saved)


def fill(name, array, seed=0, **options):
    fan_in, fan_out = fan_in_fan_out(array.shape) if array.ndim == 2 else (784, array.shape[0])
    rng = np.random.default_rng(seed)
    return INITIALIZERS[name].fill_(array, rng, fan_in, fan_out, **options)


def expected_std(name, fan_in, fan_out, **options):
    """The std the docstrings promise for the entries of a (fan_out, fan_in) matrix."""
    gain = options.get("gain", 1.0)
    return {
        "large": 1.0,
        "default": 1.0 / math.sqrt(fan_in),
        "small": options.get("eps", 0.01),
        "uniform": 1.0 / math.sqrt(3.0 * fan_in),
        "zeros": 0.0,
        "constant": 0.0,
        "xavier_normal": gain * math.sqrt(2.0 / (fan_in + fan_out)),
        "xavier_uniform": gain * math.sqrt(2.0 / (fan_in + fan_out)),
        "he_normal": math.sqrt(2.0 / fan_in),
        "he_uniform": math.sqrt(2.0 / fan_in),
        "lecun_normal": 1.0 / math.sqrt(fan_in),
        "lecun_uniform": 1.0 / math.sqrt(fan_in),
        "orthogonal": gain / math.sqrt(max(fan_in, fan_out)),
    }[name]


UNIFORM_BOUNDS = {
    "uniform": lambda fi, fo: 1.0 / math.sqrt(fi),
    "xavier_uniform": lambda fi, fo: math.sqrt(6.0 / (fi + fo)),
    "he_uniform": lambda fi, fo: math.sqrt(6.0 / fi),
    "lecun_uniform": lambda fi, fo: math.sqrt(3.0 / fi),
}


# ----------------------------------------------------------------------- registry


def test_registry_has_the_builtins():
    assert set(BUILTINS) <= set(INITIALIZERS)
    for name in BUILTINS:
        entry = INITIALIZERS[name]
        assert isinstance(entry, Initializer)
        assert entry.name == name
        assert entry.bias in INITIALIZERS
        assert entry.doc and entry.citation
        assert entry.fill_.__name__ == name + "_"
        assert entry.fill_.__doc__ and "Citation" in entry.fill_.__doc__
    assert {n for n in BUILTINS if INITIALIZERS[n].symmetric} == {"zeros", "constant"}


def test_bias_defaults():
    expected = {"large": "large", "default": "large", "small": "small", "uniform": "uniform"}
    expected |= {"zeros": "zeros", "constant": "constant"}
    for name in BUILTINS:
        assert INITIALIZERS[name].bias == expected.get(name, "zeros"), name


def test_initializer_is_frozen_and_callable():
    entry = get_initializer("default")
    with pytest.raises(AttributeError):
        entry.bias = "zeros"
    w = np.empty((3, 4))
    assert entry(w, np.random.default_rng(0), 4, 3) is w


# ------------------------------------------------------------------------ in place


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_fills_a_view_in_place(name, dtype):
    buffer = np.full(10 + 30 * 20 + 30 + 10, SENTINEL, dtype=dtype)
    w = buffer[10 : 10 + 600].reshape(30, 20)
    b = buffer[610:640]
    out_w, out_b = initialize_layer_(w, b, np.random.default_rng(1), name)
    assert out_w is w and out_b is b
    assert np.shares_memory(w, buffer) and np.shares_memory(b, buffer)
    assert np.all(buffer[:10] == SENTINEL) and np.all(buffer[640:] == SENTINEL)
    assert np.all(w != SENTINEL) and np.all(b != SENTINEL)
    # the direct fill returns the very same object too
    assert fill(name, w) is w
    assert np.all(buffer[:10] == SENTINEL) and np.all(buffer[640:] == SENTINEL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "orthogonal"])
def test_fills_1d_bias_views_in_place(name, dtype):
    buffer = np.full(50, SENTINEL, dtype=dtype)
    b = buffer[10:40]
    assert fill(name, b) is b
    assert np.all(buffer[:10] == SENTINEL) and np.all(buffer[40:] == SENTINEL)
    assert np.all(b != SENTINEL)


def test_orthogonal_refuses_1d():
    with pytest.raises(ValueError, match="2-D"):
        fill("orthogonal", np.empty(30))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_values_do_not_depend_on_memory_layout(name, dtype):
    contiguous = fill(name, np.empty((30, 20), dtype=dtype), seed=3)
    fortran = fill(name, np.empty((30, 20), dtype=dtype, order="F"), seed=3)
    big = np.full((60, 40), SENTINEL, dtype=dtype)
    strided = big[::2, ::2]
    fill(name, strided, seed=3)
    np.testing.assert_array_equal(fortran, contiguous)
    np.testing.assert_array_equal(strided, contiguous)
    assert np.all(big[1::2, :] == SENTINEL) and np.all(big[:, 1::2] == SENTINEL)


@pytest.mark.parametrize("name", NAMES)
def test_float32_is_the_float64_draw_rounded(name):
    w64 = fill(name, np.empty((30, 20)), seed=4)
    w32 = fill(name, np.empty((30, 20), dtype=np.float32), seed=4)
    np.testing.assert_array_equal(w32, w64.astype(np.float32))


# ------------------------------------------------------------------------- seeding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bits(name, dtype):
    a = fill(name, np.empty((30, 20), dtype=dtype), seed=12345)
    b = fill(name, np.empty((30, 20), dtype=dtype), seed=12345)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_different_seeds_differ(name, dtype):
    a = fill(name, np.empty((30, 20), dtype=dtype), seed=1)
    b = fill(name, np.empty((30, 20), dtype=dtype), seed=2)
    assert not np.array_equal(a, b)
    assert np.unique(a).size == a.size  # every unit different: symmetry broken


def test_layer_draw_order_is_weights_then_biases():
    w, b = np.empty((30, 20)), np.empty(30)
    initialize_layer_(w, b, np.random.default_rng(5), "default")
    rng = np.random.default_rng(5)
    w_ref = rng.standard_normal((30, 20)) / math.sqrt(20)
    b_ref = rng.standard_normal(30)
    np.testing.assert_allclose(w, w_ref, rtol=1e-15)
    np.testing.assert_array_equal(b, b_ref)


# ---------------------------------------------------------------------- statistics


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BUILTINS)
def test_statistics(name, dtype):
    w = np.empty(ORTHO_SHAPE if name == "orthogonal" else SHAPE, dtype=dtype)
    fan_in, fan_out = fan_in_fan_out(w.shape)
    fill(name, w, seed=7)
    std = expected_std(name, fan_in, fan_out)
    mean = w.mean(dtype=np.float64)
    sample_std = w.std(dtype=np.float64)
    if INITIALIZERS[name].symmetric:
        assert np.all(w == 0.0)
        return
    assert abs(mean) < 5.0 * std / math.sqrt(w.size)
    assert sample_std == pytest.approx(std, rel=0.02)
    if name in UNIFORM_BOUNDS:
        bound = UNIFORM_BOUNDS[name](fan_in, fan_out)
        assert np.abs(w).max() <= w.dtype.type(bound)
        assert np.abs(w).max() > 0.99 * bound


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("name", "options", "std"),
    [
        ("small", {"eps": 0.1}, 0.1),
        ("xavier_normal", {"gain": 2.0}, 2.0 * math.sqrt(2.0 / 1784)),
        ("xavier_uniform", {"gain": 0.5}, 0.5 * math.sqrt(2.0 / 1784)),
        ("he_normal", {"nonlinearity": "sigmoid"}, 1.0 / math.sqrt(784)),
        ("he_normal", {"nonlinearity": "tanh", "mode": "fan_out"}, 5.0 / 3.0 / math.sqrt(1000)),
        ("he_uniform", {"nonlinearity": "leaky_relu", "a": 0.2}, math.sqrt(2.0 / 1.04 / 784)),
        ("orthogonal", {"gain": 3.0}, 3.0 / math.sqrt(256)),
    ],
)
def test_statistics_with_options(name, options, std, dtype):
    shape = ORTHO_SHAPE if name == "orthogonal" else SHAPE
    w = fill(name, np.empty(shape, dtype=dtype), seed=8, **options)
    assert w.std(dtype=np.float64) == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_is_exact(dtype):
    w = fill("constant", np.empty((30, 20), dtype=dtype), value=0.5)
    assert np.all(w == 0.5)
    w = fill("constant", np.empty((30, 20), dtype=dtype), value=0.1)
    assert np.all(w == dtype(0.1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(30, 784), (784, 30), (50, 50), (1, 10), (10, 1)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_is_orthogonal(shape, gain, dtype):
    w = fill("orthogonal", np.empty(shape, dtype=dtype), seed=9, gain=gain)
    tol = 1e-5 if dtype is np.float32 else 1e-10
    w64 = w.astype(np.float64)
    gram = w64 @ w64.T if shape[0] <= shape[1] else w64.T @ w64
    np.testing.assert_allclose(gram / gain**2, np.eye(min(shape)), rtol=0, atol=tol)


def test_orthogonal_is_haar_not_biased():
    # Without the sign correction, QR from LAPACK gives a biased diagonal.
    diag = np.array(
        [np.diagonal(fill("orthogonal", np.empty((4, 4)), seed=s)) for s in range(2000)]
    )
    assert np.abs(diag.mean(axis=0)).max() < 0.06  # E = 0, se = 0.5 / sqrt(2000) ~ 0.011


# ----------------------------------------------------------------- book arithmetic


@pytest.mark.parametrize(("name", "std"), [("large", math.sqrt(501)), ("default", math.sqrt(1.5))])
def test_book_weighted_input_spread(name, std):
    """1,000 inputs, half on: std(z) is sqrt(501) ~ 22.4 (large) or sqrt(3/2) ~ 1.22 (default)."""
    x = np.zeros(1000)
    x[:500] = 1.0
    rng = np.random.default_rng(2015)
    zs = []
    # 20,000 independent draws of one hidden neuron = 20 layers of 1,000 neurons.
    for _ in range(20):
        w, b = np.empty((1000, 1000)), np.empty(1000)
        initialize_layer_(w, b, rng, name)
        zs.append(w @ x + b)
    z = np.concatenate(zs)
    assert z.size == 20_000
    assert z.std() == pytest.approx(std, rel=0.03)


# ---------------------------------------------------------------------------- gains


def test_calculate_gain():
    assert calculate_gain("linear") == 1.0
    assert calculate_gain("sigmoid") == 1.0
    assert calculate_gain("tanh") == pytest.approx(5.0 / 3.0)
    assert calculate_gain("relu") == pytest.approx(math.sqrt(2.0))
    assert calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2.0 / (1.0 + 0.01**2)))
    assert calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2.0 / 1.04))
    assert calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2.0))


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="expected one of: linear, sigmoid, tanh, relu"):
        calculate_gain("softplus")
    with pytest.raises(ValueError, match="takes no param"):
        calculate_gain("relu", 0.1)
    with pytest.raises(TypeError):
        calculate_gain("leaky_relu", "0.1")


def test_fan_in_fan_out():
    assert fan_in_fan_out(SHAPE) == (784, 1000)
    assert fan_in_fan_out((30, 784)) == (784, 30)
    assert fan_in_fan_out(np.empty((10, 30)).shape) == (30, 10)
    for shape in [(30,), (2, 3, 4), ()]:
        with pytest.raises(ValueError, match="2-D"):
            fan_in_fan_out(shape)


# ------------------------------------------------------------------------ lookups


def test_get_initializer():
    assert get_initializer("xavier_normal") is INITIALIZERS["xavier_normal"]
    entry = INITIALIZERS["small"]
    assert get_initializer(entry) is entry
    with pytest.raises(TypeError, match="init"):
        get_initializer(3)


@pytest.mark.parametrize(
    ("bad", "suggestion"),
    [("xavier", "xavier_normal"), ("he", "he_normal"), ("defualt", "default"), ("Zeros", "zeros")],
)
def test_unknown_name_suggests(bad, suggestion):
    with pytest.raises(ValueError) as excinfo:
        get_initializer(bad)
    msg = str(excinfo.value)
    assert f"unknown initializer {bad!r} for init" in msg
    assert "expected one of: " + ", ".join(NAMES) in msg
    assert f"did you mean {suggestion!r}" in msg


def test_unknown_name_in_layer_names_the_argument():
    w, b = np.empty((3, 4)), np.empty(3)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="for weights"):
        initialize_layer_(w, b, rng, "xavier")
    with pytest.raises(ValueError, match="for biases.*did you mean 'zeros'"):
        initialize_layer_(w, b, rng, "default", biases="zero")


# ----------------------------------------------------------------------- layers


def test_initialize_layer_options_routing():
    rng = np.random.default_rng(0)
    w, b = np.empty((3, 4)), np.empty(3)
    initialize_layer_(w, b, rng, "constant", value=0.25)
    assert np.all(w == 0.25) and np.all(b == 0.25)
    initialize_layer_(w, b, rng, "xavier_normal", gain=2.0)  # zeros biases take no gain
    assert np.all(b == 0.0)
    initialize_layer_(w, b, rng, "he_normal", biases="constant", value=0.5, nonlinearity="tanh")
    assert np.all(b == 0.5)
    with pytest.raises(TypeError, match="unexpected option.*'gian'"):
        initialize_layer_(w, b, rng, "xavier_normal", gian=2.0)


def test_initialize_layer_shapes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="2-D"):
        initialize_layer_(np.empty(3), np.empty(3), rng)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        initialize_layer_(np.empty((3, 4)), np.empty(4), rng)


# ----------------------------------------------------------------------- register


def test_register_initializer_end_to_end(registry):
    def ramp_(array, rng, fan_in, fan_out, *, scale=1.0):
        """Deterministic ramp (test only)."""
        array[...] = scale * np.arange(array.size).reshape(array.shape) / array.size
        return array

    entry = register_initializer("ramp", ramp_, bias="ramp", citation="test")
    assert INITIALIZERS["ramp"] is entry and get_initializer("ramp") is entry
    assert entry.doc == "Deterministic ramp (test only)." and not entry.symmetric
    w, b = np.empty((3, 4)), np.empty(3)
    initialize_layer_(w, b, np.random.default_rng(0), "ramp", scale=2.0)
    np.testing.assert_allclose(w.ravel(), 2.0 * np.arange(12) / 12)
    np.testing.assert_allclose(b, 2.0 * np.arange(3) / 3)

    with pytest.raises(ValueError, match="already registered"):
        register_initializer("ramp", ramp_)
    with pytest.raises(ValueError, match="already registered"):
        register_initializer("default", ramp_)
    replaced = register_initializer("ramp", ramp_, bias="small", overwrite=True)
    assert INITIALIZERS["ramp"] is replaced and replaced.bias == "small"


def test_register_initializer_validation(registry):
    with pytest.raises(TypeError, match="callable"):
        register_initializer("nope", "not a function")
    with pytest.raises(ValueError, match="unknown initializer 'zero' for bias"):
        register_initializer("nope", init.zeros_, bias="zero")
    with pytest.raises(ValueError, match="non-empty"):
        register_initializer("", init.zeros_)
    with pytest.raises(ValueError, match="non-empty"):
        register_initializer("my init", init.zeros_)
    assert "nope" not in INITIALIZERS


def test_registry_fixture_restores(registry):
    register_initializer("temporary", init.zeros_)
    assert "temporary" in INITIALIZERS


def test_registry_was_restored():
    assert "temporary" not in INITIALIZERS and "ramp" not in INITIALIZERS


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad",
    [
        [[0.0, 0.0]],
        np.zeros((2, 3), dtype=np.int64),
        np.zeros((2, 3), dtype=np.float16),
        np.zeros((2, 3), dtype=np.complex128),
        np.zeros((2, 3), dtype=">f8"),
    ],
    ids=["list", "int64", "float16", "complex", "big-endian"],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_array_type_raises_type_error(name, bad):
    with pytest.raises(TypeError, match="array"):
        INITIALIZERS[name].fill_(bad, np.random.default_rng(0), 3, 2)


@pytest.mark.parametrize("name", NAMES)
def test_read_only_array_raises_type_error(name):
    a = np.zeros((2, 3))
    a.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        INITIALIZERS[name].fill_(a, np.random.default_rng(0), 3, 2)


@pytest.mark.parametrize("name", NAMES)
def test_bad_rng_and_fans(name):
    fill_ = INITIALIZERS[name].fill_
    a = np.zeros((2, 3))
    with pytest.raises(TypeError, match="Generator"):
        fill_(a, np.random.RandomState(0), 3, 2)
    with pytest.raises(TypeError, match="Generator"):
        fill_(a, 0, 3, 2)
    with pytest.raises(ValueError, match="fan_in must be >= 1"):
        fill_(a, np.random.default_rng(0), 0, 2)
    with pytest.raises(ValueError, match="fan_out must be >= 1"):
        fill_(a, np.random.default_rng(0), 3, -1)
    with pytest.raises(TypeError, match="fan_in"):
        fill_(a, np.random.default_rng(0), 3.0, 2)


def test_layer_names_the_bad_argument():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="^w must"):
        initialize_layer_(np.zeros((3, 4), dtype=np.int32), np.zeros(3), rng)
    with pytest.raises(TypeError, match="^b must"):
        initialize_layer_(np.zeros((3, 4)), [0.0, 0.0, 0.0], rng)


@pytest.mark.parametrize(
    ("name", "options", "error"),
    [
        ("small", {"eps": 0.0}, ValueError),
        ("small", {"eps": -1.0}, ValueError),
        ("small", {"eps": "0.1"}, TypeError),
        ("xavier_normal", {"gain": float("nan")}, ValueError),
        ("orthogonal", {"gain": 0.0}, ValueError),
        ("constant", {"value": float("inf")}, ValueError),
        ("he_normal", {"nonlinearity": "gelu"}, ValueError),
        ("he_uniform", {"a": 0.1}, ValueError),
        ("he_normal", {"mode": "fan_avg"}, ValueError),
    ],
)
def test_bad_options(name, options, error):
    with pytest.raises(error):
        fill(name, np.empty((3, 4)), **options)


def test_docstrings_have_examples_and_citations():
    for fn in [
        calculate_gain,
        fan_in_fan_out,
        get_initializer,
        register_initializer,
        initialize_layer_,
        *(INITIALIZERS[n].fill_ for n in BUILTINS),
    ]:
        doc = fn.__doc__
        for section in ("Citation", "Parameters", "Returns", "Raises", "Examples"):
            assert section in doc, (fn.__name__, section)
