"""Where every weight and bias lives: the one home of the buffer layout.

A network's parameters are ONE contiguous 1-D array ``params``. All weight
matrices come first, layer after layer; all bias vectors follow. Keeping the
weights together lets the L2 decay run as one loop over the weights.

Each weight matrix is stored input-major: ``w[l].T``, shaped ``(n_in, n_out)``,
row-major. Row ``k`` holds every weight leaving input ``k``, so the forward pass
adds ``a[k] * row`` for each non-zero input (81% of MNIST pixels are zero and are
skipped) and the per-output sums run in input order without reassociation. The
public ``weights[l]`` is the transposed view, shaped ``(n_out, n_in)`` as in the
book.

The first layer's rows may be padded with zeros to ``stride`` entries (a
multiple of ``ROW_PAD``, see :func:`row_stride`), and the next layer then
stores as many rows, the extra ones zero: the first layer's loops run over
whole padded rows, which LLVM vectorizes without a slow tail, and the dense
driver's products take whole padded blocks. The padding stays zero through
training: the kernels set the extra neurons' errors and activations to zero,
so their weights get zero gradients. ``params``
is the stored buffer, padding included; :meth:`Layout.flat` gives the
parameters without it (what files store).

Per-sample work rows (z, activations, deltas) hold every non-input layer side
by side, each in a slot of ``stride`` entries at the offsets in the ``Z_OFF``
column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastnet._config import BUFFER_ALIGN, ROW_PAD, ROW_PAD_MAX_SHARE
from fastnet.kernels import codes


def aligned_zeros(shape, dtype) -> np.ndarray:
    """``np.zeros(shape, dtype)`` starting on a multiple of BUFFER_ALIGN
    bytes: a C-contiguous, writeable view into a slightly larger buffer.

    Every parameter and work buffer the kernels read in vectors is made
    here, so their speed does not depend on where the allocator happened to
    put them (measurements beside BUFFER_ALIGN).

    Examples
    --------
    >>> a = aligned_zeros((3, 5), np.float32)
    >>> a.shape, a.dtype.name, a.ctypes.data % BUFFER_ALIGN, a.flags.c_contiguous
    ((3, 5), 'float32', 0, True)
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(nbytes + BUFFER_ALIGN, np.uint8)
    start = -raw.ctypes.data % BUFFER_ALIGN
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """`a` copied into :func:`aligned_zeros` (for buffers that arrive from
    elsewhere, such as unpickled parameters)."""
    out = aligned_zeros(a.shape, a.dtype)
    out[...] = a
    return out


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


