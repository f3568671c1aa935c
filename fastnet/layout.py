"""Where every weight and bias lives: the one home of the buffer layout.

A network's parameters are ONE contiguous 1-D array ``params``. All weight
matrices come first, layer after layer; all bias vectors follow. Keeping the
weights together lets the L2 decay run as one loop over ``params[:n_weights]``.

Each weight matrix is stored input-major: ``w[l].T``, shaped ``(n_in, n_out)``,
row-major. Row ``k`` holds every weight leaving input ``k``, so the forward pass
adds ``a[k] * row`` for each non-zero input (81% of MNIST pixels are zero and are
skipped) and the per-output sums run in input order without reassociation. The
public ``weights[l]`` is the transposed view, shaped ``(n_out, n_in)`` as in the
book.

Per-sample work rows (z, activations, deltas) hold every non-input layer side
by side, at the offsets in the ``Z_OFF`` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastnet.kernels import codes


def check_sizes(sizes) -> tuple[int, ...]:
    """Validate layer sizes and return them as a tuple of Python ints.

    Parameters
    ----------
    sizes : sequence of int
        Neurons per layer, input layer first, e.g. ``[784, 30, 10]``.

    Raises
    ------
    TypeError
        If `sizes` is not a sequence of integers.
    ValueError
        If there are fewer than two layers or a width is below 1.
    """
    if isinstance(sizes, str | bytes) or not hasattr(sizes, "__len__"):
        raise TypeError(
            f"sizes must be a sequence of layer widths like [784, 30, 10], got {sizes!r}"
        )
    out = []
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, int | np.integer):
            raise TypeError(f"sizes[{i}] must be an integer, got {s!r}")
        if s < 1:
            raise ValueError(f"sizes[{i}] must be at least 1, got {s}")
        out.append(int(s))
    if len(out) < 2:
        raise ValueError(f"sizes needs at least two layers (input and output), got {list(out)}")
    return tuple(out)


@dataclass(frozen=True)
class Layout:
    """Offsets of every weight and bias view in a flat parameter buffer.

    Parameters
    ----------
    sizes : sequence of int
        Neurons per layer, input first.

    Attributes
    ----------
    sizes : tuple of int
    n_layers : int
        Number of weight layers, ``len(sizes) - 1``.
    n_weights, n_biases, n_params : int
        Counts in the flat buffer; weights occupy ``params[:n_weights]``.
    n_z : int
        Length of a work row (z, activations or deltas), ``sum(sizes[1:])``.
    table : ndarray of int64, shape (n_layers, codes.N_COLUMNS)
        The per-layer offsets the kernels read (columns named in
        :mod:`fastnet.kernels.codes`).

    Examples
    --------
    >>> lay = Layout([784, 30, 10])
    >>> lay.n_weights, lay.n_params
    (23820, 23860)
    """

    sizes: tuple[int, ...]
    table: np.ndarray = field(init=False, repr=False, compare=False)

    def __init__(self, sizes):
        object.__setattr__(self, "sizes", check_sizes(sizes))
        n_layers = len(self.sizes) - 1
        table = np.zeros((n_layers, codes.N_COLUMNS), dtype=np.int64)
        w_off = 0
        z_off = 0
        for layer in range(n_layers):
            n_in, n_out = self.sizes[layer], self.sizes[layer + 1]
            table[layer, codes.N_IN] = n_in
            table[layer, codes.N_OUT] = n_out
            table[layer, codes.W_OFF] = w_off
            table[layer, codes.Z_OFF] = z_off
            w_off += n_in * n_out
            z_off += n_out
        b_off = w_off
        for layer in range(n_layers):
            table[layer, codes.B_OFF] = b_off
            b_off += self.sizes[layer + 1]
        table.setflags(write=False)
        object.__setattr__(self, "table", table)

    def __reduce__(self):
        # Rebuilt from the sizes, so a copied or unpickled layout's table is
        # read-only too: a writeable one is another Numba type, and every
        # driver would compile again for a network loaded from a pickle or
        # copied (measured: 15 s for the float64 serial driver alone, cold).
        return (type(self), (self.sizes,))

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_weights(self) -> int:
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    @property
    def n_biases(self) -> int:
        return sum(self.sizes[1:])

    @property
    def n_params(self) -> int:
        return self.n_weights + self.n_biases

    @property
    def n_z(self) -> int:
        return sum(self.sizes[1:])

    def weight_views(self, params: np.ndarray) -> list[np.ndarray]:
        """Per-layer weight matrices, shaped (n_out, n_in) as in the book, as
        views of `params` (Fortran-ordered: the storage is input-major)."""
        views = []
        for row in self.table:
            start, n_in, n_out = row[codes.W_OFF], row[codes.N_IN], row[codes.N_OUT]
            views.append(params[start : start + n_in * n_out].reshape(n_in, n_out).T)
        return views

    def bias_views(self, params: np.ndarray) -> list[np.ndarray]:
        """Per-layer bias vectors, shaped (n_out,), as views of `params`."""
        return [
            params[row[codes.B_OFF] : row[codes.B_OFF] + row[codes.N_OUT]] for row in self.table
        ]
