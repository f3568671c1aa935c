"""Slow, obvious versions of the math, one example at a time as in the book's
network2.py (column vectors, a loop over the mini-batch). They check the
vectorized reference, which in turn checks the kernels."""

from __future__ import annotations

import numpy as np


def _f(name, z):
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        e = np.exp(z - z.max())
        return e / e.sum()
    raise ValueError(name)


def _fprime(name, z):
    if name == "sigmoid":
        s = _f("sigmoid", z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(float)
    raise ValueError(name)


def _output(cost):
    return "softmax" if cost == "log_likelihood" else "sigmoid"


def backprop_one(weights, biases, x, label, activation, cost):
    """network2's ``backprop`` for one example x (column vector)."""
    a = x.reshape(-1, 1)
    activations, zs = [a], []
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = w @ a + b.reshape(-1, 1)
        last = layer == len(weights) - 1
        a = _f(_output(cost) if last else activation, z)
        zs.append(z)
        activations.append(a)
    y = np.zeros_like(a)
    y[label] = 1.0
    delta = a - y
    if cost == "quadratic":
        delta = delta * _fprime("sigmoid", zs[-1])
    nabla_w = [None] * len(weights)
    nabla_b = [None] * len(weights)
    nabla_w[-1] = delta @ activations[-2].T
    nabla_b[-1] = delta.ravel()
    for layer in range(2, len(weights) + 1):
        delta = (weights[-layer + 1].T @ delta) * _fprime(activation, zs[-layer])
        nabla_w[-layer] = delta @ activations[-layer - 1].T
        nabla_b[-layer] = delta.ravel()
    return nabla_w, nabla_b


def update_mini_batch(weights, biases, X, y, eta, lmbda, n, activation, cost):
    """network2's ``update_mini_batch``: sum per-example gradients, then step."""
    nabla_w = [np.zeros_like(w) for w in weights]
    nabla_b = [np.zeros_like(b) for b in biases]
    for x, label in zip(X, y, strict=True):
        dw, db = backprop_one(weights, biases, x, label, activation, cost)
        nabla_w = [nw + d for nw, d in zip(nabla_w, dw, strict=True)]
        nabla_b = [nb + d for nb, d in zip(nabla_b, db, strict=True)]
    m = len(X)
    weights = [
        (1 - eta * lmbda / n) * w - (eta / m) * nw for w, nw in zip(weights, nabla_w, strict=True)
    ]
    biases = [b - (eta / m) * nb for b, nb in zip(biases, nabla_b, strict=True)]
    return weights, biases


def cost_one(weights, biases, x, label, activation, cost):
    """network2's per-example cost (cross-entropy written as -y ln a - (1-y) ln(1-a))."""
    a = x.reshape(-1, 1)
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        last = layer == len(weights) - 1
        a = _f(_output(cost) if last else activation, w @ a + b.reshape(-1, 1))
    y = np.zeros_like(a)
    y[label] = 1.0
    if cost == "cross_entropy":
        return float(np.sum(-y * np.log(a) - (1 - y) * np.log(1 - a)))
    if cost == "quadratic":
        return float(0.5 * np.sum((a - y) ** 2))
    return float(-np.log(a[label, 0]))
