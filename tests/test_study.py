"""The initialization study: tracked training, train_many, compare-init, the
decay report, and their command line."""

from __future__ import annotations

import builtins
import json
import math
import warnings

import numpy as np
import pytest

from fastnet import History, Network, SymmetryWarning, cli_study, study
from fastnet import cli as fastnet_cli
from fastnet.data import MNIST, Split
from fastnet.diagnostics import saturation_summary
from fastnet.study import RunConfig


def synthetic(n=600, n_in=20, n_out=3, seed=0):
    """Labels from a random linear map: learnable in a couple of epochs."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in))
    W = rng.normal(size=(n_out, n_in))
    return X, np.argmax((X - 0.5) @ W.T, axis=1)


@pytest.fixture(scope="module")
def data():
    X, y = synthetic()
    return (X[:500], y[:500]), (X[500:], y[500:])


def _no_matplotlib(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


# ------------------------------------------------------------- train_tracked


def test_tracked_weight_rms_is_the_root_mean_square(data):
    train, valid = data
    net = Network([20, 8, 3], init="large", seed=1)
    snapshots = []
    before = [np.sqrt(np.mean(w**2)) for w in net.weights]
    history = study.train_tracked(
        net,
        train,
        3,
        10,
        0.5,
        5.0,
        track=("weights",),
        callback=lambda r: snapshots.append([w.copy() for w in net.weights]),
    )
    assert len(history) == 3
    for record, weights in zip(history.records, snapshots, strict=True):
        expected = [np.sqrt(np.mean(w**2)) for w in weights]
        np.testing.assert_allclose(record["weight_rms"], expected, rtol=1e-12)
        all_w = np.concatenate([w.ravel() for w in weights])
        assert record["weight_rms_all"] == pytest.approx(np.sqrt(np.mean(all_w**2)), rel=1e-12)
    np.testing.assert_allclose(history.header["track"]["initial"]["weight_rms"], before)
    assert history.header["track"]["what"] == ["weights"]


def test_tracked_saturation_on_fixed_inputs(data):
    train, valid = data
    net = Network([20, 8, 3], init="large", seed=1)
    expected = []
    history = study.train_tracked(
        net,
        train,
        2,
        10,
        0.5,
        track="saturation",
        track_inputs=valid[0][:40],
        callback=lambda r: expected.append(saturation_summary(net, valid[0][:40])),
    )
    for record, exp in zip(history.records, expected, strict=True):
        assert {k: record[k] for k in exp} == exp
        assert len(record["z_std"]) == 2  # hidden and output layer
    assert history.header["track"]["n_inputs"] == 40


def test_tracking_default_inputs_and_same_training(data):
    """Tracking only reads the network: the parameters are those of plain training."""
    train, valid = data
    kwargs = {"evaluation_data": valid, "monitor_evaluation_accuracy": True}
    plain = Network([20, 8, 3], seed=5)
    h_plain = plain.train(train, 2, 10, 0.5, 1.0, **kwargs)
    tracked = Network([20, 8, 3], seed=5)
    h = study.train_tracked(
        tracked, train, 2, 10, 0.5, 1.0, track=("saturation", "weights"), **kwargs
    )
    assert np.array_equal(plain.params, tracked.params)
    assert h.evaluation_accuracy == h_plain.evaluation_accuracy
    assert h.header["track"]["n_inputs"] == len(valid[0])  # fewer than 1000 there
    # No tracking: exactly Network.train.
    again = Network([20, 8, 3], seed=5)
    h2 = study.train_tracked(again, train, 2, 10, 0.5, 1.0, **kwargs)
    assert "track" not in h2.header and np.array_equal(again.params, plain.params)


def test_tracked_metrics_file(data, tmp_path):
    train, valid = data
    path = tmp_path / "run.jsonl"
    net = Network([20, 8, 3], seed=2)
    history = study.train_tracked(
        net,
        train,
        2,
        10,
        0.5,
        1.0,
        evaluation_data=valid,
        monitor_evaluation_accuracy=True,
        track="saturation,weights",
        metrics=path,
    )
    loaded = History.from_jsonl(path)
    assert loaded.records == json.loads(json.dumps(history.records))
    assert [r["epoch"] for r in loaded.records] == [1, 2]
    for r in loaded.records:
        assert {"weight_rms", "weight_rms_all", "z_mean", "z_std", "saturated"} <= set(r)
        assert "evaluation_accuracy" in r
    header = loaded.header
    assert header["config"]["epochs"] == 2
    assert header["config"]["n_training"] == 500
    assert header["seed"] == 2 and "versions" in header and "n_threads" in header
    assert set(header["track"]["initial"]) == {
        "weight_rms",
        "weight_rms_all",
        "z_mean",
        "z_std",
        "saturated",
    }


def test_check_track():
    assert study.check_track("weights, saturation") == ("weights", "saturation")
    assert study.check_track(None) == ()
    assert study.check_track(["weights", "weights"]) == ("weights",)
    with pytest.raises(ValueError, match="unknown track 'gradients'"):
        study.check_track("gradients")


# ---------------------------------------------------------------- train_many


def test_train_many_equals_training_each_network_alone(data):
    train, valid = data
    configs = [
        RunConfig((20, 8, 3), init="large", seed=3, epochs=2, eta=0.5, lmbda=1.0),
        RunConfig((20, 5, 3), init="default", seed=4, epochs=3, eta=0.5, dtype="float32"),
    ]
    nets = []
    histories = study.train_many(
        configs, train, evaluation_data=valid, on_done=lambda i, c, net, h: nets.append(net)
    )
    assert len(histories) == 2
    for config, h, net in zip(configs, histories, nets, strict=True):
        alone = config.network()
        h_alone = alone.train(
            train,
            config.epochs,
            config.mini_batch_size,
            config.eta,
            config.lmbda,
            evaluation_data=valid,
            monitor_evaluation_accuracy=True,
            monitor_evaluation_cost=True,
        )
        assert np.array_equal(net.params, alone.params)
        assert h.evaluation_accuracy == h_alone.evaluation_accuracy
        assert h.evaluation_cost == h_alone.evaluation_cost
        assert h.header["run"] == config.to_dict()
        assert h.header["wall_seconds"] > 0
        assert h.header["warnings"] == []
        assert h.header["distinct_hidden_neurons"] == [config.sizes[1]]


def test_train_many_records_and_passes_on_the_symmetry_warning(data):
    train, _ = data
    with pytest.warns(SymmetryWarning):
        (h,) = study.train_many([RunConfig((20, 6, 3), init="zeros", epochs=1)], train)
    assert h.header["warnings"][0]["category"] == "SymmetryWarning"
    assert h.header["distinct_hidden_neurons"] == [1]
    with pytest.raises(TypeError, match="RunConfig"):
        study.train_many([{"sizes": (20, 6, 3)}], train)


# -------------------------------------------------------------- compare_init


@pytest.fixture(scope="module")
def comparison(data):
    train, valid = data
    return study.compare_init(
        train,
        valid,
        inits=["large", "default", "zeros"],
        hidden=[8, 4],
        seeds=2,
        seed=10,
        epochs=2,
        eta=0.5,
        lmbda=1.0,
    )


def test_compare_init_json_structure(comparison):
    r = comparison
    assert r["format"] == "fastnet-compare-init" and r["format_version"] == 1
    assert r["config"]["inits"] == ["large", "default", "zeros"]
    assert r["config"]["hidden"] == [8, 4]
    assert r["config"]["seeds"] == [10, 11]
    assert r["config"]["n_training"] == 500 and r["config"]["n_evaluation"] == 100
    assert len(r["runs"]) == 3 * 2 * 2
    keys = {(run["init"], run["hidden"], run["seed"]) for run in r["runs"]}
    assert len(keys) == 12
    for run in r["runs"]:
        assert run["sizes"] == [20, run["hidden"], 3]
        assert len(run["evaluation_accuracy"]) == 2
        assert len(run["evaluation_cost"]) == 2
        assert len(run["epoch_seconds"]) == 2
        assert run["wall_seconds"] > 0
        assert all(0 <= a <= 1 for a in run["evaluation_accuracy"])
    zeros = [run for run in r["runs"] if run["init"] == "zeros"]
    assert all(run["distinct_hidden_neurons"] == [1] for run in zeros)
    assert all(run["warnings"][0]["category"] == "SymmetryWarning" for run in zeros)
    assert set(r["notes"]) == {"zeros"}
    # Strict JSON (no NaN), as the command writes it.
    json.loads(json.dumps(cli_study._jsonable(r), allow_nan=False))


def test_compare_init_is_reproducible(data, comparison):
    train, valid = data
    again = study.compare_init(
        train, valid, inits=["default"], hidden=[8], seeds=2, seed=10, epochs=2, eta=0.5, lmbda=1.0
    )
    first = [
        run["evaluation_accuracy"]
        for run in comparison["runs"]
        if run["init"] == "default" and run["hidden"] == 8
    ]
    assert [run["evaluation_accuracy"] for run in again["runs"]] == first


def test_compare_init_table(comparison):
    text = study.format_table(comparison)
    assert "mean ± standard deviation over 2 seeds (10..11)" in text
    assert "zeros*" in text
    # Why zeros fails: symmetric hidden units, one effective hidden neuron.
    assert "every hidden neuron computes the same function" in text
    assert "single hidden neuron" in text
    assert "Measured: 1 distinct hidden neuron(s) after training." in text
    # Cells are mean ± std of the percentages.
    acc = [
        100 * run["evaluation_accuracy"][1]
        for run in comparison["runs"]
        if run["init"] == "large" and run["hidden"] == 8
    ]
    assert f"{np.mean(acc):.2f}% ± {np.std(acc, ddof=1):.2f}" in text
    epoch_rows = [line for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert [int(line.split()[0]) for line in epoch_rows] == [1, 2]
    assert "book" not in text  # not the book's setup


def test_table_epochs():
    assert study.table_epochs(3) == [1, 2, 3]
    assert study.table_epochs(30) == [1, 2, 3, 4, 5, 10, 15, 20, 25, 30]
    assert study.table_epochs(32) == [1, 2, 3, 4, 5, 10, 15, 20, 25, 30, 32]
    assert study.table_epochs(12, every=True) == list(range(1, 13))


def test_compare_init_rejects_bad_arguments(data):
    train, valid = data
    with pytest.raises(ValueError, match="unknown initializer 'lagre'"):
        study.compare_init(train, valid, inits=["lagre"])
    with pytest.raises(ValueError, match="hidden"):
        study.compare_init(train, valid, hidden=[0])


def test_plot_compare_init(comparison, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "c.png"
    study.plot_compare_init(comparison, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib(comparison, tmp_path, monkeypatch, capsys):
    _no_matplotlib(monkeypatch)
    with pytest.raises(ImportError):
        study.plot_compare_init(comparison, tmp_path / "c.png")
    assert cli_study.try_plot(study.plot_compare_init, comparison, tmp_path / "c.png") is False
    assert 'pip install "fastnet[plot]"' in capsys.readouterr().out
    assert not (tmp_path / "c.png").exists()


# --------------------------------------------------------------- decay report


def test_predicted_decay_formula():
    p = study.predicted_decay(0.1, 5.0, 50_000, 10)
    assert p["per_step"] == 1 - 0.1 * 5.0 / 50_000
    assert p["steps"] == 5000
    assert p["exact"] == pytest.approx((1 - 1e-5) ** 5000, rel=1e-14)
    assert p["approx"] == pytest.approx(math.exp(-0.05), rel=1e-14)
    # eta*lambda << n: the two agree to about (eta*lambda)^2 / (2 n m).
    assert abs(p["exact"] - p["approx"]) < 1e-6
    # The last, smaller mini-batch is a step too.
    assert study.predicted_decay(0.1, 5.0, 95, 10)["steps"] == 10


def test_decay_report(data):
    train, valid = data
    report = study.decay_report(train, valid, hidden=8, init="large", seed=0, epochs=4, lmbda=5.0)
    assert report["format"] == "fastnet-decay-report"
    rows = report["epochs"]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3, 4]
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row["factor"] == pytest.approx(row["weight_rms_all"] / prev["weight_rms_all"])
        assert row["rate_ratio"] == pytest.approx(
            math.log(row["factor"]) / math.log(report["predicted"]["exact"])
        )
    # Large N(0, 1) weights on 20 inputs: the first layer's decay dominates.
    assert rows[1]["factor_layers"][0] == pytest.approx(report["predicted"]["exact"], rel=0.01)
    assert report["n_weights"] == 20 * 8 + 8 * 3
    assert report["inv_sqrt_n_weights"] == pytest.approx(1 / math.sqrt(184))
    assert report["phases"]["layers"][0]["dominates_until"] >= 1
    text = study.format_decay_table(report)
    assert "exp(-eta*lambda/m) = 0.951229" in text
    assert "1/sqrt(n_weights) = 1/sqrt(184)" in text
    json.loads(json.dumps(cli_study._jsonable(report), allow_nan=False))
    with pytest.raises(ValueError, match="lmbda > 0"):
        study.decay_report(train, valid, lmbda=0.0)


def test_decay_report_from_zero_weights(data):
    """RMS 0 at the start: no factor for epoch 1, and the symmetry note."""
    train, valid = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SymmetryWarning is turned into a note
        report = study.decay_report(train, valid, hidden=4, init="zeros", epochs=2)
    assert report["epochs"][1]["factor"] is None
    assert "single hidden neuron" in report["notes"][0]
    assert "note: zeros:" in study.format_decay_table(report)


# ------------------------------------------------------------------ commands


@pytest.fixture
def tiny_mnist(mnist, monkeypatch):
    """The CLI's loader returns real MNIST cut to 1,000 training and 500
    validation images (the `mnist` fixture loads the files once)."""
    small = MNIST(
        Split(mnist.training.X[:1000], mnist.training.y[:1000]),
        Split(mnist.validation.X[:500], mnist.validation.y[:500]),
        mnist.test,
    )
    monkeypatch.setattr(fastnet_cli, "_load_data", lambda args, fetch_if_missing: small)
    return small


def test_compare_init_command(tiny_mnist, tmp_path, capsys):
    have_matplotlib = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        have_matplotlib = False
    out = tmp_path / "ci"
    argv = ["compare-init", "--inits", "default,zeros", "--hidden", "6", "--epochs", "2"]
    argv += ["--limit", "300", "--out", str(out), "--quiet", "--dtype", "float32"]
    assert fastnet_cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "single hidden neuron" in text and "300 training images" in text
    result = json.loads((out / "compare-init.json").read_text())
    assert result["config"]["n_training"] == 300 and result["config"]["dtype"] == "float32"
    assert len(result["runs"]) == 2
    assert "compare-init" in result["command"]
    assert (out / "compare-init.png").exists() == have_matplotlib


def test_compare_init_command_without_matplotlib(tiny_mnist, tmp_path, capsys, monkeypatch):
    _no_matplotlib(monkeypatch)
    out = tmp_path / "ci"
    argv = ["compare-init", "--hidden", "5", "--epochs", "1", "--limit", "200"]
    assert fastnet_cli.main([*argv, "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert cli_study.PLOT_HINT in text
    assert (out / "compare-init.json").exists()
    assert not (out / "compare-init.png").exists()
    assert "Validation accuracy by epoch" in text


def test_decay_report_command(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["compare-init", "--decay-report", "--epochs", "2", "--limit", "500", "--no-plot"]
    assert fastnet_cli.main([*argv, "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "predicted per-epoch factor" in text
    report = json.loads((out / "decay-large-h30.json").read_text())
    assert report["config"]["init"] == "large" and report["config"]["sizes"] == [784, 30, 10]
    assert len(report["epochs"]) == 3
    assert not (out / "decay-large-h30.png").exists()


def test_command_argument_errors(tiny_mnist, capsys):
    assert fastnet_cli.main(["compare-init", "--inits", "lagre"]) == 2
    assert "did you mean 'large'" in capsys.readouterr().err
    assert fastnet_cli.main(["compare-init", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert fastnet_cli.main(["compare-init", "--decay-report", "--lmbda", "0"]) == 2
    with pytest.raises(SystemExit):
        fastnet_cli.main(["compare-init", "--hidden", "0"])
    with pytest.raises(SystemExit):
        fastnet_cli.main(["train", "--track", "gradients"])


def test_train_with_track(tiny_mnist, tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    argv = ["train", "--sizes", "784,10,10", "--epochs", "2", "--dtype", "float32"]
    argv += ["--track", "saturation,weights", "--track-samples", "100", "--metrics", str(path)]
    argv += ["--limit", "400", "--checkpoint", str(tmp_path / "ckpt")]
    assert fastnet_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "before training" in out and "weight RMS" in out and "saturated" in out
    h = History.from_jsonl(path)
    assert len(h.records) == 2
    assert h.header["track"]["n_inputs"] == 100
    assert h.header["config"]["n_training"] == 400
    for r in h.records:
        assert len(r["weight_rms"]) == 2 and len(r["saturated"]) == 2
        assert "evaluation_accuracy" in r
    assert any((tmp_path / "ckpt").iterdir())
    argv = ["train", "--track", "weights", "--resume", str(tmp_path / "ckpt")]
    assert fastnet_cli.main(argv) == 2
    assert "--resume" in capsys.readouterr().err


def test_train_without_track_is_the_plain_command(tiny_mnist, monkeypatch):
    called = []
    monkeypatch.setattr(fastnet_cli, "cmd_train", lambda args: called.append(args) or 0)
    assert fastnet_cli.main(["train", "--epochs", "1"]) == 0
    assert len(called) == 1 and called[0].track == []


def test_zeros_network_is_a_one_hidden_neuron_network(data):
    """What the table's zeros note claims: after training from zeros, the hidden
    neurons are identical, and a [n_in, 1, n_out] network with the output weights
    summed over them computes the same outputs."""
    train, valid = data
    nets = []
    with pytest.warns(SymmetryWarning):
        study.train_many(
            [RunConfig((20, 6, 3), init="zeros", epochs=2, eta=0.5, lmbda=1.0)],
            train,
            on_done=lambda i, c, net, h: nets.append(net),
        )
    (net,) = nets
    w, b = net.weights[0], net.biases[0]
    assert np.ptp(w, axis=0).max() == 0 and np.ptp(b) == 0
    assert np.abs(w).max() > 0  # it did learn something: the neurons are not dead
    one = Network([20, 1, 3], init="zeros")
    one.weights[0][...] = w[:1]
    one.biases[0][...] = b[:1]
    one.weights[1][...] = net.weights[1].sum(axis=1, keepdims=True)
    one.biases[1][...] = net.biases[1]
    np.testing.assert_allclose(one.feedforward(valid[0]), net.feedforward(valid[0]), rtol=1e-12)