def row_stride(n_out: int, layer: int) -> int:
    """Stored row length of layer `layer`'s weights (and its work-row slot).

    The first layer's rows are padded to a multiple of ``ROW_PAD`` when that
    adds at most ``ROW_PAD_MAX_SHARE`` of a row (30 -> 32, 60 -> 64, but not
    100 -> 128); other layers are not padded. Measurements in
    ``fastnet._config``.

    Examples
    --------
    >>> row_stride(30, 0), row_stride(100, 0), row_stride(30, 1)
    (32, 100, 30)
    """
    if layer != 0:
        return n_out
    padded = -(-n_out // ROW_PAD) * ROW_PAD
    return padded if padded - n_out <= ROW_PAD_MAX_SHARE * n_out else n_out


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
    n_weights, n_biases : int
        Numbers of weights and biases of the network (no padding).
    weight_end : int
        Where the biases start in the buffer: the weights and their padding
        occupy ``params[:weight_end]``.
    n_params : int
        Length of the buffer, ``weight_end + n_biases``.
    n_z : int
        Length of a work row (z, activations or deltas): every layer's slot.
    table : ndarray of int64, shape (n_layers, codes.N_COLUMNS)
        The per-layer offsets the kernels read (columns named in
        :mod:`fastnet.kernels.codes`).

    Examples
    --------
    >>> lay = Layout([784, 30, 10])
    >>> lay.n_weights, lay.weight_end, lay.n_params
    (23820, 25408, 25448)
    >>> int(lay.table[0, codes.STRIDE]), int(lay.table[1, codes.W_ROWS])
    (32, 32)
    """

    sizes: tuple[int, ...]
    table: np.ndarray = field(init=False, repr=False, compare=False)

    def __init__(self, sizes):
        object.__setattr__(self, "sizes", check_sizes(sizes))
        n_layers = len(self.sizes) - 1
        table = np.zeros((n_layers, codes.N_COLUMNS), dtype=np.int64)
        w_off = 0
        z_off = 0
        rows = self.sizes[0]
        for layer in range(n_layers):
            n_in, n_out = self.sizes[layer], self.sizes[layer + 1]
            stride = row_stride(n_out, layer)
            table[layer, codes.N_IN] = n_in
            table[layer, codes.N_OUT] = n_out
            table[layer, codes.W_OFF] = w_off
            table[layer, codes.Z_OFF] = z_off
            table[layer, codes.STRIDE] = stride
            table[layer, codes.W_ROWS] = rows
            w_off += rows * stride
            z_off += stride
            rows = stride
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
    def weight_end(self) -> int:
        return int(self.table[0, codes.B_OFF])

    @property
    def n_params(self) -> int:
        return self.weight_end + self.n_biases

    @property
    def n_z(self) -> int:
        return int(self.table[-1, codes.Z_OFF] + self.table[-1, codes.STRIDE])

    def weight_blocks(self, params: np.ndarray) -> list[np.ndarray]:
        """Per-layer stored weight blocks, shaped (W_ROWS, STRIDE), padding
        included, as views of `params`."""
        blocks = []
        for row in self.table:
            start, rows, stride = row[codes.W_OFF], row[codes.W_ROWS], row[codes.STRIDE]
            blocks.append(params[start : start + rows * stride].reshape(rows, stride))
        return blocks

    def weight_views(self, params: np.ndarray) -> list[np.ndarray]:
        """Per-layer weight matrices, shaped (n_out, n_in) as in the book, as
        views of `params` (strided: the storage is input-major and padded)."""
        return [
            block[: row[codes.N_IN], : row[codes.N_OUT]].T
            for row, block in zip(self.table, self.weight_blocks(params), strict=True)
        ]

    def bias_views(self, params: np.ndarray) -> list[np.ndarray]:
        """Per-layer bias vectors, shaped (n_out,), as views of `params`."""
        return [
            params[row[codes.B_OFF] : row[codes.B_OFF] + row[codes.N_OUT]] for row in self.table
        ]

    def flat(self, params: np.ndarray) -> np.ndarray:
        """The parameters without padding, as a new 1-D array of
        ``n_weights + n_biases`` values: each layer's ``w.T`` row-major
        (input-major), layer after layer, then every bias vector. The order
        does not depend on the padding, so files written from it load under
        any layout version.

        Examples
        --------
        >>> lay = Layout([3, 2])
        >>> p = np.zeros(lay.n_params)
        >>> lay.weight_views(p)[0][...] = [[1, 2, 3], [4, 5, 6]]
        >>> lay.flat(p)
        array([1., 4., 2., 5., 3., 6., 0., 0.])
        """
        parts = [w.T.ravel() for w in self.weight_views(params)]
        parts += self.bias_views(params)
        return np.concatenate(parts)

    def load_flat_(self, params: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Fill `params` (padding zeroed) from `flat`, in the order of
        :meth:`flat`; returns `params`.

        Raises
        ------
        ValueError
            If `flat` does not hold ``n_weights + n_biases`` values.
        """
        flat = np.asarray(flat).reshape(-1)
        need = self.n_weights + self.n_biases
        if flat.shape[0] != need:
            raise ValueError(
                f"flat parameters for sizes {list(self.sizes)} must hold {need} values, "
                f"got {flat.shape[0]}"
            )
        params[:] = 0
        pos = 0
        for w in self.weight_views(params):
            n_out, n_in = w.shape
            w.T[...] = flat[pos : pos + n_in * n_out].reshape(n_in, n_out)
            pos += n_in * n_out
        for b in self.bias_views(params):
            b[...] = flat[pos : pos + b.shape[0]]
            pos += b.shape[0]
        return params
