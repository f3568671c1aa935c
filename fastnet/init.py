"""In-place weight and bias initializers for fully-connected sigmoid networks.

Why the scale matters (Nielsen, ch. 3): a hidden neuron with ``n_in`` inputs
computes ``z = sum_j w_j x_j + b``. With N(0, 1) weights the variance of ``z``
grows with the number of active inputs (500 active inputs give ``std(z) =
sqrt(501) ~ 22.4``), so ``sigmoid(z)`` sits at 0 or 1, its derivative is tiny and
the weights learn slowly. Scaling the weights to ``std = 1/sqrt(n_in)`` keeps
``z`` of order one (``sqrt(3/2) ~ 1.22`` in the same example) and avoids the
saturation.

Conventions
-----------
A layer's weight matrix has shape ``(n_out, n_in)``, so ``fan_in = shape[1]``
and ``fan_out = shape[0]``; its biases have shape ``(n_out,)``. The arrays are
float32 or float64 views into a network's single parameter buffer, so every
initializer *fills its array in place* and returns that same array.

Every initializer has the signature ``name_(array, rng, fan_in, fan_out,
**options)``. Randomness comes only from the :class:`numpy.random.Generator`
passed in. Random draws are always made in float64, in C (row-major) order of
the array's logical index, and then scaled; a float32 array receives those
float64 values rounded to nearest. Hence the values depend only on the
generator state, the shape and the options -- not on the memory layout -- and a
float32 network and a float64 network built from the same seed start from the
same point to within float32 rounding.

The schemes are collected in :data:`INITIALIZERS` (name -> :class:`Initializer`);
:func:`get_initializer` looks one up, :func:`register_initializer` adds a user
scheme, and :func:`initialize_layer_` fills one layer's weights and biases.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastnet._config import DTYPES

__all__ = [
    "INITIALIZERS",
    "Initializer",
    "calculate_gain",
    "constant_",
    "default_",
    "fan_in_fan_out",
    "get_initializer",
    "he_normal_",
    "he_uniform_",
    "initialize_layer_",
    "large_",
    "lecun_normal_",
    "lecun_uniform_",
    "orthogonal_",
    "register_initializer",
    "small_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

#: Default standard deviation of the ``small`` scheme (UFLDL's epsilon).
SMALL_EPS = 0.01

_BOOK = "Nielsen, M. A., Neural Networks and Deep Learning, ch. 3, Determination Press, 2015."
_UFLDL = "Ng, A. et al., UFLDL Tutorial, 'Backpropagation Algorithm', Stanford University."
_GLOROT = (
    "Glorot, X. and Bengio, Y., 'Understanding the difficulty of training deep "
    "feedforward neural networks', AISTATS 2010."
)
_HE = (
    "He, K., Zhang, X., Ren, S. and Sun, J., 'Delving Deep into Rectifiers: Surpassing "
    "Human-Level Performance on ImageNet Classification', ICCV 2015."
)
_LECUN = (
    "LeCun, Y., Bottou, L., Orr, G. B. and Mueller, K.-R., 'Efficient BackProp', in "
    "Neural Networks: Tricks of the Trade, Springer, 1998."
)
_SAXE = (
    "Saxe, A. M., McClelland, J. L. and Ganguli, S., 'Exact solutions to the nonlinear "
    "dynamics of learning in deep linear neural networks', ICLR 2014; sign correction "
    "from Mezzadri, F., 'How to generate random matrices from the classical compact "
    "groups', Notices of the AMS 54, 2007."
)


# --------------------------------------------------------------------------- checks


def _check_array(array, argname: str = "array") -> None:
    """Raise TypeError unless ``array`` is a writeable float32/float64 ndarray."""
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"{argname} must be a numpy.ndarray of float32 or float64, got {type(array).__name__}"
        )
    if array.dtype not in DTYPES:
        raise TypeError(
            f"{argname} must have dtype float32 or float64 (native byte order), got {array.dtype}"
        )
    if not array.flags.writeable:
        raise TypeError(f"{argname} must be writeable (initializers fill it in place)")


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )


def _check_fan(value, argname: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argname} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{argname} must be >= 1, got {value}")
    return int(value)


def _check_positive(value, argname: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argname} must be a real number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{argname} must be finite and > 0, got {value}")
    return value


def _check_common(array, rng, fan_in, fan_out) -> tuple[int, int]:
    _check_array(array)
    _check_rng(rng)
    return _check_fan(fan_in, "fan_in"), _check_fan(fan_out, "fan_out")


# ------------------------------------------------------------------- fill helpers


def _normal_(array: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Fill with N(0, std^2): float64 standard normals in C order, times ``std``."""
    if array.dtype == np.float64 and array.flags.c_contiguous and array.flags.aligned:
        rng.standard_normal(out=array)
        array *= std
    else:
        tmp = rng.standard_normal(array.shape)
        tmp *= std
        array[...] = tmp
    return array


