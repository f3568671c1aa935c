"""Row-wise activations, their derivatives, output deltas and per-sample costs.

Each kernel works on one sample's row (a 1-D slice of a work buffer) and keeps
the row's dtype: float32 rows are computed in float32.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from fastnet._config import JIT_OPTIONS
from fastnet.kernels.codes import (
    CROSS_ENTROPY,
    LOG_LIKELIHOOD,
    QUADRATIC,
    RELU,
    SIGMOID,
    SOFTMAX,
    TANH,
)


@njit(**JIT_OPTIONS)
def activate_(code, z, a):
    """Write ``a = f(z)`` for the activation `code`.

    Parameters
    ----------
    code : int
        One of the activation codes in :mod:`fastnet.kernels.codes`.
    z : ndarray, shape (n,)
        Weighted inputs of one layer for one sample.
    a : ndarray, shape (n,)
        Output; overwritten.
    """
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    n = z.shape[0]
    if code == SIGMOID:
        for i in range(n):
            a[i] = one / (one + np.exp(-z[i]))
    elif code == TANH:
        for i in range(n):
            a[i] = np.tanh(z[i])
    elif code == RELU:
        for i in range(n):
            a[i] = z[i] if z[i] > zero else zero
    elif code == SOFTMAX:
        # Shift by the max so exp never overflows; the result is unchanged.
        zmax = z[0]
        for i in range(1, n):
            if z[i] > zmax:
                zmax = z[i]
        total = zero
        for i in range(n):
            a[i] = np.exp(z[i] - zmax)
            total += a[i]
        for i in range(n):
            a[i] = a[i] / total


@njit(**JIT_OPTIONS)
def scale_by_derivative_(code, z, a, delta):
    """Multiply ``delta`` by ``f'(z)`` for a hidden activation `code`.

    The derivative is computed from the stored activation where that is exact:
    ``sigmoid' = a (1 - a)``, ``tanh' = 1 - a**2``, ``relu' = [z > 0]``.

    Parameters
    ----------
    code : int
        SIGMOID, TANH or RELU.
    z, a : ndarray, shape (n,)
        The layer's weighted inputs and activations for one sample.
    delta : ndarray, shape (n,)
        Mutated in place.
    """
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    n = z.shape[0]
    if code == SIGMOID:
        for i in range(n):
            delta[i] = delta[i] * (a[i] * (one - a[i]))
    elif code == TANH:
        for i in range(n):
            delta[i] = delta[i] * (one - a[i] * a[i])
    elif code == RELU:
        for i in range(n):
            if not z[i] > zero:
                delta[i] = zero


@njit(**JIT_OPTIONS)
def output_delta_(cost, z, a, label, delta):
    """Write the output error ``delta = dC/dz`` of one sample.

    Cross-entropy with sigmoid outputs and log-likelihood with softmax outputs
    both give ``a - y`` (the book's eqs. (66) and (84)); quadratic cost gives
    ``(a - y) * sigma'(z)``. ``y`` is the one-hot vector of `label`.

    Parameters
    ----------
    cost : int
        CROSS_ENTROPY, QUADRATIC or LOG_LIKELIHOOD.
    z, a : ndarray, shape (n_out,)
        Output layer's weighted inputs and activations.
    label : int
        The sample's class, ``0 <= label < n_out``.
    delta : ndarray, shape (n_out,)
        Overwritten.
    """
    one = a.dtype.type(1)
    n = a.shape[0]
    for i in range(n):
        delta[i] = a[i]
    delta[label] = delta[label] - one
    if cost == QUADRATIC:
        for i in range(n):
            delta[i] = delta[i] * (a[i] * (one - a[i]))


@njit(**JIT_OPTIONS)
def softplus(t):
    """``log(1 + exp(t))`` without overflow, in float64."""
    return max(t, 0.0) + np.log1p(np.exp(-abs(t)))


@njit(**JIT_OPTIONS)
def sample_cost(cost, z, a, label):
    """Cost of one sample, in float64 whatever the row dtype.

    Cross-entropy is evaluated from ``z`` as ``y softplus(-z) + (1 - y)
    softplus(z)``, which equals the book's ``-y ln a - (1 - y) ln(1 - a)`` but
    stays finite when ``a`` rounds to 0 or 1 (where network2 needs
    ``nan_to_num``). Log-likelihood is ``logsumexp(z) - z[label]``.

    Parameters
    ----------
    cost : int
        CROSS_ENTROPY, QUADRATIC or LOG_LIKELIHOOD.
    z, a : ndarray, shape (n_out,)
    label : int

    Returns
    -------
    float
    """
    n = a.shape[0]
    c = 0.0
    if cost == CROSS_ENTROPY:
        for i in range(n):
            zi = float(z[i])
            c += softplus(-zi) if i == label else softplus(zi)
    elif cost == QUADRATIC:
        for i in range(n):
            d = float(a[i]) - (1.0 if i == label else 0.0)
            c += 0.5 * d * d
    elif cost == LOG_LIKELIHOOD:
        zmax = float(z[0])
        for i in range(1, n):
            zmax = max(zmax, float(z[i]))
        s = 0.0
        for i in range(n):
            s += np.exp(float(z[i]) - zmax)
        c = zmax + np.log(s) - float(z[label])
    return c
