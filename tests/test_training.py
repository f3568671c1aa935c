"""Training on real MNIST, and the shape of the training loop."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fastnet import Network
from fastnet._config import BOOK
from fastnet.kernels import mlp


@pytest.mark.needs_jit
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_epoch_of_the_books_run_reaches_91_percent(mnist, dtype):
    """The book reports 92.70% after epoch 1 ([784, 30, 10], default init)."""
    net = Network(BOOK["sizes"], dtype=dtype, seed=BOOK["seed"])
    history = net.train(
        mnist.training,
        1,
        BOOK["mini_batch"],
        BOOK["eta"],
        BOOK["lmbda"],
        evaluation_data=mnist.validation,
        monitor_evaluation_accuracy=True,
    )
    assert history.evaluation_accuracy[0] >= 0.91


@pytest.mark.needs_jit
def test_large_init_learns_slower_in_the_first_epoch(mnist):
    """The chapter's claim, on a 10,000-image subset to stay fast."""
    X, y = mnist.training.X[:10_000], mnist.training.y[:10_000]
    acc = {}
    for init in ("default", "large"):
        net = Network(BOOK["sizes"], init=init, seed=1)
        h = net.train(
            (X, y),
            1,
            10,
            0.1,
            5.0,
            evaluation_data=mnist.validation,
            monitor_evaluation_accuracy=True,
        )
        acc[init] = h.evaluation_accuracy[0]
    assert acc["default"] > acc["large"] + 0.02, acc


@pytest.mark.parametrize("progress", [False, True])
def test_one_kernel_call_per_epoch(monkeypatch, progress):
    """The Python side calls a kernel once per epoch, not per mini-batch
    (a progress bar splits an epoch into a few calls, never one per batch)."""
    calls = []
    original = mlp.sgd_serial_

    signature = inspect.signature(getattr(original, "py_func", original))

    def counting(*args):
        bound = signature.bind(*args).arguments
        calls.append(bound["last"] - bound["first"])  # mini-batches in this call
        return original(*args)

    monkeypatch.setattr(mlp, "sgd_serial_", counting)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    rng = np.random.default_rng(0)
    X, y = rng.random((1000, 8)), rng.integers(0, 3, 1000)
    net = Network([8, 5, 3], seed=0, n_threads=1)
    net.train((X, y), 3, 2, 0.1, progress=progress)
    assert calls[0] == 0  # the warm-up call before timing runs no mini-batch
    calls = calls[1:]
    assert sum(calls) == 3 * 500
    if progress:
        assert len(calls) <= 3 * 51
    else:
        assert calls == [500, 500, 500]
