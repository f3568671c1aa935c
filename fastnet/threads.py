"""Thread control: how many threads fastnet's parallel kernels use.

The default is every thread Numba was started with, which is all cores unless
``NUMBA_NUM_THREADS`` says otherwise (set it to 1 in each worker of a process
pool to avoid oversubscription).
"""

from __future__ import annotations

import functools

import numba
import numpy as np

_default: int | None = None


def max_threads() -> int:
    """Threads Numba was started with (``NUMBA_NUM_THREADS``, else all cores)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def set_num_threads(n: int | None) -> None:
    """Set the thread count used by networks whose ``n_threads`` is None.

    Parameters
    ----------
    n : int or None
        1 to :func:`max_threads`; None restores the default (all of them).

    Raises
    ------
    ValueError
        If `n` is out of range.
    """
    global _default
    _default = None if n is None else check_threads(n)


def check_threads(n) -> int:
    """Validate a thread count; raises ValueError naming the argument."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n_threads must be an integer, got {n!r}")
    if not 1 <= n <= max_threads():
        raise ValueError(
            f"n_threads must be between 1 and {max_threads()} (NUMBA_NUM_THREADS), got {n}"
        )
    return int(n)


def resolve_threads(n: int | None) -> int:
    """The thread count to use: `n`, else the value of :func:`set_num_threads`,
    else :func:`max_threads`."""
    if n is not None:
        return check_threads(n)
    return _default if _default is not None else max_threads()


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once (finding
    them took 1.3 ms, paid on every evaluation before it was kept)."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS np.dot calls in kernels)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_threads(n: int):
    """Context manager holding BLAS (which the dense driver calls, through
    SciPy) to `n` threads. The dense driver runs with ``blas_threads(1)``: it
    splits its own work over Numba's threads in a fixed way instead, so its
    bits do not depend on the thread count.

    Examples
    --------
    >>> with blas_threads(1):
    ...     pass
    """
    return _blas_controller().limit(limits=check_threads(n), user_api="blas")


def threading_layer() -> str:
    """Name of the Numba threading layer in use (``omp``, ``tbb`` or
    ``workqueue``); starts it if no parallel kernel has run yet."""
    # get_num_threads launches the layer, also under NUMBA_DISABLE_JIT, where
    # running a parallel kernel (as before) launched nothing and the second
    # threading_layer() call raised too.
    numba.get_num_threads()
    return numba.threading_layer()
