"""The plain NumPy reference: the book's math written simply.

This module is the oracle the Numba kernels are tested against and the
baseline the benchmarks time. It is deliberately plain: lists of per-layer
arrays (weights shaped ``(n_out, n_in)`` as in the book, biases ``(n_out,)``),
vectorized over the mini-batch, no buffers, no tricks. Its only departure from
network2 is evaluating cross-entropy from ``z`` so it stays finite.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> w = [rng.standard_normal((3, 4)) / 2, rng.standard_normal((2, 3)) / np.sqrt(3)]
>>> b = [rng.standard_normal(3), rng.standard_normal(2)]
>>> X, y = rng.random((5, 4)), np.array([0, 1, 1, 0, 1])
>>> sgd_epoch(w, b, X, y, np.arange(5), 2, eta=0.5, lmbda=0.1)
>>> accuracy(w, b, X, y) >= 0
True
"""

from __future__ import annotations

import numpy as np

from fastnet.kernels.codes import COST_OUTPUT, COSTS, HIDDEN_ACTIVATIONS


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def relu(z):
    return np.where(z > 0, z, 0).astype(z.dtype)


#: Activation functions by name (rows are samples).
ACTIVATIONS = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": relu, "softmax": softmax}

#: f'(z) from z and a = f(z), by name (hidden activations only).
DERIVATIVES = {
    "sigmoid": lambda z, a: a * (1 - a),
    "tanh": lambda z, a: 1 - a * a,
    "relu": lambda z, a: (z > 0).astype(z.dtype),
}

assert set(DERIVATIVES) == set(HIDDEN_ACTIVATIONS), "reference misses a hidden activation"
assert set(COST_OUTPUT) == set(COSTS), "reference misses a cost"


def one_hot(y, n_out, dtype):
    out = np.zeros((len(y), n_out), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out


def feedforward(weights, biases, X, activation="sigmoid", cost="cross_entropy"):
    """Every layer's z and activation for a batch.

    Returns
    -------
    zs : list of ndarray, each (m, n_out)
    activations : list of ndarray, ``activations[0] is X``, each (m, n)
    """
    output = COST_OUTPUT[cost]
    a = X
    zs, activations = [], [X]
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = a @ w.T + b
        a = ACTIVATIONS[output if layer == len(weights) - 1 else activation](z)
        zs.append(z)
        activations.append(a)
    return zs, activations


def sample_costs(z, a, y, cost):
    """Per-sample cost from the output layer's z and a, and int labels y."""
    t = one_hot(y, a.shape[1], np.float64)
    z = z.astype(np.float64)
    if cost == "cross_entropy":
        # -y ln(a) - (1-y) ln(1-a) with a = sigmoid(z), written with softplus.
        return np.sum(t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z), axis=1)
    if cost == "quadratic":
        return 0.5 * np.sum((a.astype(np.float64) - t) ** 2, axis=1)
    if cost == "log_likelihood":
        zmax = z.max(axis=1)
        lse = zmax + np.log(np.sum(np.exp(z - zmax[:, None]), axis=1))
        return lse - z[np.arange(len(y)), y]
    raise ValueError(f"unknown cost {cost!r}")


def output_delta(z, a, y, cost):
    """dC/dz at the output layer for a batch."""
    delta = a - one_hot(y, a.shape[1], a.dtype)
    if cost == "quadratic":
        delta = delta * (a * (1 - a))
    return delta


def backprop(weights, biases, X, y, activation="sigmoid", cost="cross_entropy"):
    """Gradients of the summed (not averaged) cost over the batch.

    Returns
    -------
    grad_w : list of ndarray, shapes as `weights`
    grad_b : list of ndarray, shapes as `biases`
    """
    zs, activations = feedforward(weights, biases, X, activation, cost)
    delta = output_delta(zs[-1], activations[-1], y, cost)
    grad_w = [None] * len(weights)
    grad_b = [None] * len(biases)
    for layer in range(len(weights) - 1, -1, -1):
        grad_w[layer] = delta.T @ activations[layer]
        grad_b[layer] = delta.sum(axis=0)
        if layer > 0:
            delta = (delta @ weights[layer]) * DERIVATIVES[activation](
                zs[layer - 1], activations[layer]
            )
    return grad_w, grad_b


def update_mini_batch(
    weights, biases, X, y, eta, lmbda, n, activation="sigmoid", cost="cross_entropy"
):
    """One step of L2-regularized SGD, in place on `weights` and `biases`:
    ``w <- (1 - eta*lmbda/n) w - (eta/m) sum grad_w``, ``b <- b - (eta/m) sum grad_b``."""
    m = len(X)
    grad_w, grad_b = backprop(weights, biases, X, y, activation, cost)
    decay = 1.0 - eta * lmbda / n
    for w, gw in zip(weights, grad_w, strict=True):
        w[...] = decay * w - (eta / m) * gw
    for b, gb in zip(biases, grad_b, strict=True):
        b[...] = b - (eta / m) * gb


def sgd_epoch(
    weights,
    biases,
    X,
    y,
    order,
    mini_batch,
    eta,
    lmbda=0.0,
    n=None,
    activation="sigmoid",
    cost="cross_entropy",
):
    """One epoch over ``X[order]`` in mini-batches; the last may be shorter."""
    n = len(X) if n is None else n
    for start in range(0, len(order), mini_batch):
        idx = order[start : start + mini_batch]
        update_mini_batch(weights, biases, X[idx], y[idx], eta, lmbda, n, activation, cost)


def total_cost(weights, biases, X, y, lmbda=0.0, activation="sigmoid", cost="cross_entropy"):
    """Mean cost over the data plus ``lmbda/(2n) * sum(w**2)``, n = len(X)."""
    zs, activations = feedforward(weights, biases, X, activation, cost)
    c = np.sum(sample_costs(zs[-1], activations[-1], y, cost)) / len(X)
    return c + 0.5 * (lmbda / len(X)) * sum(
        float(np.sum(w.astype(np.float64) ** 2)) for w in weights
    )


def accuracy(weights, biases, X, y, activation="sigmoid", cost="cross_entropy"):
    """Fraction of samples whose largest output is their label."""
    _, activations = feedforward(weights, biases, X, activation, cost)
    return float(np.mean(np.argmax(activations[-1], axis=1) == y))
