"""Saturation diagnostics: hand-computed values, the book's std(z) arithmetic,
rendering, and the ``diagnose`` command."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnet import Network
from fastnet import cli as fastnet_cli
from fastnet.diagnostics import (
    render_histogram,
    render_saturation,
    saturation,
    saturation_summary,
    weight_rms,
    weighted_inputs,
)

# A [2, 2, 1] network whose first-layer z on X is easy to write down.
W1 = np.array([[1.0, 0.0], [0.0, 10.0]])
B1 = np.array([0.0, -1.0])
W2 = np.array([[1.0, -1.0]])
B2 = np.array([0.5])
X = np.array([[1.0, 1.0], [0.0, 0.5], [2.0, 0.0]])
# Rows: inputs; columns: neurons. z = x @ W1.T + b1.
Z1 = np.array([[1.0, 9.0], [0.0, 4.0], [2.0, -1.0]])


def tiny(activation="sigmoid", cost="cross_entropy"):
    net = Network([2, 2, 1], init="zeros", activation=activation, cost=cost)
    net.weights[0][...] = W1
    net.biases[0][...] = B1
    net.weights[1][...] = W2
    net.biases[1][...] = B2
    return net


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_weighted_inputs_by_hand():
    z1, z2 = weighted_inputs(tiny(), X)
    np.testing.assert_allclose(z1, Z1)
    expected = [sigmoid(a) - sigmoid(b) + 0.5 for a, b in Z1]
    np.testing.assert_allclose(z2[:, 0], expected, rtol=1e-12)


def test_sigmoid_saturation_stats_by_hand():
    s1, s2 = saturation(tiny(), X, 0.01, bins=[-2.0, 0.0, 2.0, 10.0])
    values = [1.0, 9.0, 0.0, 4.0, 2.0, -1.0]
    assert s1.layer == 1 and s1.activation == "sigmoid" and s1.n_neurons == 2
    assert s1.z_mean == pytest.approx(15.0 / 6.0)
    assert s1.z_std == pytest.approx(math.sqrt(65.5 / 6.0))
    # sigmoid(z) >= 0.99 needs z >= log(99) = 4.595: only z = 9.
    assert s1.saturated == pytest.approx(1.0 / 6.0)
    assert s1.counts.tolist() == [1, 2, 3]
    assert s1.edges.tolist() == [-2.0, 0.0, 2.0, 10.0]
    # A looser threshold: sigmoid(4) = 0.982 >= 0.98 also counts.
    assert saturation(tiny(), X, 0.02)[0].saturated == pytest.approx(2.0 / 6.0)
    # Output layer: z2 = sigmoid(z_a) - sigmoid(z_b) + 0.5 lies in (-0.5, 1.5): never saturated.
    z2 = [sigmoid(a) - sigmoid(b) + 0.5 for a, b in Z1]
    assert s2.activation == "sigmoid"
    assert s2.z_mean == pytest.approx(np.mean(z2))
    assert s2.z_std == pytest.approx(np.std(z2))
    assert s2.saturated == 0.0
    assert len(values) == s1.counts.sum()


def test_tanh_and_relu_saturation_by_hand():
    # tanh: |tanh(z)| >= 0.99 needs |z| >= atanh(0.99) = 2.65: z = 9 and 4.
    assert saturation(tiny("tanh"), X)[0].saturated == pytest.approx(2.0 / 6.0)
    # relu: "dead" means z <= 0: z = 0 and -1.
    s = saturation(tiny("relu"), X)[0]
    assert s.activation == "relu"
    assert s.saturated == pytest.approx(2.0 / 6.0)


def test_softmax_output_layer():
    stats = saturation(tiny(cost="log_likelihood"), X)
    assert [s.activation for s in stats] == ["sigmoid", "softmax"]
    # One softmax output is always exactly 1: saturated on every input.
    assert stats[1].saturated == 1.0


@pytest.mark.parametrize(("init", "expected"), [("large", math.sqrt(501)), ("default", 1.5**0.5)])
def test_the_books_std_z(init, expected):
    """Nielsen ch. 3: 1,000 inputs, half on; std(z) is sqrt(501) = 22.4 with N(0, 1)
    weights and biases, sqrt(3/2) = 1.22 with N(0, 1/n_in) weights and N(0, 1) biases.
    Each draw gives 5,000 independent hidden neurons; four draws pool 20,000."""
    x = np.r_[np.ones(500), np.zeros(500)]
    net = Network([1000, 5000, 1], init=init, seed=0)
    variances = []
    for seed in range(4):
        net.initialize(init, seed=seed)
        s = saturation(net, x)[0]
        assert abs(s.z_mean) < 4 * expected / math.sqrt(5000)
        variances.append(s.z_std**2)
    assert math.sqrt(np.mean(variances)) == pytest.approx(expected, rel=0.03)
    assert round(expected, 2) == {"large": 22.38, "default": 1.22}[init]


def test_large_init_saturates_default_does_not():
    x = np.r_[np.ones(500), np.zeros(500)]
    large = saturation(Network([1000, 2000, 10], init="large", seed=1), x)[0]
    default = saturation(Network([1000, 2000, 10], init="default", seed=1), x)[0]
    # P(|z| > 4.6) for z ~ N(0, 22.4^2) is 0.84; for N(0, 1.22^2) it is 0.0002.
    assert large.saturated == pytest.approx(0.84, abs=0.03)
    assert default.saturated < 0.005


def test_weight_rms_is_the_root_mean_square():
    net = Network([7, 5, 3], init="large", seed=3)
    out = weight_rms(net)
    expected = [np.sqrt(np.mean(w**2)) for w in net.weights]
    np.testing.assert_allclose(out["weight_rms"], expected, rtol=1e-12)
    everything = np.concatenate([w.ravel() for w in net.weights])
    assert out["weight_rms_all"] == pytest.approx(np.sqrt(np.mean(everything**2)), rel=1e-12)


def test_saturation_summary_matches_saturation():
    net = Network([6, 4, 3], init="large", seed=2)
    Xr = np.random.default_rng(0).random((50, 6))
    summary = saturation_summary(net, Xr, 0.05)
    stats = saturation(net, Xr, 0.05)
    assert summary == {
        "z_mean": [s.z_mean for s in stats],
        "z_std": [s.z_std for s in stats],
        "saturated": [s.saturated for s in stats],
    }


def test_bad_arguments():
    net = tiny()
    with pytest.raises(ValueError, match="threshold"):
        saturation(net, X, 0.5)
    with pytest.raises(ValueError, match=r"shaped \(n, 2\)"):
        saturation(net, np.ones((3, 5)))
    with pytest.raises(ValueError, match="empty"):
        saturation(net, np.ones((0, 2)))
    with pytest.raises(ValueError, match="edges"):
        render_histogram([1, 2], [0.0, 1.0])


def test_render_histogram():
    text = render_histogram([1, 0, 4], [0.0, 1.0, 2.0, 3.0], width=8)
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("##        1")  # 8 * 1/4 = 2 characters
    assert lines[1].endswith("          0")
    assert lines[2].endswith("########  4")
    assert lines[0].startswith("[       0,        1)")
    # A non-empty bin is never drawn empty.
    assert render_histogram([1, 1000], [0, 1, 2], width=10).splitlines()[0].count("#") == 1


def test_render_saturation_table():
    text = render_saturation(saturation(tiny(), X, bins=3))
    assert "std z" in text and "saturated" in text
    assert "16.7%" in text  # 1 of 6
    assert "layer 1 (sigmoid): histogram of z" in text
    assert "histogram" not in render_saturation(saturation(tiny(), X), histograms=False)


def test_plot_saturation(tmp_path):
    pytest.importorskip("matplotlib")
    from fastnet.diagnostics import plot_saturation

    net = Network([20, 8, 3], init="large", seed=0)
    Xr = np.random.default_rng(0).random((40, 20))
    path = tmp_path / "z.png"
    plot_saturation({"large": saturation(net, Xr)}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ the command


@pytest.fixture
def small_mnist(mnist, monkeypatch):
    """The CLI's data loader returns the session's MNIST (loaded once)."""
    monkeypatch.setattr(fastnet_cli, "_load_data", lambda args, fetch_if_missing: mnist)
    return mnist


def test_diagnose_fresh_networks(small_mnist, capsys, tmp_path):
    rc = fastnet_cli.main(
        ["diagnose", "--samples", "200", "--bins", "5", "--json", str(tmp_path / "d.json")]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "init large" in out and "init default" in out
    assert "histogram of z" in out
    import json

    d = json.loads((tmp_path / "d.json").read_text())
    assert d["n_inputs"] == 200
    large = d["networks"]["large"]["layers"][0]
    default = d["networks"]["default"]["layers"][0]
    assert large["saturated"] > 0.3 > 0.01 > default["saturated"]
    assert large["z_std"] > 5 * default["z_std"]
    assert len(large["counts"]) == 5


def test_diagnose_a_saved_model(small_mnist, capsys, tmp_path):
    path = tmp_path / "m.npz"
    Network([784, 12, 10], init="default", seed=4).save(path)
    assert fastnet_cli.main(["diagnose", str(path), "--samples", "50", "--no-histogram"]) == 0
    out = capsys.readouterr().out
    assert "Network([784, 12, 10]" in out and "histogram" not in out
    assert fastnet_cli.main(["diagnose", str(path), "--init", "large"]) == 2
    assert "not both" in capsys.readouterr().err


def test_diagnose_png_or_hint(small_mnist, capsys, tmp_path, monkeypatch):
    png = tmp_path / "z.png"
    try:
        import matplotlib  # noqa: F401

        have_matplotlib = True
    except ImportError:
        have_matplotlib = False
    assert fastnet_cli.main(["diagnose", "--samples", "20", "--png", str(png)]) == 0
    assert png.exists() == have_matplotlib
    if not have_matplotlib:
        assert 'pip install "fastnet[plot]"' in capsys.readouterr().out