def _uniform_(array: np.ndarray, rng: np.random.Generator, bound: float) -> np.ndarray:
    """Fill with U[-bound, bound]: float64 ``random()`` in C order, ``u*2*bound - bound``."""
    if array.dtype == np.float64 and array.flags.c_contiguous and array.flags.aligned:
        rng.random(out=array)
        array *= 2.0 * bound
        array -= bound
    else:
        tmp = rng.random(array.shape)
        tmp *= 2.0 * bound
        tmp -= bound
        array[...] = tmp
    return array


# ------------------------------------------------------------------------- gains


_GAINS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain (std multiplier) for a nonlinearity.

    The gain compensates for how much the nonlinearity shrinks the variance of
    its input, so that a scheme's ``std = gain * ...`` keeps the variance of
    the pre-activations roughly constant from layer to layer.

    Citation: He, Zhang, Ren and Sun, 'Delving Deep into Rectifiers', ICCV 2015
    (ReLU and leaky ReLU); the tanh value 5/3 follows PyTorch's convention.

    Parameters
    ----------
    nonlinearity : {'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu'}
        Name of the nonlinearity.
    param : float, optional
        Negative slope of ``'leaky_relu'`` (default 0.01). Must be omitted for
        the other nonlinearities.

    Returns
    -------
    float
        1 for 'linear' and 'sigmoid', 5/3 for 'tanh', sqrt(2) for 'relu',
        sqrt(2 / (1 + param**2)) for 'leaky_relu'.

    Raises
    ------
    ValueError
        If ``nonlinearity`` is unknown (the message lists the valid names), or
        ``param`` is given for a nonlinearity without a parameter.
    TypeError
        If ``param`` is not a real number.

    Examples
    --------
    >>> calculate_gain("sigmoid")
    1.0
    >>> round(calculate_gain("relu"), 6)
    1.414214
    """
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"unknown nonlinearity {nonlinearity!r}; expected one of: {', '.join(_GAINS)}"
        )
    if nonlinearity != "leaky_relu" and param is not None:
        raise ValueError(f"nonlinearity {nonlinearity!r} takes no param, got {param!r}")
    if nonlinearity in ("linear", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    slope = 0.01 if param is None else param
    if isinstance(slope, bool) or not isinstance(slope, numbers.Real):
        raise TypeError(f"leaky_relu param (negative slope) must be a real number, got {slope!r}")
    slope = float(slope)
    if not math.isfinite(slope):
        raise ValueError(f"leaky_relu param (negative slope) must be finite, got {slope}")
    return math.sqrt(2.0 / (1.0 + slope * slope))


def fan_in_fan_out(shape) -> tuple[int, int]:
    """Fan-in and fan-out of a weight matrix of shape ``(n_out, n_in)``.

    Citation: Nielsen, Neural Networks and Deep Learning, ch. 3, 2015 (the
    weight matrix ``w[j, k]`` connects input ``k`` to neuron ``j``).

    Parameters
    ----------
    shape : tuple of int
        Shape ``(n_out, n_in)`` of a layer's weight matrix (or the matrix
        itself's ``.shape``).

    Returns
    -------
    fan_in, fan_out : int
        ``(shape[1], shape[0])``.

    Raises
    ------
    ValueError
        If ``shape`` is not 2-D.

    Examples
    --------
    >>> fan_in_fan_out((30, 784))
    (784, 30)
    """
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(
            f"fan_in_fan_out needs a 2-D (n_out, n_in) weight shape, got {shape} ({len(shape)}-D)"
        )
    return int(shape[1]), int(shape[0])


# ---------------------------------------------------------------- initializers


def large_(array: np.ndarray, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Fill with N(0, 1): the book's old ('large') weight initialization.

    Each entry is an independent standard normal, as in network2's
    ``large_weight_initializer`` (used for weights and biases alike). With many
    inputs the weighted input ``z`` is broad and sigmoid neurons saturate.

    Citation: Nielsen, Neural Networks and Deep Learning, ch. 1 and 3, 2015.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, any shape (weights ``(n_out, n_in)`` or biases
        ``(n_out,)``). Fills `array` in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` standard normals.
    fan_in, fan_out : int
        Validated (>= 1) but unused.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1.

    Examples
    --------
    >>> w = np.empty((30, 784)); large_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    _check_common(array, rng, fan_in, fan_out)
    return _normal_(array, rng, 1.0)


def default_(array: np.ndarray, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Fill with N(0, 1/fan_in): the book's new (default) weight initialization.

    Weights get ``std = 1/sqrt(n_in)`` so the weighted input stays of order one
    and sigmoid neurons do not saturate; network2's
    ``default_weight_initializer``. Its default biases are N(0, 1) ('large'),
    as in the book. Same draws as :func:`lecun_normal_`.

    Citation: Nielsen, Neural Networks and Deep Learning, ch. 3, 2015.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, usually weights ``(n_out, n_in)``. Fills `array`
        in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` standard normals.
    fan_in : int
        Number of inputs per neuron, ``n_in`` (>= 1).
    fan_out : int
        Validated (>= 1) but unused.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1.

    Examples
    --------
    >>> w = np.empty((30, 784)); default_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, _ = _check_common(array, rng, fan_in, fan_out)
    return _normal_(array, rng, 1.0 / math.sqrt(fan_in))


def small_(
    array: np.ndarray,
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    *,
    eps: float = SMALL_EPS,
) -> np.ndarray:
    """Fill with N(0, eps^2): small random values near zero.

    Small but distinct values break the symmetry between neurons while
    keeping every neuron away from saturation; the recipe quoted in the
    seed text for both weights and biases (eps = 0.01).

    Citation: Ng et al., UFLDL Tutorial, 'Backpropagation Algorithm', Stanford.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, any shape. Fills `array` in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` standard normals.
    fan_in, fan_out : int
        Validated (>= 1) but unused.
    eps : float, default 0.01
        Standard deviation (finite, > 0).

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, `rng` is not a
        Generator, or `eps` is not a real number.
    ValueError
        If `fan_in` or `fan_out` < 1, or `eps` is not finite and positive.

    Examples
    --------
    >>> w = np.empty((30, 784)); small_(w, np.random.default_rng(0), 784, 30, eps=0.01) is w
    True
    """
    _check_common(array, rng, fan_in, fan_out)
    return _normal_(array, rng, _check_positive(eps, "eps"))


def uniform_(array: np.ndarray, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Fill with U[-1/sqrt(fan_in), 1/sqrt(fan_in)].

    The 'commonly used heuristic' (standard initialization) of Glorot and
    Bengio's eq. (1); variance ``1/(3 fan_in)``. Also the default for biases
    of this scheme, using the layer's fan_in.

    Citation: Glorot, X. and Bengio, Y., 'Understanding the difficulty of
    training deep feedforward neural networks', AISTATS 2010, eq. (1).

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, any shape. Fills `array` in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` float64 uniforms.
    fan_in : int
        Number of inputs per neuron (>= 1).
    fan_out : int
        Validated (>= 1) but unused.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1.

    Examples
    --------
    >>> w = np.empty((30, 784)); uniform_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, _ = _check_common(array, rng, fan_in, fan_out)
    return _uniform_(array, rng, 1.0 / math.sqrt(fan_in))


