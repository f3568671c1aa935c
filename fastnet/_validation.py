"""Argument checks shared by the API and the CLI: every message names the
argument and what was expected, and nothing invalid reaches a kernel."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

import numpy as np

from fastnet._config import DTYPES
from fastnet.kernels.mlp import all_finite


def check_choice(value, choices: Iterable[str], argname: str, what: str) -> str:
    """Return `value` if it is one of `choices`, else raise ValueError listing
    them and suggesting the closest."""
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    msg = f"unknown {what} {value!r} for {argname}; expected one of: {', '.join(choices)}"
    close = difflib.get_close_matches(str(value), choices, n=1)
    if close:
        msg += f"; did you mean {close[0]!r}?"
    raise ValueError(msg)


def check_dtype(dtype) -> np.dtype:
    """float32 or float64, by name or dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in DTYPES:
        names = ", ".join(d.name for d in DTYPES)
        raise ValueError(f"dtype must be one of {names}, got {dtype!r}")
    return dt


def check_number(value, argname: str, *, low=None, low_open=False, integer=False):
    """A finite real (or integer) number not below `low` (strictly above if
    `low_open`)."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(
        value, (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{argname} must be {kind}, got {value!r}")
    if not integer and not math.isfinite(value):
        raise ValueError(f"{argname} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        sign = ">" if low_open else ">="
        raise ValueError(f"{argname} must be {sign} {low}, got {value!r}")
    return int(value) if integer else float(value)


def check_data(
    data,
    argname: str,
    n_in: int,
    n_out: int,
    dtype: np.dtype,
    also=(),
    check_finite=True,
    copy_readonly=True,
):
    """Validate ``(X, y)`` and return them ready for the kernels.

    Parameters
    ----------
    data : tuple (X, y)
        X shaped (n, n_in), real numbers; y shaped (n,), integer labels in
        ``[0, n_out)``.
    argname : str
        Name used in error messages (e.g. ``"training_data"``).
    n_in, n_out : int
        The network's input width and number of classes.
    dtype : numpy dtype
        The dtype `X` is converted to.
    also : tuple of numpy dtypes
        Further dtypes `X` may keep unconverted.
    check_finite : bool
        Reject NaN and infinite inputs here. Evaluation passes False and lets
        its kernel flag them (:func:`fastnet.kernels.mlp.evaluate`), saving a
        pass over `X`; it then calls :func:`reject_nonfinite` itself.
    copy_readonly : bool
        Copy a read-only `X` (Numba compiles read-only arrays as a type of
        their own). Training passes False: its kernels read the data through
        its non-zero index only.

    Returns
    -------
    X : ndarray of `dtype` (or of one in `also`), C-contiguous and writeable
        unless `copy_readonly` is False (copied only if needed)
    y : ndarray of int64

    Raises
    ------
    TypeError, ValueError
        With a message naming `argname` and what was expected.
    """
    try:
        X, y = data
    except (TypeError, ValueError):
        raise TypeError(
            f"{argname} must be a pair (X, y) of inputs shaped (n, {n_in}) and integer labels"
        ) from None
    X = np.asarray(X)
    y = np.asarray(y)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{argname}: X must hold real numbers, got dtype {X.dtype}")
    if np.iscomplexobj(X):
        raise TypeError(f"{argname}: X must hold real numbers, got complex dtype {X.dtype}")
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"{argname}: X must be shaped (n, {n_in}) for this network, got {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{argname} is empty: X has no rows")
    if y.ndim != 1:
        raise ValueError(
            f"{argname}: y must be 1-D integer class labels shaped ({X.shape[0]},), got shape "
            f"{y.shape} (one-hot targets are not accepted: pass y.argmax(axis=1))"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{argname}: y must hold integer class labels, got dtype {y.dtype}")
    if len(y) != len(X):
        raise ValueError(f"{argname}: X has {len(X)} rows but y has {len(y)} labels")
    if y.min() < 0 or y.max() >= n_out:
        raise ValueError(
            f"{argname}: labels must be in [0, {n_out - 1}] for {n_out} output neurons, "
            f"got values from {y.min()} to {y.max()}"
        )
    X = np.ascontiguousarray(X, dtype=X.dtype if X.dtype in also else dtype)
    if copy_readonly and not X.flags.writeable:
        # Read-only arrays are a separate Numba type: copy rather than compile again.
        X = X.copy()
    if check_finite:
        reject_nonfinite(X, argname, dtype)
    y = np.ascontiguousarray(y, dtype=np.int64)
    if not y.flags.writeable:
        y = y.copy()
    return X, y


def nonfinite_error(argname: str, X_dtype=None, dtype=None) -> ValueError:
    """The error for data holding NaN or infinite values, naming `argname`;
    for data of `X_dtype` read in a narrower `dtype` (float64 data, float32
    network), it says that values beyond that dtype's range count too."""
    beyond = ""
    if X_dtype is not None and dtype is not None:
        dtype = np.dtype(dtype)
        if np.dtype(X_dtype).itemsize > dtype.itemsize:
            top = float(np.finfo(dtype).max)
            beyond = f", or values beyond {dtype.name}'s range (+-{top:.3g}, the network's dtype)"
    return ValueError(f"{argname}: X contains NaN or infinite values{beyond}")


def reject_nonfinite(X, argname: str, dtype=None) -> None:
    """Raise ValueError naming `argname` if `X` holds NaN or infinite values
    in `dtype` (default `X`'s own): float64 entries overflowing float32 are
    infinite there."""
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    if not all_finite(X, np.zeros(0, dtype)):
        raise nonfinite_error(argname, X.dtype, dtype)
