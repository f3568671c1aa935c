"""Two networks trained from two Python threads at once get the same bits as
when trained one after the other (kernels release the GIL; each call sets its
own thread count)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastnet
from fastnet.threads import max_threads


# Mini-batch 200 on these layers takes the dense driver (BLAS held to one
# thread per call).
@pytest.mark.parametrize("mini_batch,parallel", [(10, False), (10, True), (200, False)])
def test_two_threads_train_like_one_after_the_other(monkeypatch, mini_batch, parallel):
    if parallel:
        # Force the parallel kernel on this small network; at mini-batch 10
        # that is the fused step's team, whose lanes meet at spin barriers:
        # with two teams at once there are more threads than cores here.
        monkeypatch.setattr("fastnet.network.use_parallel", lambda m, n_weights: True)
    rng = np.random.default_rng(0)
    X, y = rng.random((2000, 40)), rng.integers(0, 10, 2000)
    X[X < 0.7] = 0
    configs = [dict(seed=1, init="default"), dict(seed=2, init="large", n_threads=1)]
    if parallel and mini_batch == 10:
        configs[1].pop("n_threads")  # two teams of every core's threads

    def train(net):
        net.train((X, y), 3, mini_batch, 0.2, 1.0)

    alone = []
    for cfg in configs:
        net = fastnet.Network([40, 30, 10], **cfg)
        train(net)
        alone.append(net.params.tobytes())

    nets = [fastnet.Network([40, 30, 10], **cfg) for cfg in configs]
    errors = []

    def run(net):
        try:
            train(net)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(net,)) for net in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [net.params.tobytes() for net in nets] == alone
    if parallel and max_threads() > 1:
        assert nets[0].n_threads is None  # used every core, beside a 1-thread network