def zeros_(array: np.ndarray, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Fill with 0.0.

    Symmetric: every neuron of a layer gets the same weights, receives the
    same gradient and stays identical to the others, so a network with zero
    weights cannot learn distinct hidden features. Fine (and common) for
    biases. Consumes no randomness.

    Citation: Nielsen, Neural Networks and Deep Learning, ch. 3, 2015 (zero
    biases).

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, any shape. Fills `array` in place.
    rng : numpy.random.Generator
        Validated but not used (no draws).
    fan_in, fan_out : int
        Validated (>= 1) but unused.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1.

    Examples
    --------
    >>> b = np.empty(30); float(zeros_(b, np.random.default_rng(0), 784, 30).max())
    0.0
    """
    _check_common(array, rng, fan_in, fan_out)
    array[...] = 0.0
    return array


def constant_(
    array: np.ndarray,
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    *,
    value: float = 0.0,
) -> np.ndarray:
    """Fill with a constant ``value`` (default 0.0, i.e. the same as 'zeros').

    Symmetric, like :func:`zeros_`: useful to demonstrate that identical
    weights never break the symmetry between neurons. Consumes no randomness.

    Citation: Nielsen, Neural Networks and Deep Learning, ch. 3, 2015.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, any shape. Fills `array` in place.
    rng : numpy.random.Generator
        Validated but not used (no draws).
    fan_in, fan_out : int
        Validated (>= 1) but unused.
    value : float, default 0.0
        The fill value (finite; rounded to the array's dtype).

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, `rng` is not a
        Generator, or `value` is not a real number.
    ValueError
        If `fan_in` or `fan_out` < 1, or `value` is not finite.

    Examples
    --------
    >>> w = np.empty((30, 784)); _ = constant_(w, np.random.default_rng(0), 784, 30, value=0.5)
    >>> float(w.min()), float(w.max())
    (0.5, 0.5)
    """
    _check_common(array, rng, fan_in, fan_out)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"value must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {value}")
    array[...] = float(value)
    return array


def xavier_normal_(
    array: np.ndarray,
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    *,
    gain: float = 1.0,
) -> np.ndarray:
    """Fill with N(0, std^2), ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Glorot/Xavier initialization: a compromise between keeping the forward
    activations' and the backward gradients' variances constant.

    Citation: Glorot, X. and Bengio, Y., 'Understanding the difficulty of
    training deep feedforward neural networks', AISTATS 2010.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, usually weights ``(n_out, n_in)``. Fills `array`
        in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` standard normals.
    fan_in, fan_out : int
        ``n_in`` and ``n_out`` of the layer (>= 1).
    gain : float, default 1.0
        Multiplier (finite, > 0); see :func:`calculate_gain`.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, `rng` is not a
        Generator, or `gain` is not a real number.
    ValueError
        If `fan_in` or `fan_out` < 1, or `gain` is not finite and positive.

    Examples
    --------
    >>> w = np.empty((30, 784)); xavier_normal_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, fan_out = _check_common(array, rng, fan_in, fan_out)
    gain = _check_positive(gain, "gain")
    return _normal_(array, rng, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform_(
    array: np.ndarray,
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    *,
    gain: float = 1.0,
) -> np.ndarray:
    """Fill with U[-bound, bound], ``bound = gain * sqrt(6 / (fan_in + fan_out))``.

    Glorot/Xavier 'normalized initialization' (their eq. (16)); the variance
    is ``gain^2 * 2 / (fan_in + fan_out)``, as for :func:`xavier_normal_`.

    Citation: Glorot, X. and Bengio, Y., 'Understanding the difficulty of
    training deep feedforward neural networks', AISTATS 2010, eq. (16).

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, usually weights ``(n_out, n_in)``. Fills `array`
        in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` float64 uniforms.
    fan_in, fan_out : int
        ``n_in`` and ``n_out`` of the layer (>= 1).
    gain : float, default 1.0
        Multiplier (finite, > 0); see :func:`calculate_gain`.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, `rng` is not a
        Generator, or `gain` is not a real number.
    ValueError
        If `fan_in` or `fan_out` < 1, or `gain` is not finite and positive.

    Examples
    --------
    >>> w = np.empty((30, 784)); xavier_uniform_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, fan_out = _check_common(array, rng, fan_in, fan_out)
    gain = _check_positive(gain, "gain")
    return _uniform_(array, rng, gain * math.sqrt(6.0 / (fan_in + fan_out)))


def _he_std(fan_in: int, fan_out: int, nonlinearity: str, a, mode: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    if a is not None and nonlinearity != "leaky_relu":
        raise ValueError(
            f"a (negative slope) is only used with nonlinearity='leaky_relu', "
            f"got a={a!r} with nonlinearity={nonlinearity!r}"
        )
    gain = calculate_gain(nonlinearity, a)
    fan = fan_in if mode == "fan_in" else fan_out
    return gain / math.sqrt(fan)


def he_normal_(
    array: np.ndarray,
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    *,
    nonlinearity: str = "relu",
    a: float | None = None,
    mode: str = "fan_in",
) -> np.ndarray:
    """Fill with N(0, std^2), ``std = gain / sqrt(fan)`` (He/Kaiming normal).

    ``gain = calculate_gain(nonlinearity, a)``: sqrt(2) for the default ReLU,
    which makes ``std = sqrt(2 / fan_in)``. With ``nonlinearity='sigmoid'`` it
    equals :func:`lecun_normal_`.

    Citation: He, K., Zhang, X., Ren, S. and Sun, J., 'Delving Deep into
    Rectifiers: Surpassing Human-Level Performance on ImageNet
    Classification', ICCV 2015.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, usually weights ``(n_out, n_in)``. Fills `array`
        in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` standard normals.
    fan_in, fan_out : int
        ``n_in`` and ``n_out`` of the layer (>= 1).
    nonlinearity : str, default 'relu'
        Passed to :func:`calculate_gain`.
    a : float, optional
        Negative slope, only with ``nonlinearity='leaky_relu'`` (default 0.01).
    mode : {'fan_in', 'fan_out'}, default 'fan_in'
        Preserve the forward ('fan_in') or backward ('fan_out') variance.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1, or `nonlinearity`, `a` or `mode` is
        invalid.

    Examples
    --------
    >>> w = np.empty((30, 784)); he_normal_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, fan_out = _check_common(array, rng, fan_in, fan_out)
    return _normal_(array, rng, _he_std(fan_in, fan_out, nonlinearity, a, mode))


def he_uniform_(
    array: np.ndarray,
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    *,
    nonlinearity: str = "relu",
    a: float | None = None,
    mode: str = "fan_in",
) -> np.ndarray:
    """Fill with U[-bound, bound], ``bound = gain * sqrt(3 / fan)`` (He/Kaiming uniform).

    The uniform distribution with the variance of :func:`he_normal_`,
    ``gain^2 / fan``.

    Citation: He, K., Zhang, X., Ren, S. and Sun, J., 'Delving Deep into
    Rectifiers: Surpassing Human-Level Performance on ImageNet
    Classification', ICCV 2015.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, usually weights ``(n_out, n_in)``. Fills `array`
        in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` float64 uniforms.
    fan_in, fan_out : int
        ``n_in`` and ``n_out`` of the layer (>= 1).
    nonlinearity : str, default 'relu'
        Passed to :func:`calculate_gain`.
    a : float, optional
        Negative slope, only with ``nonlinearity='leaky_relu'`` (default 0.01).
    mode : {'fan_in', 'fan_out'}, default 'fan_in'
        Preserve the forward ('fan_in') or backward ('fan_out') variance.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1, or `nonlinearity`, `a` or `mode` is
        invalid.

    Examples
    --------
    >>> w = np.empty((30, 784)); he_uniform_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, fan_out = _check_common(array, rng, fan_in, fan_out)
    std = _he_std(fan_in, fan_out, nonlinearity, a, mode)
    return _uniform_(array, rng, math.sqrt(3.0) * std)


def lecun_normal_(
    array: np.ndarray, rng: np.random.Generator, fan_in: int, fan_out: int
) -> np.ndarray:
    """Fill with N(0, 1/fan_in) (LeCun normal).

    Unit-variance weighted inputs for unit-variance inputs. The same draws
    as :func:`default_`; the schemes differ only in their default biases
    (zeros here, N(0, 1) there).

    Citation: LeCun, Y., Bottou, L., Orr, G. B. and Mueller, K.-R., 'Efficient
    BackProp', in Neural Networks: Tricks of the Trade, Springer, 1998, sec. 4.6.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, usually weights ``(n_out, n_in)``. Fills `array`
        in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` standard normals.
    fan_in : int
        Number of inputs per neuron (>= 1).
    fan_out : int
        Validated (>= 1) but unused.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1.

    Examples
    --------
    >>> w = np.empty((30, 784)); lecun_normal_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, _ = _check_common(array, rng, fan_in, fan_out)
    return _normal_(array, rng, 1.0 / math.sqrt(fan_in))


def lecun_uniform_(
    array: np.ndarray, rng: np.random.Generator, fan_in: int, fan_out: int
) -> np.ndarray:
    """Fill with U[-sqrt(3/fan_in), sqrt(3/fan_in)] (LeCun uniform, variance 1/fan_in).

    Citation: LeCun, Y., Bottou, L., Orr, G. B. and Mueller, K.-R., 'Efficient
    BackProp', in Neural Networks: Tricks of the Trade, Springer, 1998, sec. 4.6.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64, usually weights ``(n_out, n_in)``. Fills `array`
        in place.
    rng : numpy.random.Generator
        Source of randomness; draws ``array.size`` float64 uniforms.
    fan_in : int
        Number of inputs per neuron (>= 1).
    fan_out : int
        Validated (>= 1) but unused.

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, or `rng` is not
        a Generator.
    ValueError
        If `fan_in` or `fan_out` < 1.

    Examples
    --------
    >>> w = np.empty((30, 784)); lecun_uniform_(w, np.random.default_rng(0), 784, 30) is w
    True
    """
    fan_in, _ = _check_common(array, rng, fan_in, fan_out)
    return _uniform_(array, rng, math.sqrt(3.0 / fan_in))


def orthogonal_(
    array: np.ndarray,
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    *,
    gain: float = 1.0,
) -> np.ndarray:
    """Fill a 2-D array with a (semi-)orthogonal matrix times ``gain``.

    Draws a float64 Gaussian matrix of shape ``(max(n_out, n_in), min(n_out,
    n_in))``, takes its reduced QR decomposition and multiplies each column of
    Q by the sign of the matching diagonal entry of R, which makes Q uniformly
    (Haar) distributed. The result is Q transposed for a wide matrix, so that
    ``W @ W.T = gain^2 I`` when ``n_out <= n_in`` and ``W.T @ W = gain^2 I``
    when ``n_out > n_in``. Entry variance is ``gain^2 / max(n_out, n_in)``.
    The shape is taken from `array`; `fan_in` and `fan_out` are only validated.

    Only 2-D arrays are accepted: a 1-D bias vector raises ValueError (the
    scheme's default biases are zeros).

    Citation: Saxe, A. M., McClelland, J. L. and Ganguli, S., 'Exact solutions
    to the nonlinear dynamics of learning in deep linear neural networks',
    ICLR 2014; sign correction: Mezzadri, F., 'How to generate random matrices
    from the classical compact groups', Notices of the AMS 54, 2007.

    Parameters
    ----------
    array : numpy.ndarray
        float32 or float64 weights, shape ``(n_out, n_in)``. Fills `array` in
        place.
    rng : numpy.random.Generator
        Source of randomness; draws ``n_out * n_in`` standard normals.
    fan_in, fan_out : int
        Validated (>= 1) but unused (the shape of `array` is used).
    gain : float, default 1.0
        Multiplier (finite, > 0).

    Returns
    -------
    numpy.ndarray
        `array` itself.

    Raises
    ------
    TypeError
        If `array` is not a writeable float32/float64 ndarray, `rng` is not a
        Generator, or `gain` is not a real number.
    ValueError
        If `array` is not 2-D, `fan_in` or `fan_out` < 1, or `gain` is not
        finite and positive.

    Examples
    --------
    >>> w = np.empty((30, 784)); _ = orthogonal_(w, np.random.default_rng(0), 784, 30)
    >>> bool(np.allclose(w @ w.T, np.eye(30)))
    True
    """
    _check_common(array, rng, fan_in, fan_out)
    gain = _check_positive(gain, "gain")
    if array.ndim != 2:
        raise ValueError(
            f"orthogonal_ needs a 2-D (n_out, n_in) weight matrix, got shape {array.shape}; "
            "use 'zeros' (its default) or another scheme for 1-D biases"
        )
    n_out, n_in = array.shape
    if array.size == 0:
        return array
    gaussian = rng.standard_normal((max(n_out, n_in), min(n_out, n_in)))
    q, r = np.linalg.qr(gaussian)
    signs = np.sign(np.diagonal(r))
    signs[signs == 0.0] = 1.0
    q *= signs
    q *= gain
    array[...] = q.T if n_out < n_in else q
    return array


# --------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Initializer:
    """A named initialization scheme.

    Attributes
    ----------
    name : str
        Registry key.
    fill_ : callable
        ``fill_(array, rng, fan_in, fan_out, **options) -> array``; fills in
        place.
    bias : str
        Name of the scheme used for the biases when the user does not choose
        one.
    symmetric : bool
        True if every unit gets identical weights (zeros, constant): such a
        scheme cannot break the symmetry between hidden neurons.
    doc : str
        One-line description.
    citation : str
        Where the scheme comes from.
    """

    name: str
    fill_: Callable[..., np.ndarray]
    bias: str
    symmetric: bool = False
    doc: str = ""
    citation: str = ""

    def __call__(self, array, rng, fan_in, fan_out, **options):
        """Call :attr:`fill_`."""
        return self.fill_(array, rng, fan_in, fan_out, **options)


INITIALIZERS: dict[str, Initializer] = {}


def _builtin(name, fill_, bias, citation, *, symmetric=False) -> None:
    doc = inspect.getdoc(fill_).splitlines()[0]
    INITIALIZERS[name] = Initializer(name, fill_, bias, symmetric, doc, citation)


_builtin("large", large_, "large", _BOOK)
_builtin("default", default_, "large", _BOOK)
_builtin("small", small_, "small", _UFLDL)
_builtin("uniform", uniform_, "uniform", _GLOROT)
_builtin("zeros", zeros_, "zeros", _BOOK, symmetric=True)
_builtin("constant", constant_, "constant", _BOOK, symmetric=True)
_builtin("xavier_normal", xavier_normal_, "zeros", _GLOROT)
_builtin("xavier_uniform", xavier_uniform_, "zeros", _GLOROT)
_builtin("he_normal", he_normal_, "zeros", _HE)
_builtin("he_uniform", he_uniform_, "zeros", _HE)
_builtin("lecun_normal", lecun_normal_, "zeros", _LECUN)
_builtin("lecun_uniform", lecun_uniform_, "zeros", _LECUN)
_builtin("orthogonal", orthogonal_, "zeros", _SAXE)


def _unknown_name_message(name: str, argname: str) -> str:
    names = list(INITIALIZERS)
    msg = f"unknown initializer {name!r} for {argname}; expected one of: {', '.join(names)}"
    close = difflib.get_close_matches(name, names, n=3)
    if not close:
        close = [n for n in names if n.startswith(name)][:3] if name else []
    if close:
        msg += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return msg


def get_initializer(name: str | Initializer, argname: str = "init") -> Initializer:
    """Look up an initialization scheme by name.

    Citation: Nielsen, Neural Networks and Deep Learning, ch. 3, 2015 (the
    'large' and 'default' schemes).

    Parameters
    ----------
    name : str or Initializer
        A key of :data:`INITIALIZERS`, or an :class:`Initializer` (returned
        unchanged).
    argname : str, default 'init'
        Name of the user-facing argument, used in the error message.

    Returns
    -------
    Initializer

    Raises
    ------
    ValueError
        If `name` is not registered; the message names `argname`, lists the
        valid names and suggests the closest ones.
    TypeError
        If `name` is neither a str nor an Initializer.

    Examples
    --------
    >>> get_initializer("default").bias
    'large'
    """
    if isinstance(name, Initializer):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"{argname} must be an initializer name (str) or an Initializer, "
            f"got {type(name).__name__}"
        )
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(_unknown_name_message(name, argname)) from None


def register_initializer(
    name: str,
    fill_: Callable[..., np.ndarray],
    *,
    bias: str = "zeros",
    symmetric: bool = False,
    doc: str = "",
    citation: str = "",
    overwrite: bool = False,
) -> Initializer:
    """Add a user-defined scheme to :data:`INITIALIZERS`.

    Citation: none (user schemes); see the built-ins for the pattern.

    Parameters
    ----------
    name : str
        Registry key (non-empty, no whitespace).
    fill_ : callable
        ``fill_(array, rng, fan_in, fan_out, **options) -> array``. It must fill
        `array` in place, draw only from `rng`, and return `array`.
    bias : str, default 'zeros'
        Name of the scheme for the biases when none is chosen; a registered
        name or `name` itself.
    symmetric : bool, default False
        True if the scheme gives every unit identical weights.
    doc : str, optional
        One-line description; defaults to the first line of ``fill_.__doc__``.
    citation : str, optional
        Where the scheme comes from.
    overwrite : bool, default False
        Allow replacing an existing entry.

    Returns
    -------
    Initializer
        The registered entry.

    Raises
    ------
    ValueError
        If `name` is empty/contains whitespace, is already registered and
        `overwrite` is false, or `bias` names no registered scheme.
    TypeError
        If `name` or `bias` is not a str or `fill_` is not callable.

    Examples
    --------
    >>> def halves_(array, rng, fan_in, fan_out):
    ...     array[...] = 0.5
    ...     return array
    >>> register_initializer("halves", halves_, symmetric=True).bias
    'zeros'
    >>> del INITIALIZERS["halves"]
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"name must be non-empty without whitespace, got {name!r}")
    if not callable(fill_):
        raise TypeError(f"fill_ must be callable, got {type(fill_).__name__}")
    if not isinstance(bias, str):
        raise TypeError(f"bias must be an initializer name (str), got {type(bias).__name__}")
    if name in INITIALIZERS and not overwrite:
        raise ValueError(
            f"initializer {name!r} is already registered; pass overwrite=True to replace it"
        )
    if bias != name and bias not in INITIALIZERS:
        raise ValueError(_unknown_name_message(bias, "bias"))
    if not doc:
        fill_doc = inspect.getdoc(fill_)
        doc = fill_doc.splitlines()[0] if fill_doc else ""
    entry = Initializer(name, fill_, bias, bool(symmetric), doc, citation)
    INITIALIZERS[name] = entry
    return entry


# ------------------------------------------------------------------ one layer


def _option_names(fill_) -> set[str] | None:
    """Keyword options ``fill_`` accepts (beyond its first four parameters); None = any."""
    try:
        params = list(inspect.signature(fill_).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name
        for p in params[4:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def _select(options: dict, accepted: set[str] | None) -> dict:
    if accepted is None:
        return dict(options)
    return {k: v for k, v in options.items() if k in accepted}


def initialize_layer_(
    w: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    weights: str | Initializer = "default",
    biases: str | Initializer | None = None,
    **options,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill one layer's weights and biases in place.

    The weights get scheme `weights`; the biases get `biases`, or the weight
    scheme's own default (:attr:`Initializer.bias`, e.g. N(0, 1) for
    'default' as in the book). Both use the layer's ``fan_in, fan_out =
    fan_in_fan_out(w.shape)``.

    Draw order: all the weights first (C order of ``w``), then all the biases;
    this fixes the values for a given generator state. Each option is passed
    to every scheme whose ``fill_`` accepts it (e.g. ``eps`` reaches both the
    'small' weights and the 'small' biases; ``gain`` reaches only the
    'xavier_normal' weights, not their 'zeros' biases).

    Citation: Nielsen, Neural Networks and Deep Learning, ch. 3, 2015.

    Parameters
    ----------
    w : numpy.ndarray
        Weights, shape ``(n_out, n_in)``, float32 or float64. Filled in place.
    b : numpy.ndarray
        Biases, shape ``(n_out,)``, same dtype family. Filled in place.
    rng : numpy.random.Generator
        Source of randomness.
    weights : str or Initializer, default 'default'
        Weight scheme.
    biases : str or Initializer, optional
        Bias scheme; defaults to the weight scheme's ``bias``.
    **options
        Scheme options such as ``eps``, ``value``, ``gain``, ``nonlinearity``.

    Returns
    -------
    (w, b) : tuple of numpy.ndarray
        The same arrays.

    Raises
    ------
    TypeError
        If `w` or `b` is not a writeable float32/float64 ndarray (the message
        names it), `rng` is not a Generator, or an option is accepted by
        neither scheme.
    ValueError
        If a scheme name is unknown, `w` is not 2-D, or `b` is not
        ``(n_out,)``.

    Examples
    --------
    >>> w, b = np.empty((30, 784)), np.empty(30)
    >>> _ = initialize_layer_(w, b, np.random.default_rng(0), "default")
    """
    _check_array(w, "w")
    _check_array(b, "b")
    _check_rng(rng)
    fan_in, fan_out = fan_in_fan_out(w.shape)
    if b.shape != (fan_out,):
        raise ValueError(f"b must have shape ({fan_out},) to match w {w.shape}, got {b.shape}")
    w_init = get_initializer(weights, "weights")
    b_init = get_initializer(w_init.bias if biases is None else biases, "biases")
    w_ok = _option_names(w_init.fill_)
    b_ok = _option_names(b_init.fill_)
    if w_ok is not None and b_ok is not None:
        unused = sorted(set(options) - w_ok - b_ok)
        if unused:
            raise TypeError(
                f"unexpected option(s) {', '.join(map(repr, unused))} for "
                f"weights={w_init.name!r} and biases={b_init.name!r}"
            )
    w_init.fill_(w, rng, fan_in, fan_out, **_select(options, w_ok))
    b_init.fill_(b, rng, fan_in, fan_out, **_select(options, b_ok))
    return w, b
