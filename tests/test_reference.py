"""The oracle itself: the vectorized reference against network2-style
per-example code (tests/naive.py) and against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from fastnet import reference
from fastnet.kernels.codes import COSTS, HIDDEN_ACTIVATIONS
from tests import naive

PAIRS = [(c, a) for c in COSTS for a in HIDDEN_ACTIVATIONS]


def problem(sizes=(6, 5, 4, 3), n=12, seed=0):
    rng = np.random.default_rng(seed)
    weights = [
        rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    biases = [rng.standard_normal(o) for o in sizes[1:]]
    X = rng.random((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return weights, biases, X, y


@pytest.mark.parametrize("cost,activation", PAIRS)
def test_backprop_matches_per_example_network2(cost, activation):
    weights, biases, X, y = problem()
    gw, gb = reference.backprop(weights, biases, X, y, activation, cost)
    nw = [np.zeros_like(w) for w in weights]
    nb = [np.zeros_like(b) for b in biases]
    for x, label in zip(X, y, strict=True):
        dw, db = naive.backprop_one(weights, biases, x, label, activation, cost)
        nw = [a + b for a, b in zip(nw, dw, strict=True)]
        nb = [a + b for a, b in zip(nb, db, strict=True)]
    for a, b in zip(gw + gb, nw + nb, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cost,activation", PAIRS)
def test_epoch_matches_per_example_network2(cost, activation):
    weights, biases, X, y = problem(n=23)
    order = np.random.default_rng(1).permutation(len(X))
    w_ref = [w.copy() for w in weights]
    b_ref = [b.copy() for b in biases]
    reference.sgd_epoch(w_ref, b_ref, X, y, order, 5, 0.5, 3.0, activation=activation, cost=cost)
    w_nv, b_nv = weights, biases
    for start in range(0, len(order), 5):
        idx = order[start : start + 5]
        w_nv, b_nv = naive.update_mini_batch(
            w_nv, b_nv, X[idx], y[idx], 0.5, 3.0, len(X), activation, cost
        )
    for a, b in zip(w_ref + b_ref, w_nv + b_nv, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("cost,activation", PAIRS)
def test_total_cost_matches_network2_formula(cost, activation):
    weights, biases, X, y = problem()
    lmbda = 2.0
    expected = sum(
        naive.cost_one(weights, biases, x, t, activation, cost) for x, t in zip(X, y, strict=True)
    )
    expected = expected / len(X) + 0.5 * lmbda / len(X) * sum(np.sum(w**2) for w in weights)
    got = reference.total_cost(weights, biases, X, y, lmbda, activation, cost)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cost,activation", PAIRS)
def test_reference_gradient_central_differences(cost, activation):
    weights, biases, X, y = problem(sizes=(4, 3, 3), n=5, seed=3)
    gw, gb = reference.backprop(weights, biases, X, y, activation, cost)

    def f():
        return reference.total_cost(weights, biases, X, y, 0.0, activation, cost) * len(X)

    eps = 1e-6
    for params, grads in ((weights, gw), (biases, gb)):
        for p, g in zip(params, grads, strict=True):
            flat, gflat = p.reshape(-1), g.reshape(-1)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + eps
                up = f()
                flat[i] = old - eps
                down = f()
                flat[i] = old
                assert (up - down) / (2 * eps) == pytest.approx(gflat[i], rel=1e-5, abs=1e-8)
