"""Row-wise activations, their derivatives, output deltas and per-sample costs.

Each kernel works on one sample's row (a 1-D slice of a work buffer) and keeps
the row's dtype: float32 rows are computed in float32.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from fastnet._config import INLINE_OPTIONS, JIT_OPTIONS
from fastnet.kernels.codes import (
    CROSS_ENTROPY,
    LOG_LIKELIHOOD,
    QUADRATIC,
    RELU,
    SIGMOID,
    SOFTMAX,
    TANH,
)


def exp_(x):
    """``exp(x)`` for the sigmoid: compiled, :func:`exp32` for float32 and
    Numba's ``np.exp`` (the C library's) for float64. That is NumPy's bits
    only where NumPy has no SIMD ``exp`` for the CPU: on an AVX-512 host
    NumPy's float64 ``exp`` differed in the last place on 4.6% of a million
    inputs (at most 1 ulp; the sigmoid at most 2 ulp). Without JIT,
    NumPy's for both: the pure-Python :func:`exp32` made the uncompiled test
    runs several times slower."""
    return np.exp(x)


@overload(exp_, jit_options=JIT_OPTIONS)
def _exp_(x):
    if x == types.float32:
        return lambda x: exp32(x)
    return lambda x: np.exp(x)


#: exp(r) on [-ln(2)/2, ln(2)/2] as a degree-6 polynomial: a least-squares fit
#: at 200 Chebyshev nodes, made once in float64
#: (``np.polynomial.polynomial.polyfit(nodes, np.exp(nodes), 6)``) and rounded
#: to float32 (kept as literals so that no machine's LAPACK changes a bit).
_EXP_POLY = (
    1.0,
    1.0,
    0.5,
    0.16666415333747864,
    0.041666217148303986,
    0.008375128731131554,
    0.001394858118146658,
)
#: ln(2) split so that ``k * _LN2_HI`` is exact for |k| < 2^15, and 1/ln(2).
_LN2_HI = 0.693359375
_LN2_LO = -0.00021219444170128554
_LOG2E = 1.4426950216293335
#: Inputs are clamped to [_EXP_LO, _EXP_HI] so that 2^k stays a normal float32.
_EXP_LO = -87.0
_EXP_HI = 88.0


def float32_from_bits(i):
    """The float32 whose bits are the int32 `i` (a bit cast, no conversion).

    Examples
    --------
    >>> float(float32_from_bits(127 << 23))
    1.0
    """
    return np.array(i, np.int32).view(np.float32)[()]


@intrinsic
def _llvm_bitcast_to_float32(typingctx, i):
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        bits = context.cast(builder, args[0], signature.args[0], types.int32)
        return builder.bitcast(bits, ir.FloatType())

    return types.float32(i), codegen


@overload(float32_from_bits, jit_options=JIT_OPTIONS)
def _float32_from_bits(i):
    return lambda i: _llvm_bitcast_to_float32(i)


@njit(**JIT_OPTIONS)
def exp32(x):
    """``exp(x)`` for a float32 `x`, in float32 arithmetic that LLVM
    vectorizes (libm's ``expf``, a function call, kept the sigmoid loops
    scalar).

    ``x = k ln2 + r`` with ``k`` the nearest integer to ``x / ln2``, ``exp(r)``
    from a polynomial (``_EXP_POLY``), times ``2^k`` built from its bits.
    Largest error on 2,000,001 points of [-87, 88]: 1.32 ulp (NumPy's float32
    ``exp``: 2.37 ulp); a sigmoid over a million float32 values took 1.1 ms
    against 5.7 ms with ``np.exp`` (/work/exp/vexp.py). Inputs outside
    [-87, 88] are clamped (the sigmoid then gives 1 or below 1e-38 rather
    than 0); NaN gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> float(exp32(np.float32(1.0)))  # doctest: +ELLIPSIS
    2.71828...
    """
    f = np.float32
    # NaN goes through the arithmetic as 0 (k stays defined); the last line
    # returns it.
    y = x if x == x else f(0)
    y = f(_EXP_HI) if y > f(_EXP_HI) else y
    y = f(_EXP_LO) if y < f(_EXP_LO) else y
    t = y * f(_LOG2E)
    k = np.int32(t + f(0.5)) if t >= f(0) else np.int32(t - f(0.5))
    n = f(k)
    r = (y - n * f(_LN2_HI)) - n * f(_LN2_LO)
    c0, c1, c2, c3, c4, c5, c6 = _EXP_POLY
    p = f(c6)
    p = p * r + f(c5)
    p = p * r + f(c4)
    p = p * r + f(c3)
    p = p * r + f(c2)
    p = p * r + f(c1)
    p = p * r + f(c0)
    e = p * float32_from_bits((k + np.int32(127)) << np.int32(23))
    return e if x == x else x


@njit(**INLINE_OPTIONS)
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
            a[i] = one / (one + exp_(-z[i]))
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


@njit(**INLINE_OPTIONS)
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


@njit(**INLINE_OPTIONS)
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
