"""Forward pass, backpropagation, the L2-regularized SGD step and evaluation.

Every kernel takes the flat parameter buffer ``params`` and the layer table of
:class:`fastnet.layout.Layout` (columns named in :mod:`fastnet.kernels.codes`),
plus work buffers owned by a :class:`fastnet.workspace.TrainWorkspace` or
:class:`fastnet.workspace.EvalWorkspace`. Nothing is allocated here.

The loop kernels read inputs through a compressed-row index of their non-zero
entries (``indptr``, ``indices``, ``values``, built once per data set by
:func:`nonzero_index_`): the first layer then costs in proportion to the
non-zero pixels (19% of MNIST), read as two contiguous runs per sample, and
the next sample's runs are prefetched (:mod:`fastnet.kernels.prefetch`). Every
SGD driver takes `X`, so that all have one signature, but reads only the
index (the dense driver too, for its first layer).

Weights are stored input-major (row ``k`` of a layer's block holds the weights
leaving input ``k``), the first layer's rows padded with zeros to
``table[0, STRIDE]`` entries (:mod:`fastnet.layout`). Each weighted input
is summed in input order, skipping zero inputs, which is exact, so no
``fastmath`` is needed and the order never depends on vectorization.

Determinism: a mini-batch of ``m`` samples is split into ``n_chunks(m)`` fixed
chunks. One chunk (``m <= GRAD_CHUNK``, the book's mini-batch of 10) takes the
fused step: all samples forward and backward with the old weights, then the
weights decay and each sample's contribution is subtracted in sample order.
The fused step sums the first layer over the data's input blocks
(``fastnet.workspace.input_blocks``, fixed per data set) and adds the
blocks' sums in block order, so that each block's rows can belong to one
thread. Several chunks each sum their gradient into their own buffer, and
the chunk sums are added in chunk order. The path depends on ``m`` only, so
the serial and parallel drivers and every thread count give identical bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastnet._config import (
    ALPHA_FOLD,
    ALPHA_FOLD_EVERY,
    BUFFER_ALIGN,
    EVAL_CHUNKS,
    GRAD_CHUNK,
    INLINE_OPTIONS,
    JIT_OPTIONS,
    LAZY_DECAY_MIN,
    MAX_GRAD_CHUNKS,
    NONZERO_GROUP,
)
from fastnet.kernels.activations import (
    activate_,
    output_delta_,
    sample_cost,
    scale_by_derivative_,
)
from fastnet.kernels.codes import B_OFF, N_IN, N_OUT, SOFTMAX, STRIDE, W_OFF, W_ROWS, Z_OFF
from fastnet.kernels.prefetch import prefetch, prefetch_range, prefetch_sample
from fastnet.kernels.rows import (
    add_rows_,
    batch_sums_,
    first_layer_sums_,
    layer_add_,
    layer_sums_,
    padded_columns,
)
from fastnet.kernels.sync import OUT, SYNC_SIZE, TEAM, barrier, join_team, reset_team_

PARALLEL_OPTIONS = {**JIT_OPTIONS, "parallel": True}


@njit(**JIT_OPTIONS)
def aligned_length(n, itemsize):
    """`n` elements of `itemsize` bytes rounded up to a whole number of
    BUFFER_ALIGN bytes: the parts of a buffer cut into such lengths all
    start aligned when the buffer does (:func:`sgd_many_`'s pools).

    Examples
    --------
    >>> aligned_length(30, 4), aligned_length(32, 4), aligned_length(1, 8)
    (32, 32, 8)
    """
    step = max(1, BUFFER_ALIGN // itemsize)
    return -(-n // step) * step


@njit(**JIT_OPTIONS)
def n_chunks(m):
    """Number of gradient chunks for a mini-batch of `m` samples.

    Depends on `m` only (never on the thread count), which fixes the order in
    which per-sample gradients are summed.

    Examples
    --------
    >>> n_chunks(10), n_chunks(100), n_chunks(100_000)
    (1, 7, 32)
    """
    return max(1, min((m + GRAD_CHUNK - 1) // GRAD_CHUNK, MAX_GRAD_CHUNKS))


@njit(**PARALLEL_OPTIONS)
def row_nonzeros_(X, counts, like):
    """``counts[i] = number of non-zero entries in X[i]``, rows in parallel;
    returns the number of NaN or infinite entries of `X` (counted as
    non-zero), so that a caller building the index needs no separate pass
    to validate the data (:func:`all_finite`).

    Each entry is tested as the index will store it, in the dtype of `like`
    (any array): for float64 data indexed into float32 values, an entry
    that rounds to zero is a zero and one that overflows is infinite, as if
    the data had been converted first (the same index, so the same bits)."""
    bad = 0
    for i in prange(X.shape[0]):
        c = 0
        row_bad = 0
        for k in range(X.shape[1]):
            x = like.dtype.type(X[i, k])
            c += x != 0
            row_bad += not np.isfinite(x)
        counts[i] = c
        bad += row_bad
    return bad


@njit(**PARALLEL_OPTIONS)
def nonzero_index_(X, indptr, indices, values):
    """Fill a compressed-row index of the non-zero entries of `X`.

    Parameters
    ----------
    X : ndarray, shape (n, n_in)
    indptr : ndarray of int64, shape (n + 1,)
        Must hold the running sum of :func:`row_nonzeros_` (``indptr[0] = 0``):
        row ``i``'s columns go to ``indices[indptr[i]:indptr[i+1]]``.
    indices : ndarray of int32, shape (indptr[-1],)
        Overwritten with the column of each non-zero entry, columns increasing
        within each row.
    values : ndarray, shape (indptr[-1],)
        Overwritten with the non-zero entries themselves, beside their
        columns, in this array's dtype (`X`'s, or another: each entry is
        converted, then tested, as :func:`row_nonzeros_` counted it).

    Notes
    -----
    Rows are filled in parallel; each owns its slice. The kernels read a
    sample's inputs from `values` rather than from its row of `X`: two short
    contiguous runs instead of scattered reads across a 3 KB row, which on
    shuffled MNIST made the first layer's forward pass 27% faster (float32,
    1.56 vs 2.15 us per sample, prefetching either way; float64 1.93 vs
    2.65).

    Each row goes in groups of NONZERO_GROUP columns: a group of zeros is
    skipped after one vectorized test, the others are written column by
    column without a branch on the value. On MNIST's 50,000 training
    images 27 ms against 41 ms writing every column (float32; float64 28
    vs 49), on 20% random non-zeros 13 vs 17 ms (/work/exp/s22/nzfill.py,
    2 threads, 2026-12-02).
    """
    n_in = X.shape[1]
    for i in prange(X.shape[0]):
        q = indptr[i]
        end = indptr[i + 1]
        row = X[i]
        k0 = 0
        while k0 < n_in:
            k1 = min(k0 + NONZERO_GROUP, n_in)
            any_nonzero = False
            for k in range(k0, k1):
                any_nonzero |= row[k] != 0
            if any_nonzero:
                for k in range(k0, k1):
                    # Write every column, advance only past non-zeros: no
                    # unpredictable branch on the pixel value (the guard
                    # is almost always true).
                    x = values.dtype.type(row[k])
                    if q < end:
                        indices[q] = k
                        values[q] = x
                    q += x != 0
            k0 = k1


@njit(**PARALLEL_OPTIONS)
def index_mismatches(X, indptr, indices, values, scratch):
    """Number of rows of `X` that the non-zero index does not reproduce
    exactly (0: the index is `X`'s, as :func:`nonzero_index_` would build it
    now).

    Parameters
    ----------
    X : ndarray, shape (n, n_in)
    indptr, indices, values : ndarray
        A non-zero index of `n` rows (:func:`nonzero_index_`), columns below
        `n_in`; `values` may have another dtype than `X`: each entry of `X`
        is compared as the index would store it, converted to that dtype.
    scratch : ndarray, shape (n_chunks, n_in), dtype of `values`
        One row per fixed run of `X`'s rows, checked in parallel; must be
        all zero on entry, and is all zero again on return.

    Returns
    -------
    int

    Notes
    -----
    Each row's indexed values are scattered into a zero row, compared with
    the row of `X` whole (one vectorized pass, no branch per entry), then
    set back to zero. A NaN in `X` never compares equal, so data that became
    non-finite counts as changed. On MNIST's 50,000 training images 18 ms
    on 2 threads, against 40 ms walking each row's non-zeros beside the index
    and 45-190 ms to build the index anew (a count and a fill into freshly
    allocated arrays, before the input blocks; /work/exp/s25/verify*.py,
    nzidx.py, 2026-12-02).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 2.0], [3.0, 0.0]])
    >>> index = (np.array([0, 1, 2]), np.array([1, 0], np.int32), np.array([2.0, 3.0]))
    >>> scratch = np.zeros((2, 2))
    >>> int(index_mismatches(X, *index, scratch))
    0
    >>> X[1, 1] = 5.0
    >>> int(index_mismatches(X, *index, scratch))
    1
    """
    n, n_in = X.shape
    n_chunks = scratch.shape[0]
    bad = 0
    for c in prange(n_chunks):
        row_buf = scratch[c]
        chunk_bad = 0
        for i in range((c * n) // n_chunks, ((c + 1) * n) // n_chunks):
            lo = indptr[i]
            hi = indptr[i + 1]
            for q in range(lo, hi):
                row_buf[indices[q]] = values[q]
            row = X[i]
            diff = 0
            for k in range(n_in):
                diff += row_buf.dtype.type(row[k]) != row_buf[k]
            for q in range(lo, hi):
                row_buf[indices[q]] = 0
            chunk_bad += diff != 0
        bad += chunk_bad
    return bad


@njit(**PARALLEL_OPTIONS)
def all_finite(X, like):
    """True if no entry of the 2-D array `X` is NaN or infinite once
    converted to the dtype of `like` (any array): float64 data overflowing
    float32 is infinite there, as in :func:`row_nonzeros_`."""
    bad = 0
    for i in prange(X.shape[0]):
        row_bad = 0
        for k in range(X.shape[1]):
            row_bad += not np.isfinite(like.dtype.type(X[i, k]))
        bad += row_bad
    return bad == 0


@njit(**INLINE_OPTIONS)
def sample_inputs(indptr, indices, values, i):
    """Sample ``i``'s non-zero columns and their values: two views into the
    index of :func:`nonzero_index_`."""
    lo = indptr[i]
    hi = indptr[i + 1]
    return indices[lo:hi], values[lo:hi]


@njit(**JIT_OPTIONS)
def forward_sample_(params, table, hidden, output, v, cols, z, a, alpha):
    """Feed one sample forward, storing every layer's z and activation.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Flat weights (input-major) and biases.
    table : ndarray of int64, shape (n_layers, N_COLUMNS)
        Layer offsets from :class:`fastnet.layout.Layout`.
    hidden, output : int
        Activation codes of the hidden layers and of the output layer.
    v, cols : ndarray
        The input's non-zero entries and their columns (increasing), a row of
        the index built by :func:`nonzero_index_`.
    z, a : ndarray, shape (n_z,)
        Overwritten with every non-input layer's weighted input and activation.
    alpha : float (dtype of `params`)
        Scale of the first layer's stored weights: its weights are
        ``alpha * w_stored`` (the fused step's lazy decay, see
        :func:`sgd_serial_`); 1 elsewhere.

    Notes
    -----
    The first layer's weighted input is ``alpha * (sum of x_k row_k) + b``,
    the sum from :func:`first_layer_sums_`. Its padded entries (the first
    layer's slot in `z` runs over whole stored rows, :mod:`fastnet.layout`)
    get zero sums, and their activations are not computed.
    """
    z_off = table[0, Z_OFF]
    stride = table[0, STRIDE]
    first_layer_sums_(params, table[0, W_OFF], stride, cols, v, z[z_off : z_off + stride])
    forward_rest_(params, table, hidden, output, z, a, alpha)


@njit(**INLINE_OPTIONS)
def forward_rest_(params, table, hidden, output, z, a, alpha):
    """:func:`forward_sample_` from the first layer's sums on: `z`'s first
    slot holds ``sum of x_k row_k`` (whole stored rows); every layer's
    weighted input and activation are written in place."""
    n_layers = table.shape[0]
    for layer in range(n_layers):
        n_in = table[layer, N_IN]
        n_out = table[layer, N_OUT]
        w_off = table[layer, W_OFF]
        b_off = table[layer, B_OFF]
        z_off = table[layer, Z_OFF]
        stride = table[layer, STRIDE]
        zl = z[z_off : z_off + n_out]
        if layer == 0:
            for j in range(n_out):
                zl[j] = alpha * zl[j] + params[b_off + j]
        else:
            p_off = table[layer - 1, Z_OFF]
            layer_sums_(params, w_off, stride, b_off, a[p_off : p_off + n_in], zl)
        activate_(output if layer == n_layers - 1 else hidden, zl, a[z_off : z_off + n_out])
        for j in range(z_off + n_out, z_off + stride):
            a[j] = 0


@njit(**INLINE_OPTIONS)
def backward_sample_(params, table, hidden, cost, label, z, a, delta):
    """Backpropagate one sample's error (the book's equations BP1 and BP2).

    Parameters
    ----------
    params, table, hidden
        As in :func:`forward_sample_`.
    cost : int
        Cost code; fixes the output error.
    label : int
        The sample's class.
    z, a : ndarray, shape (n_z,)
        Rows written by :func:`forward_sample_` for this sample.
    delta : ndarray, shape (n_z,)
        Overwritten with every non-input layer's error ``dC/dz``.
    """
    last = table.shape[0] - 1
    output_error_(table, cost, label, z, a, delta)
    zero = params.dtype.type(0)
    for layer in range(last, 0, -1):
        n_in = table[layer, N_IN]
        n_out = table[layer, N_OUT]
        w_off = table[layer, W_OFF]
        stride = table[layer, STRIDE]
        d = delta[table[layer, Z_OFF] : table[layer, Z_OFF] + n_out]
        p_off = table[layer - 1, Z_OFF]
        # (w^T delta)[k] is a dot with row k of the input-major block.
        for k in range(n_in):
            w = params[w_off + k * stride : w_off + k * stride + n_out]
            s = zero
            for j in range(n_out):
                s += w[j] * d[j]
            delta[p_off + k] = s
        scale_by_derivative_(
            hidden, z[p_off : p_off + n_in], a[p_off : p_off + n_in], delta[p_off : p_off + n_in]
        )
        for j in range(p_off + n_in, p_off + table[layer - 1, STRIDE]):
            delta[j] = 0


@njit(**INLINE_OPTIONS)
def output_error_(table, cost, label, z, a, delta):
    """The output layer's part of :func:`backward_sample_` (BP1): its error
    into `delta` (one sample's rows), zero for its padded neurons."""
    last = table.shape[0] - 1
    z_off = table[last, Z_OFF]
    n_out = table[last, N_OUT]
    output_delta_(
        cost,
        z[z_off : z_off + n_out],
        a[z_off : z_off + n_out],
        label,
        delta[z_off : z_off + n_out],
    )
    # Padded neurons have zero error (so their weights get zero gradients),
    # whatever the buffer held.
    for j in range(z_off + n_out, z_off + table[last, STRIDE]):
        delta[j] = 0


@njit(**JIT_OPTIONS)
def add_outer_(table, v, cols, a, delta, scale, out):
    """``out += scale * (gradient of one sample)``, in the layout of `params`.

    For layer ``l`` and input ``k`` with a non-zero input ``a_k`` (the first
    layer's from `v` at `cols`):
    ``out[row k] += (scale * a_k) * delta``; biases get ``scale * delta``.
    `out` is a chunk's gradient buffer (``scale = 1``); the fused step writes
    into `params` through :func:`step_rows_` instead.
    """
    add_rows_(out, table[0, W_OFF], table[0, STRIDE], cols, v, 0, cols.shape[0], scale, delta)
    add_later_layers_(table, a, delta, scale, out)


@njit(**INLINE_OPTIONS)
def add_later_layers_(table, a, delta, scale, out):
    """The rest of :func:`add_outer_`: the weights of every layer after the
    first, and every layer's biases."""
    for layer in range(table.shape[0]):
        n_in = table[layer, N_IN]
        n_out = table[layer, N_OUT]
        w_off = table[layer, W_OFF]
        b_off = table[layer, B_OFF]
        z_off = table[layer, Z_OFF]
        stride = table[layer, STRIDE]
        d = delta[z_off : z_off + n_out]
        if layer > 0:
            p_off = table[layer - 1, Z_OFF]
            layer_add_(out, w_off, stride, a[p_off : p_off + n_in], scale, d)
        gb = out[b_off : b_off + n_out]
        for j in range(n_out):
            gb[j] += scale * d[j]


@njit(**JIT_OPTIONS)
def chunk_gradient_(
    params,
    table,
    hidden,
    output,
    cost,
    labels,
    indptr,
    indices,
    values,
    idx,
    zs,
    acts,
    deltas,
    grad,
):
    """Sum the gradients of the samples ``idx`` into ``grad``.

    Parameters
    ----------
    params, table, hidden, output, cost
        As in :func:`forward_sample_` and :func:`backward_sample_`.
    labels : ndarray of int64, shape (n,)
    indptr, indices, values : ndarray
        Non-zero index of the data (:func:`nonzero_index_`).
    idx : ndarray of int64
        This chunk's samples, in summation order.
    zs, acts, deltas : ndarray, shape (GRAD_CHUNK, n_z)
        Scratch rows; overwritten.
    grad : ndarray, shape (n_params,)
        Overwritten with the summed gradient (same layout as `params`).
    """
    zero = grad.dtype.type(0)
    one = grad.dtype.type(1)
    for p in range(grad.shape[0]):
        grad[p] = zero
    for s in range(idx.shape[0]):
        if s + 1 < idx.shape[0]:
            prefetch_sample(indptr, indices, values, idx[s + 1])
        i = idx[s]
        cols, v = sample_inputs(indptr, indices, values, i)
        forward_sample_(params, table, hidden, output, v, cols, zs[0], acts[0], one)
        backward_sample_(params, table, hidden, cost, labels[i], zs[0], acts[0], deltas[0])
        add_outer_(table, v, cols, acts[0], deltas[0], one, grad)


@njit(**JIT_OPTIONS)
def chunk_gradients_(
    params,
    table,
    hidden,
    output,
    cost,
    labels,
    indptr,
    indices,
    values,
    batch,
    zs,
    acts,
    deltas,
    grads,
):
    """Each chunk's gradient sum for the mini-batch ``batch`` into
    ``grads[c]``, one chunk after another. Returns the number of chunks,
    ``n_chunks(len(batch))``.
    """
    m = batch.shape[0]
    nc = n_chunks(m)
    for c in range(nc):
        chunk_gradient_(
            params,
            table,
            hidden,
            output,
            cost,
            labels,
            indptr,
            indices,
            values,
            batch[(c * m) // nc : ((c + 1) * m) // nc],
            zs[c],
            acts[c],
            deltas[c],
            grads[c],
        )
    return nc


@njit(**JIT_OPTIONS)
def first_block_sums_(params, w_off, stride, indices, values, bounds, rows, block, partials):
    """The first layer's weighted inputs of `rows` from input block `block`
    alone: ``partials[block, r] = sum_k x[rows[r], k] * w[k]`` over the
    block's inputs ``k`` (:func:`fastnet.kernels.rows.first_layer_sums_` on
    the sample's non-zeros in the block), whole stored rows.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    w_off, stride : int
        The first layer's offset and stored row length.
    indices, values : ndarray
        Non-zero index of the data.
    bounds : ndarray of int64, shape (n, n_blocks + 1)
        Where each sample's non-zeros cross the blocks
        (:func:`fastnet.kernels.dense.sample_bounds_`).
    rows : ndarray of int64, shape (m,)
    block : int
    partials : ndarray, shape (n_blocks, >= m, >= stride)
        Rows ``partials[block, :m]`` overwritten (entries ``0:stride``).
    """
    block_range_sums_(
        params, w_off, stride, indices, values, bounds, rows, block, block + 1, partials
    )


@njit(**JIT_OPTIONS)
def block_range_sums_(params, w_off, stride, indices, values, bounds, rows, b_lo, b_hi, partials):
    """:func:`first_block_sums_` for blocks ``b_lo`` to ``b_hi - 1``, sample
    by sample (:func:`sample_block_sums_`)."""
    for r in range(rows.shape[0]):
        sample_block_sums_(
            params, w_off, stride, indices, values, bounds, rows, r, b_lo, b_hi, partials
        )


@njit(**JIT_OPTIONS)
def sample_block_sums_(
    params, w_off, stride, indices, values, bounds, rows, r, b_lo, b_hi, partials
):
    """``partials[blk, r]`` for blocks ``b_lo <= blk < b_hi`` of sample
    ``rows[r]`` (see :func:`first_block_sums_`): one pass over its non-zeros
    in those blocks.

    The samples come in shuffled order, so each one's non-zeros are a cache
    miss: the next sample's run in the blocks is prefetched here, and the
    bounds row of the one after it.
    """
    m = rows.shape[0]
    if r + 2 < m:
        prefetch(bounds[rows[r + 2]], 0)
    if r + 1 < m:
        i1 = rows[r + 1]
        prefetch_range(indices, bounds[i1, b_lo], bounds[i1, b_hi])
        prefetch_range(values, bounds[i1, b_lo], bounds[i1, b_hi])
    i = rows[r]
    for blk in range(b_lo, b_hi):
        q_lo = bounds[i, blk]
        q_hi = bounds[i, blk + 1]
        first_layer_sums_(
            params, w_off, stride, indices[q_lo:q_hi], values[q_lo:q_hi], partials[blk, r]
        )


@njit(**JIT_OPTIONS)
def batch_width(table):
    """The most rows a lane's scratch `columns` holds (:func:`sample_errors_`):
    the widest layer after the input, ``max(sizes[1:])``."""
    width = 0
    for layer in range(table.shape[0]):
        width = max(width, table[layer, N_OUT])
    return width


@njit(**INLINE_OPTIONS)
def gather_columns_(rows, lo, n_cols, off, out):
    """``out[k, r] = rows[lo + r, off + k]`` for ``r < n_cols`` and the
    rows ``k`` of `out`; columns ``n_cols`` to the end of `out` are zeroed:
    the batch sums compute them too (whole vectors), on zeros, not on
    leftovers that might be subnormal."""
    zero = out.dtype.type(0)
    for k in range(out.shape[0]):
        ok = out[k]
        for r in range(n_cols):
            ok[r] = rows[lo + r, off + k]
        for r in range(n_cols, ok.shape[0]):
            ok[r] = zero


@njit(**JIT_OPTIONS)
def forward_batch_(params, table, hidden, output, zs, acts, lo, hi, columns):
    """:func:`forward_rest_` from layer 1 on for the samples in rows ``lo``
    to ``hi - 1`` of `zs` and `acts` (their first layer done), the same bits,
    each layer's sums for all of them at once (:func:`batch_sums_`).

    Parameters
    ----------
    params, table, hidden, output
        As in :func:`forward_sample_`.
    zs, acts : ndarray, shape (>= hi, n_z)
        Rows ``lo:hi``: the first layer's slots are read, the later ones
        written.
    lo, hi : int
        The samples' rows.
    columns : ndarray, shape (2, >= batch_width(table) * ld)
        Scratch for a layer's inputs and sums, one column per sample in rows
        of ``ld = padded_columns(params, hi - lo)``; overwritten.
    """
    n_layers = table.shape[0]
    n_cols = hi - lo
    ld = padded_columns(params, n_cols)
    for layer in range(1, n_layers):
        n_in = table[layer, N_IN]
        n_out = table[layer, N_OUT]
        z_off = table[layer, Z_OFF]
        stride = table[layer, STRIDE]
        p_off = table[layer - 1, Z_OFF]
        xt = columns[0, : n_in * ld].reshape((n_in, ld))
        out = columns[1, : n_out * ld].reshape((n_out, ld))
        gather_columns_(acts, lo, n_cols, p_off, xt)
        batch_sums_(
            params,
            table[layer, W_OFF],
            stride,
            1,
            table[layer, B_OFF],
            xt,
            n_in,
            n_out,
            n_cols,
            out,
            True,
        )
        code = output if layer == n_layers - 1 else hidden
        if code == SOFTMAX:
            # Normalized over each sample's outputs: one sample at a time.
            for r in range(n_cols):
                s = lo + r
                z = zs[s, z_off : z_off + n_out]
                for j in range(n_out):
                    z[j] = out[j, r]
                activate_(code, z, acts[s, z_off : z_off + n_out])
        else:
            # Entry by entry, so all the samples' at once, into xt (now
            # free): in float32 one vector loop over the whole block, padding
            # columns included, instead of one with a scalar tail per
            # sample; float64's exp is a scalar call per entry, so there
            # each output's samples only. (One call site: each inlined copy
            # of activate_ costs compile time.)
            sums = columns[1, : n_out * ld]
            a_t = columns[0, : n_out * ld]
            whole = params.itemsize == 4
            for j in range(1 if whole else n_out):
                lo_j = j * ld
                hi_j = n_out * ld if whole else lo_j + n_cols
                activate_(code, sums[lo_j:hi_j], a_t[lo_j:hi_j])
            for r in range(n_cols):
                s = lo + r
                z = zs[s]
                a = acts[s]
                for j in range(n_out):
                    z[z_off + j] = out[j, r]
                    a[z_off + j] = a_t[j * ld + r]
        for r in range(n_cols):
            a = acts[lo + r]
            for j in range(z_off + n_out, z_off + stride):
                a[j] = 0


@njit(**JIT_OPTIONS)
def backward_batch_(params, table, hidden, cost, labels, batch, zs, acts, deltas, lo, hi, columns):
    """:func:`backward_sample_` for the samples ``batch[lo:hi]`` (rows
    ``lo:hi`` of `zs`, `acts`, `deltas`), the same bits, each layer's
    ``w^T delta`` for all of them at once (:func:`batch_sums_`).

    Parameters
    ----------
    params, table, hidden, cost
        As in :func:`backward_sample_`.
    labels : ndarray of int64, shape (n,)
    batch : ndarray of int64
        The samples; row ``s`` holds sample ``batch[s]``.
    zs, acts : ndarray, shape (>= hi, n_z)
        Written by the forward pass.
    deltas : ndarray, shape (>= hi, n_z)
        Rows ``lo:hi`` overwritten with every non-input layer's error.
    lo, hi, columns
        As in :func:`forward_batch_`.
    """
    last = table.shape[0] - 1
    n_cols = hi - lo
    for s in range(lo, hi):
        output_error_(table, cost, labels[batch[s]], zs[s], acts[s], deltas[s])
    ld = padded_columns(params, n_cols)
    for layer in range(last, 0, -1):
        n_in = table[layer, N_IN]
        n_out = table[layer, N_OUT]
        z_off = table[layer, Z_OFF]
        p_off = table[layer - 1, Z_OFF]
        dt = columns[0, : n_out * ld].reshape((n_out, ld))
        out = columns[1, : n_in * ld].reshape((n_in, ld))
        gather_columns_(deltas, lo, n_cols, z_off, dt)
        # (w^T delta)[k]: a dot with row k of the input-major block, whose
        # entries are table[layer, STRIDE] apart from one k to the next.
        batch_sums_(
            params,
            table[layer, W_OFF],
            1,
            table[layer, STRIDE],
            0,
            dt,
            n_out,
            n_in,
            n_cols,
            out,
            False,
        )
        for r in range(n_cols):
            s = lo + r
            delta = deltas[s]
            for k in range(n_in):
                delta[p_off + k] = out[k, r]
            scale_by_derivative_(
                hidden,
                zs[s, p_off : p_off + n_in],
                acts[s, p_off : p_off + n_in],
                delta[p_off : p_off + n_in],
            )
            for j in range(p_off + n_in, p_off + table[layer - 1, STRIDE]):
                delta[j] = 0


@njit(**JIT_OPTIONS)
def sample_errors_(
    params,
    table,
    hidden,
    output,
    cost,
    labels,
    indices,
    values,
    bounds,
    batch,
    lo,
    hi,
    alpha,
    fresh,
    partials,
    zs,
    acts,
    deltas,
    columns,
):
    """Forward and backward for samples ``batch[lo:hi]``, with the current
    weights (the first layer's scaled by `alpha`, see :func:`forward_sample_`),
    into rows ``lo`` to ``hi - 1`` of `zs`, `acts` and `deltas` (each shaped
    (GRAD_CHUNK, n_z)). Different ranges touch different rows, so the
    parallel fused step runs ranges side by side.

    The first layer's sums come from the input blocks' partial sums
    ``partials[b, s]`` (:func:`first_block_sums_`), added in block order.
    With `fresh` they are summed here, each sample's just before its pass
    (the next sample's inputs loading meanwhile); otherwise they are
    already in `partials` and the first layer's rows are not read.

    The first layer runs a sample at a time; the later layers' forward and
    backward passes run for all of them at once (:func:`forward_batch_`,
    :func:`backward_batch_`, with the lane's scratch `columns`), which give
    the bits of :func:`forward_rest_` and :func:`backward_sample_` one sample
    at a time (tests/test_kernels.py). Measured against the step before them
    (one thread, cache hot, block sums given, /work/exp/s23/errs2.py, 9
    rounds, 2026-12-02): [784, 30, 10] 413 -> 294 ns per sample float32,
    493 -> 393 float64; [784, 100, 10] 1.67x and 1.34x; with the block sums
    summed here (`fresh`) 1.17x / 1.11x on [784, 30, 10].
    """
    n_blocks = partials.shape[0]
    z_off = table[0, Z_OFF]
    stride = table[0, STRIDE]
    w_off = table[0, W_OFF]
    n_out = table[0, N_OUT]
    b_off = table[0, B_OFF]
    code = output if table.shape[0] == 1 else hidden
    for s in range(lo, hi):
        if fresh:
            sample_block_sums_(
                params, w_off, stride, indices, values, bounds, batch[:hi], s, 0, n_blocks, partials
            )
        z = zs[s, z_off : z_off + stride]
        # A loop, not z[:] = ...: Numba's slice assignment took 33 ns where
        # this copy takes 7 (32 float32 entries, /work/exp/s22/slice_copy.py).
        p = partials[0, s]
        for j in range(stride):
            z[j] = p[j]
        for blk in range(1, n_blocks):
            p = partials[blk, s]
            for j in range(stride):
                z[j] += p[j]
        # The first layer of forward_rest_, written out: through a shared
        # inlined helper sample_errors_ ran 2-5% slower (/work/exp/s23/errs3.py).
        z = zs[s, z_off : z_off + n_out]
        for j in range(n_out):
            z[j] = alpha * z[j] + params[b_off + j]
        activate_(code, z, acts[s, z_off : z_off + n_out])
        a = acts[s]
        for j in range(z_off + n_out, z_off + stride):
            a[j] = 0
    forward_batch_(params, table, hidden, output, zs, acts, lo, hi, columns)
    backward_batch_(params, table, hidden, cost, labels, batch, zs, acts, deltas, lo, hi, columns)


@njit(**JIT_OPTIONS)
def step_rows_(
    params,
    table,
    indices,
    values,
    cuts,
    bounds,
    batch,
    acts,
    deltas,
    decay0,
    step0,
    decay,
    step,
    b_lo,
    b_hi,
    rest,
):
    """The fused step's update of the first layer's rows in input blocks
    ``b_lo`` to ``b_hi - 1`` (inputs ``cuts[b_lo] <= k < cuts[b_hi]``) and,
    if `rest`, of every later layer and all biases, in place.

    For each parameter: ``w <- decay * w``, then each sample's term
    ``- step * grad`` in sample order; the first layer's stored weights use
    `decay0` and `step0` instead (1 and ``step / alpha`` when their decay is
    kept in the scale ``alpha``, see :func:`sgd_serial_`). Every parameter
    sees the same operations in the same order whatever the row ranges, so
    splitting the rows between threads (:func:`sgd_parallel_`) gives the bits
    of one thread doing all.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Updated in place (only the rows named, plus the rest if `rest`).
    indices, values, cuts, bounds : ndarray
        The data's non-zero index and input blocks; a sample's non-zeros in
        the blocks are ``bounds[i, b_lo] <= q < bounds[i, b_hi]``, so no
        search finds them.
    batch : ndarray of int64, shape (m,)
    acts, deltas : ndarray, shape (GRAD_CHUNK, n_z)
        Rows written by :func:`sample_errors_` for the `m` samples.
    decay0, step0 : float
        The first layer's weight decay factor and step.
    decay, step : float
        ``1 - eta*lmbda/n`` and ``eta/m``.
    b_lo, b_hi : int
        The input blocks whose rows to update.
    rest : bool
    """
    stride = table[0, STRIDE]
    w_off = table[0, W_OFF]
    if decay0 != 1:
        w = params[w_off + cuts[b_lo] * stride : w_off + cuts[b_hi] * stride]
        for p in range(w.shape[0]):
            w[p] = decay0 * w[p]
    scale = params.dtype.type(-step0)
    for s in range(batch.shape[0]):
        i = batch[s]
        add_rows_(
            params,
            w_off,
            stride,
            indices,
            values,
            bounds[i, b_lo],
            bounds[i, b_hi],
            scale,
            deltas[s],
        )
    if rest:
        if decay != 1:
            for p in range(w_off + table[0, W_ROWS] * stride, table[0, B_OFF]):
                params[p] = decay * params[p]
        for s in range(batch.shape[0]):
            add_later_layers_(table, acts[s], deltas[s], -step, params)


@njit(**JIT_OPTIONS)
def scale_first_layer_(params, table, alpha):
    """``w <- alpha * w`` for the first layer's stored weights (padding
    included): folds the fused step's scale back into them."""
    scale_first_rows_(params, table, alpha, 0, table[0, W_ROWS])


@njit(**JIT_OPTIONS)
def scale_first_rows_(params, table, alpha, k_lo, k_hi):
    """:func:`scale_first_layer_` on the first layer's rows ``k_lo`` to
    ``k_hi - 1`` only (a lane's input blocks)."""
    stride = table[0, STRIDE]
    w_off = table[0, W_OFF]
    w = params[w_off + k_lo * stride : w_off + k_hi * stride]
    for p in range(w.shape[0]):
        w[p] = alpha * w[p]


@njit(**JIT_OPTIONS)
def lazy_factors(alpha, decay, step, lazy, one):
    """The fused step's factors for the first layer, given its current scale.

    With `lazy`, the decay goes into the scale: ``alpha_next = alpha *
    decay``, the stored weights are not decayed (``decay0 = 1``) and get
    ``step0 = step / alpha_next`` times each gradient term, so that
    ``alpha_next * v`` is the book's updated weight. If ``alpha_next`` would
    fall below ALPHA_FOLD, the scale must first be folded into the stored
    weights (``w <- alpha * w``, which the caller does) and restarts at 1.
    Without `lazy`: ``alpha = 1``, ``decay0 = decay``, ``step0 = step``.

    Returns
    -------
    fold : bool
        Whether the stored weights must first be multiplied by `alpha`.
    alpha, alpha_next, decay0, step0 : float (dtype of `one`)
        The scale to feed forward with (after the fold if there is one), the
        scale after the step, and the first layer's decay factor and step.
    """
    if not lazy:
        return False, one, one, decay, step
    alpha_next = alpha * decay
    fold = alpha_next < ALPHA_FOLD
    if fold:
        alpha = one
        alpha_next = decay
    return fold, alpha, alpha_next, one, step / alpha_next


@njit(**JIT_OPTIONS)
def update_block_(params, grads, n_chunk, n_weights, decay, step, lo, hi):
    """The book's step for ``params[lo:hi]``, gradients summed in chunk order.

    ``w <- decay * w - step * g`` for weights (``decay = 1 - eta*lmbda/n``) and
    ``b <- b - step * g`` for biases, with ``step = eta/m``.
    """
    mid = min(max(lo, n_weights), hi)
    w = params[lo:mid]
    b = params[mid:hi]
    g0 = grads[0, lo:mid]
    for p in range(w.shape[0]):
        g = g0[p]
        for c in range(1, n_chunk):
            g += grads[c, lo + p]
        w[p] = decay * w[p] - step * g
    g0 = grads[0, mid:hi]
    for p in range(b.shape[0]):
        g = g0[p]
        for c in range(1, n_chunk):
            g += grads[c, mid + p]
        b[p] = b[p] - step * g


@njit(**JIT_OPTIONS)
def fused_args_fit(table, indptr, cuts, bounds, partials, columns, zs, mini_batch, n_lanes):
    """Whether the input blocks and the fused step's buffers fit the data,
    the layer sizes and `mini_batch` (the drivers refuse them otherwise:
    compiled code does not check its indices)."""
    n_blocks = cuts.shape[0] - 1
    return (
        n_blocks >= 1
        and cuts[0] == 0
        and cuts[n_blocks] == table[0, N_IN]
        and bounds.shape[0] == indptr.shape[0] - 1
        and bounds.shape[1] == n_blocks + 1
        and partials.shape[0] == n_blocks
        and partials.shape[1] >= min(mini_batch, GRAD_CHUNK)
        and partials.shape[2] >= table[0, STRIDE]
        and columns.shape[0] >= max(n_lanes, 1)
        and columns.shape[1] == 2
        and columns.shape[2] >= batch_width(table) * padded_columns(zs, min(mini_batch, GRAD_CHUNK))
        and zs.shape[0] >= 1
    )


@njit(**PARALLEL_OPTIONS)
def sgd_serial_(
    params,
    table,
    hidden,
    output,
    cost,
    X,
    labels,
    indptr,
    indices,
    values,
    cuts,
    bounds,
    order,
    mini_batch,
    first,
    last,
    eta,
    lmbda,
    n,
    zs,
    acts,
    deltas,
    grads,
    partials,
    columns,
    sync,
    n_lanes,
):
    """Run mini-batches ``first`` to ``last - 1`` of an epoch on one thread.

    Mini-batches of one chunk take the fused step (:func:`fused_lane_`, all
    of its lanes' work in lane order), which keeps the first layer's L2
    decay in a scale ``alpha``: its weights are ``alpha * v`` for the stored
    ``v``, a step multiplies ``alpha`` by the decay and adds ``(step /
    alpha) * gradient`` to ``v``, so no pass over the whole layer runs per
    mini-batch (:func:`lazy_factors`; measurements beside ALPHA_FOLD in
    fastnet._config). Larger ones sum each chunk's gradient
    (:func:`chunk_gradients_`) and then update. `params` holds the weights
    on return. The results equal the book's step up to rounding (float64
    within 1e-9 of the reference), and the serial and parallel drivers give
    the same bits.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Updated in place.
    table, hidden, output, cost
        Layer table and codes.
    X : ndarray, shape (n, sizes[0])
        Unused (the dense driver's signature); the inputs are read from
        the index.
    labels : ndarray of int64, shape (n,)
    indptr, indices, values : ndarray
        Non-zero index of the data (:func:`nonzero_index_`); `values` in the
        dtype of `params`, or float32 for float64 `params`: each input is
        widened exactly where it is read, so the bits are those of
        converting first (:class:`fastnet.Network` converts them when it
        builds the index instead).
    cuts, bounds : ndarray of int64
        The data's input blocks (``fastnet.workspace.input_blocks``): the
        fused step sums the first layer block by block.
    order : ndarray of int64, shape (n,)
        The epoch's sample order; mini-batch ``t`` is
        ``order[t*mini_batch:(t+1)*mini_batch]`` (the last may be shorter and
        uses its own size).
    mini_batch : int
    first, last : int
        Range of mini-batch numbers to run (a whole epoch is
        ``0, ceil(n/mini_batch)``).
    eta, lmbda : float
        Learning rate and L2 parameter.
    n : int
        Training-set size in the decay factor ``1 - eta*lmbda/n``.
    zs, acts, deltas : ndarray, shape (n_chunks, GRAD_CHUNK, n_z)
        Per-chunk scratch rows.
    grads : ndarray, shape (n_chunks, n_params)
        Per-chunk gradient sums (unused when a mini-batch is one chunk).
    partials : ndarray, shape (n_blocks, GRAD_CHUNK, >= sizes[1] stride)
        The fused step's block sums; overwritten.
    columns : ndarray, shape (>= 1, 2, >= width * padded_columns(params, GRAD_CHUNK))
        The fused step's scratch for its later layers (:func:`sample_errors_`;
        ``columns[0]`` here; ``width = batch_width(table)``); overwritten.
    sync : ndarray of int64
    n_lanes : int
        Unused here (:func:`sgd_parallel_`'s team); taken so that both
        drivers have one signature.

    Raises
    ------
    ValueError
        If the blocks or the buffers do not fit (:func:`fused_args_fit`;
        :class:`fastnet.workspace.TrainWorkspace` and
        ``fastnet.workspace.input_blocks`` make them fit).

    Notes
    -----
    The epoch runs inside a one-iteration ``prange``, on one thread: found
    when :func:`sgd_many_` (a ``prange`` over networks) trained one network
    on one thread in 51 ms an epoch against this kernel's 63 ms, same
    bits. The same :func:`sgd_epoch_serial_` called from a one-iteration
    ``prange`` wrapper took 48.5 ms against 58.8 ms called directly
    (``/work/exp/s26/serial_direct.py``). Whole epochs through
    ``Network.train`` with ``n_threads=1``, medians of 7, two processes
    each, before / after (``/work/exp/s26/ser_time.py``, 2026-12-02):
    [784, 30, 10] float32 57.8-60.3 / 49.5 ms, float64 92.4-97.1 / 85.0-86.1
    ms; [784, 100, 10] float32 173.8-175.3 / 157.6-160.6 ms, float64
    269.6-271.6 / 254.8-259.9 ms. It costs compile time once: a cold
    one-thread ``train`` 17.6 -> 22.1-22.6 s.
    """
    if not fused_args_fit(table, indptr, cuts, bounds, partials, columns, zs, mini_batch, 1):
        raise ValueError(
            "sgd_serial_: cuts, bounds, partials or columns do not fit the data, the layer sizes "
            "mini_batch or the lanes (make them with fastnet.workspace)"
        )
    # One iteration on one thread: not for parallelism. The parallel target
    # outlines the loop body into a function whose array arguments it marks
    # noalias (53 of them in this kernel's LLVM IR), and the same epoch then
    # ran 1.05x-1.22x faster, same bits (see the Notes above).
    for _ in prange(1):
        sgd_epoch_serial_(
            params,
            table,
            hidden,
            output,
            cost,
            labels,
            indptr,
            indices,
            values,
            cuts,
            bounds,
            order,
            mini_batch,
            first,
            last,
            eta,
            lmbda,
            n,
            zs,
            acts,
            deltas,
            grads,
            partials,
            columns,
            sync,
        )


@njit(**JIT_OPTIONS)
def sgd_epoch_serial_(
    params,
    table,
    hidden,
    output,
    cost,
    labels,
    indptr,
    indices,
    values,
    cuts,
    bounds,
    order,
    mini_batch,
    first,
    last,
    eta,
    lmbda,
    n,
    zs,
    acts,
    deltas,
    grads,
    partials,
    columns,
    sync,
):
    """:func:`sgd_serial_` without its checks and unused arguments (what
    :func:`sgd_many_` runs for each network). A mini-batch of one chunk
    in a call of larger ones (the epoch's short last one) takes the fused
    step on its own."""
    decay = params.dtype.type(1.0 - eta * lmbda / n)
    n_weights = table[0, B_OFF]
    n_samples = order.shape[0]
    # Mini-batches of one chunk take the fused step: every one when
    # mini_batch is at most GRAD_CHUNK, else at most the epoch's short last.
    split = first if n_chunks(mini_batch) == 1 else last
    if split == last and last > first:
        m_last = min(mini_batch, n_samples - (last - 1) * mini_batch)
        if n_chunks(m_last) == 1:
            split = last - 1
    for t in range(first, split):
        start = t * mini_batch
        m = min(mini_batch, n_samples - start)
        chunk_gradients_(
            params,
            table,
            hidden,
            output,
            cost,
            labels,
            indptr,
            indices,
            values,
            order[start : start + m],
            zs,
            acts,
            deltas,
            grads,
        )
        nc = n_chunks(m)
        update_block_(
            params, grads, nc, n_weights, decay, params.dtype.type(eta / m), 0, params.shape[0]
        )
    if last > split:
        fused_lane_(
            params,
            table,
            hidden,
            output,
            cost,
            labels,
            indptr,
            indices,
            values,
            cuts,
            bounds,
            order,
            mini_batch,
            split,
            last,
            eta,
            decay,
            partials,
            zs[0],
            acts[0],
            deltas[0],
            columns,
            sync,
            1,
            0,
            False,
        )


@njit(**PARALLEL_OPTIONS)
def sgd_parallel_(
    params,
    table,
    hidden,
    output,
    cost,
    X,
    labels,
    indptr,
    indices,
    values,
    cuts,
    bounds,
    order,
    mini_batch,
    first,
    last,
    eta,
    lmbda,
    n,
    zs,
    acts,
    deltas,
    grads,
    partials,
    columns,
    sync,
    n_lanes,
):
    """Same as :func:`sgd_serial_` for mini-batches of one chunk
    (``mini_batch <= GRAD_CHUNK``, the book's 10), each mini-batch's fused
    step spread over `n_lanes` threads. Gives the same bits as the serial
    driver.

    The whole call is one parallel region: each lane runs
    :func:`fused_lane_`, and the lanes meet at a barrier after the samples'
    forward and backward passes (split into contiguous runs of samples) and
    after the update, in which lane ``b`` (``b`` below the number of input
    blocks) owns block ``b``'s rows of the first layer: it updates them,
    then sums the next mini-batch's first layer over them while they are in
    its cache; lane 0 also updates every later layer and the biases. If the
    lanes do not all run at once, one lane does every lane's work
    (:mod:`fastnet.kernels.sync`).

    Larger mini-batches take the dense driver or the serial one
    (``fastnet.network.use_dense``): a parallel loop over their chunks,
    which this driver had until 2026-12-01, was never chosen once the dense
    driver took every mini-batch of more than GRAD_CHUNK samples with enough
    work to split.

    Parameters
    ----------
    params, table, hidden, output, cost, X, labels
        As in :func:`sgd_serial_`, and so are `indptr`, `indices`, `values`,
        `cuts`, `bounds`, `order`, `mini_batch`, `first`, `last`, `eta`,
        `lmbda` and `n`.
    zs, acts, deltas : ndarray, shape (1, GRAD_CHUNK, n_z)
        The chunk's scratch rows (``TrainWorkspace`` for such mini-batches).
    grads : ndarray
        Unused (taken so that both drivers have one signature).
    partials : ndarray, shape (n_blocks, GRAD_CHUNK, >= sizes[1] stride)
        Block sums of the next mini-batch; overwritten.
    columns : ndarray, shape (>= n_lanes, 2, >= width * padded_columns(params, GRAD_CHUNK))
        Each lane's scratch for its samples' later layers (``width =
        batch_width(table)``); overwritten.
    sync : ndarray of int64, shape (fastnet.kernels.sync.SYNC_SIZE,)
        The team's counters; overwritten.
    n_lanes : int
        Threads of the team (at least 1). Any number gives the same bits.

    Raises
    ------
    ValueError
        If `mini_batch` is more than GRAD_CHUNK, `n_lanes` is below 1 or
        `sync` too short, or as :func:`sgd_serial_`.
    """
    if n_chunks(mini_batch) != 1:
        raise ValueError("sgd_parallel_: mini_batch must be at most GRAD_CHUNK")
    if n_lanes < 1 or sync.shape[0] < SYNC_SIZE:
        raise ValueError("sgd_parallel_: n_lanes must be at least 1 and sync SYNC_SIZE long")
    if not fused_args_fit(table, indptr, cuts, bounds, partials, columns, zs, mini_batch, n_lanes):
        raise ValueError(
            "sgd_parallel_: cuts, bounds, partials or columns do not fit the data, the layer sizes "
            "mini_batch or the lanes (make them with fastnet.workspace)"
        )
    if last <= first:
        return
    decay = params.dtype.type(1.0 - eta * lmbda / n)
    reset_team_(sync)
    for t in prange(n_lanes):
        # The index is typed int64 before the parfor pass and uint64 in the
        # gufunc: Numba would compile fused_lane_ for each (2.8 s per dtype).
        lane = np.int64(t)
        mode = join_team(sync, lane, n_lanes)
        if mode != OUT:
            fused_lane_(
                params,
                table,
                hidden,
                output,
                cost,
                labels,
                indptr,
                indices,
                values,
                cuts,
                bounds,
                order,
                mini_batch,
                first,
                last,
                eta,
                decay,
                partials,
                zs[0],
                acts[0],
                deltas[0],
                columns,
                sync,
                n_lanes,
                lane,
                mode == TEAM,
            )


@njit(**JIT_OPTIONS)
def fused_lane_(
    params,
    table,
    hidden,
    output,
    cost,
    labels,
    indptr,
    indices,
    values,
    cuts,
    bounds,
    order,
    mini_batch,
    first,
    last,
    eta,
    decay,
    partials,
    zs,
    acts,
    deltas,
    columns,
    sync,
    n_lanes,
    lane,
    team,
):
    """One lane of the fused step (mini-batches of one chunk): its share of
    every mini-batch, or, when not `team`, every lane's share in lane order
    (:func:`sgd_serial_` runs it so, with one lane).

    Before the loop the owners of the input blocks sum the first mini-batch
    over their rows (:func:`first_block_sums_`); barrier. Per mini-batch:
    the forward and backward passes of samples ``batch[(p*m)//L :
    ((p+1)*m)//L]`` for lane ``p`` of ``L = n_lanes``, from the block sums
    (:func:`sample_errors_`); barrier; for the lane's run of blocks (the
    blocks split into contiguous runs, lane 0's from block 0; all of them
    for a lane working alone): the update of their rows (:func:`step_rows_`;
    block 0's owner also the later layers and biases), the fold of the scale
    ``alpha`` into them when the next step needs one (:func:`lazy_factors`,
    or every ALPHA_FOLD_EVERY-th mini-batch), and the next mini-batch's sums
    over them; barrier. At the end each owner folds the scale into its rows.

    Every parameter sees the operations of the one-lane run in the same
    order, and the blocks (which set the order of the first layer's sums)
    come from the data, so the bits do not depend on `n_lanes`. `params` is
    updated in place; `zs`, `acts`, `deltas` rows are written by the lane
    that owns their samples, `partials[b]` by block ``b``'s owner, and
    ``columns[lane]`` (``columns[0]`` when not `team`) is the lane's scratch
    for :func:`sample_errors_`.
    """
    lo = lane if team else 0
    hi = lane + 1 if team else n_lanes
    n_blocks = cuts.shape[0] - 1
    one = params.dtype.type(1)
    lazy = decay >= LAZY_DECAY_MIN
    n_samples = order.shape[0]
    w_off = table[0, W_OFF]
    stride = table[0, STRIDE]
    # This lane's blocks (all of them when it works alone): the lanes' runs
    # of blocks are contiguous, lane 0's starting at block 0.
    b_lo = (lo * n_blocks + n_lanes - 1) // n_lanes
    b_hi = (hi * n_blocks + n_lanes - 1) // n_lanes
    k_lo = cuts[b_lo]
    k_hi = cuts[b_hi]
    # A lane doing all the work sums each sample's first layer just before
    # its pass, as the inputs' loads then overlap the later layers' work;
    # otherwise the blocks' owners sum the mini-batch ahead, right after
    # their update, so that no lane reads rows another has just written.
    alone = lo == 0 and hi == n_lanes
    start = first * mini_batch
    if not alone:
        block_range_sums_(
            params,
            w_off,
            stride,
            indices,
            values,
            bounds,
            order[start : start + mini_batch],
            b_lo,
            b_hi,
            partials,
        )
    passed = 0
    if team:
        passed = barrier(sync, n_lanes, passed)
    alpha = one
    lane_columns = columns[lane if team else 0]
    for t in range(first, last):
        start = t * mini_batch
        m = min(mini_batch, n_samples - start)
        batch = order[start : start + m]
        step = params.dtype.type(eta / m)
        # A fold this step needs was done before its sums (below): with
        # alpha folded to one, lazy_factors asks for none.
        _, alpha_now, alpha_next, decay0, step0 = lazy_factors(alpha, decay, step, lazy, one)
        for part in range(lo, hi):
            sample_errors_(
                params,
                table,
                hidden,
                output,
                cost,
                labels,
                indices,
                values,
                bounds,
                batch,
                (part * m) // n_lanes,
                ((part + 1) * m) // n_lanes,
                alpha_now,
                alone,
                partials,
                zs,
                acts,
                deltas,
                lane_columns,
            )
        if team:
            passed = barrier(sync, n_lanes, passed)
        more = t + 1 < last
        # The scale is folded into the weights before the next step when
        # lazy_factors would say so, and after every ALPHA_FOLD_EVERY-th
        # mini-batch of the epoch, where a call may end (the end of a call
        # folds too): so an epoch split into calls at those points gives
        # the bits of one call.
        fold_next = (
            more
            and alpha_next != one
            and (
                (t + 1) % ALPHA_FOLD_EVERY == 0
                or lazy_factors(alpha_next, decay, step, lazy, one)[0]
            )
        )
        upcoming = order[start + m : start + m + mini_batch]
        if b_hi > b_lo:
            step_rows_(
                params,
                table,
                indices,
                values,
                cuts,
                bounds,
                batch,
                acts,
                deltas,
                decay0,
                step0,
                decay,
                step,
                b_lo,
                b_hi,
                b_lo == 0,
            )
            if fold_next:
                scale_first_rows_(params, table, alpha_next, k_lo, k_hi)
            if more and not alone:
                block_range_sums_(
                    params, w_off, stride, indices, values, bounds, upcoming, b_lo, b_hi, partials
                )
        if team:
            passed = barrier(sync, n_lanes, passed)
        alpha = one if fold_next else alpha_next
    if alpha != one and b_hi > b_lo:
        scale_first_rows_(params, table, alpha, k_lo, k_hi)


@njit(**INLINE_OPTIONS)
def all_finite_row(z):
    """Whether every entry of the 1-D `z` is finite."""
    for j in range(z.shape[0]):
        if not np.isfinite(z[j]):
            return False
    return True


@njit(**JIT_OPTIONS)
def sum_chunks(cost_parts, correct_parts):
    """The evaluation kernels' per-chunk partial sums, added in chunk order
    (so the totals do not depend on which thread ran which chunk)."""
    cost_sum = 0.0
    n_correct = 0
    for c in range(cost_parts.shape[0]):
        cost_sum += cost_parts[c]
        n_correct += correct_parts[c]
    return cost_sum, n_correct


@njit(**INLINE_OPTIONS)
def argmax_row(a, start, n):
    """Index (relative to `start`) of the first maximum of ``a[start:start+n]``."""
    best = 0
    for i in range(1, n):
        if a[start + i] > a[start + best]:
            best = i
    return best


@njit(**PARALLEL_OPTIONS)
def evaluate(
    params,
    table,
    hidden,
    output,
    cost,
    X,
    labels,
    indptr,
    indices,
    values,
    zs,
    acts,
    cost_parts,
    correct_parts,
    with_cost,
):
    """Summed cost and number of correct predictions over a data set.

    The data are split into EVAL_CHUNKS fixed chunks that run in parallel; the
    partial sums are combined in chunk order, so the result does not depend on
    the thread count.

    Parameters
    ----------
    params, table, hidden, output, cost
        As in :func:`forward_sample_`.
    X : ndarray, shape (n, sizes[0])
        Not read: the inputs come from the index (fastnet.Network passes a
        stand-in of the dtype of `params` for float32 data,
        :func:`fastnet.workspace.loop_data`).
    labels : ndarray of int64, shape (n,)
    indptr, indices, values : ndarray
        Non-zero index of the data (:func:`nonzero_index_`); `values` in the
        dtype of `params`, or float32 for float64 `params` (each input is
        widened exactly where it is read; :class:`fastnet.Network` converts
        them when it builds the index instead).
    zs, acts : ndarray, shape (EVAL_CHUNKS, n_z)
        Scratch rows; overwritten.
    cost_parts : ndarray of float64, shape (EVAL_CHUNKS,)
    correct_parts : ndarray of int64, shape (EVAL_CHUNKS,)
        Overwritten with per-chunk partial sums.
    with_cost : bool
        Whether to sum the costs; if not (accuracy alone), `cost_sum` is 0
        or NaN, and the logarithms of the cost are skipped (measured with
        the dense evaluation, which shares this flag: 1.2-1.3 ms of 9.7
        and 20.7 ms for [784,30,10] and [784,100,10], float32).

    Returns
    -------
    cost_sum : float
        Sum of the per-sample costs (no L2 term; 0 unless `with_cost`); NaN
        if any sample's first layer weighted input is not finite, which
        every NaN or infinite input causes (``inf * w`` is infinite,
        ``inf * 0`` NaN), so callers may skip a separate pass over `X` and
        look for bad inputs only then.
    n_correct : int
    """
    n = indptr.shape[0] - 1
    last = table.shape[0] - 1
    z_out = table[last, Z_OFF]
    n_out = table[last, N_OUT]
    n_first = table[0, N_OUT]
    one = params.dtype.type(1)
    for c in prange(EVAL_CHUNKS):
        total = 0.0
        correct = 0
        for i in range((c * n) // EVAL_CHUNKS, ((c + 1) * n) // EVAL_CHUNKS):
            cols, v = sample_inputs(indptr, indices, values, i)
            forward_sample_(params, table, hidden, output, v, cols, zs[c], acts[c], one)
            if not all_finite_row(zs[c, :n_first]):
                total = np.nan
            if with_cost:
                total += sample_cost(
                    cost, zs[c, z_out : z_out + n_out], acts[c, z_out : z_out + n_out], labels[i]
                )
            if argmax_row(acts[c], z_out, n_out) == labels[i]:
                correct += 1
        cost_parts[c] = total
        correct_parts[c] = correct
    return sum_chunks(cost_parts, correct_parts)


@njit(**PARALLEL_OPTIONS)
def feedforward_(params, table, hidden, output, X, indptr, indices, values, out, zs, acts):
    """Write the network's outputs for every row of `X` into `out`.

    Parameters
    ----------
    X : ndarray, shape (n, sizes[0])
        Not read: the inputs come from the index (fastnet.Network passes a
        stand-in of the dtype of `params` for data of the other dtype,
        :func:`fastnet.workspace.loop_data`).
    indptr, indices, values : ndarray
        Non-zero index of `X` (:func:`nonzero_index_`), values in the dtype
        of `params`. ``Network.feedforward`` uses this kernel for layers too
        narrow for BLAS, else :func:`fastnet.kernels.dense.dense_feedforward_`.
    out : ndarray, shape (n, sizes[-1])
        Overwritten.
    zs, acts : ndarray, shape (EVAL_CHUNKS, n_z)
        Scratch rows, as in :func:`evaluate`.
    """
    n = indptr.shape[0] - 1
    last = table.shape[0] - 1
    z_out = table[last, Z_OFF]
    n_out = table[last, N_OUT]
    one = params.dtype.type(1)
    for c in prange(EVAL_CHUNKS):
        for i in range((c * n) // EVAL_CHUNKS, ((c + 1) * n) // EVAL_CHUNKS):
            cols, v = sample_inputs(indptr, indices, values, i)
            forward_sample_(params, table, hidden, output, v, cols, zs[c], acts[c], one)
            for j in range(n_out):
                out[i, j] = acts[c, z_out + j]


@njit(**JIT_OPTIONS)
def sum_of_squares(v):
    """``sum(v**2)`` in float64, summed in index order (the L2 term)."""
    s = 0.0
    for i in range(v.shape[0]):
        s += float(v[i]) * float(v[i])
    return s


@njit(**JIT_OPTIONS)
def batch_gradient_(
    params,
    table,
    hidden,
    output,
    cost,
    X,
    labels,
    indptr,
    indices,
    values,
    idx,
    zs,
    acts,
    deltas,
    grads,
):
    """Summed gradient of the samples ``X[idx]`` (chunked as in a multi-chunk
    SGD step), written into ``grads[0]``. Used by gradient checks and tests.

    Parameters
    ----------
    grads : ndarray, shape (n_chunks(len(idx)), n_params)
        Per-chunk sums; on return ``grads[0]`` holds the total.
    """
    nc = chunk_gradients_(
        params,
        table,
        hidden,
        output,
        cost,
        labels,
        indptr,
        indices,
        values,
        idx,
        zs,
        acts,
        deltas,
        grads,
    )
    for c in range(1, nc):
        for p in range(grads.shape[1]):
            grads[0, p] += grads[c, p]


@njit(**PARALLEL_OPTIONS)
def sgd_many_(
    params,
    p_off,
    tables,
    t_off,
    hidden,
    output,
    cost,
    X,
    labels,
    indptr,
    indices,
    values,
    cuts,
    bounds,
    orders,
    mini_batch,
    eta,
    lmbda,
    n,
    work,
    w_off,
    schedule,
    n_threads,
    sync,
):
    """One epoch for each of K independent networks, one network per thread.

    Network ``k`` owns ``params[p_off[k]:p_off[k] + n_params]`` (``n_params``
    from its table; the offsets are :func:`aligned_length` apart), layer table
    ``tables[t_off[k]:t_off[k+1]]`` and work pool ``work[w_off[k]:w_off[k+1]]``
    (its zs, acts, deltas, grads, block sums and columns, as in a
    :class:`fastnet.workspace.TrainWorkspace`, each part :func:`aligned_length`
    from the last), and runs exactly
    :func:`sgd_serial_` on them with its own order ``orders[k]``: the result is
    bit for bit what training it alone gives.

    Parameters
    ----------
    params : ndarray, shape (p_off[-1],)
        Updated in place.
    p_off, t_off, w_off : ndarray of int64, shape (K + 1,)
        Offsets of each network's parameters, table rows and work pool
        (``fastnet.many.train_many`` puts parameters and pools on aligned
        offsets, ``fastnet.workspace.train_pool_size`` apart for the pools).
    tables : ndarray of int64, shape (sum of n_layers, N_COLUMNS)
    hidden, output, cost : ndarray of int64, shape (K,)
        Activation and cost codes per network.
    X, labels, indptr, indices, values, cuts, bounds
        The shared training data, its non-zero index and its input blocks.
    orders : ndarray of int64, shape (K, n)
        Each network's sample order for this epoch.
    mini_batch : ndarray of int64, shape (K,)
        Mini-batch size per network (at most n).
    eta, lmbda : ndarray of float64, shape (K,)
    n : int
        Training-set size.
    work : ndarray, shape (sum of pool sizes,)
    schedule : ndarray of int64, shape (K,)
        Network indices, most work first; they are dealt to threads
        round-robin (a contiguous split could give one thread all the large
        networks). Which thread runs a network never changes its bits.
    n_threads : int
        Threads to deal the networks to (the caller's Numba thread count).
    sync : ndarray of int64, shape (SYNC_SIZE,)
        Taken by the fused step's lane code, whose single lanes here never
        meet, so it is not written.
    """
    n_nets = p_off.shape[0] - 1
    n_lanes = max(1, min(n_threads, n_nets))
    for t in prange(n_lanes):
        for i in range(t, n_nets, n_lanes):
            k = schedule[i]
            _sgd_one_of_many_(
                params,
                p_off,
                tables,
                t_off,
                hidden,
                output,
                cost,
                X,
                labels,
                indptr,
                indices,
                values,
                cuts,
                bounds,
                orders,
                mini_batch,
                eta,
                lmbda,
                n,
                work,
                w_off,
                sync,
                k,
            )


@njit(**JIT_OPTIONS)
def _sgd_one_of_many_(
    params,
    p_off,
    tables,
    t_off,
    hidden,
    output,
    cost,
    X,
    labels,
    indptr,
    indices,
    values,
    cuts,
    bounds,
    orders,
    mini_batch,
    eta,
    lmbda,
    n,
    work,
    w_off,
    sync,
    k,
):
    """Network ``k``'s epoch inside :func:`sgd_many_`."""
    table = tables[t_off[k] : t_off[k + 1]]
    last = table.shape[0] - 1
    # Each network's parameters, and each part of its pool, start on an
    # aligned address (p_off and the parts are aligned_length apart).
    p = params[p_off[k] : p_off[k] + table[last, B_OFF] + table[last, N_OUT]]
    size = params.itemsize
    m = mini_batch[k]
    nc = n_chunks(m)
    n_z = table[last, Z_OFF] + table[last, STRIDE]
    rows = nc * GRAD_CHUNK * n_z
    step = aligned_length(rows, size)
    pool = work[w_off[k] : w_off[k + 1]]
    zs = pool[:rows].reshape((nc, GRAD_CHUNK, n_z))
    acts = pool[step : step + rows].reshape((nc, GRAD_CHUNK, n_z))
    deltas = pool[2 * step : 2 * step + rows].reshape((nc, GRAD_CHUNK, n_z))
    g_lo = 3 * step
    grads = pool[g_lo : g_lo + nc * p.shape[0]].reshape((nc, p.shape[0]))
    s_lo = g_lo + aligned_length(nc * p.shape[0], size)
    s_len = (cuts.shape[0] - 1) * GRAD_CHUNK * table[0, STRIDE]
    partials = pool[s_lo : s_lo + s_len].reshape((cuts.shape[0] - 1, GRAD_CHUNK, table[0, STRIDE]))
    # The rest of the pool: one lane's columns (fastnet.workspace.column_shape).
    c_lo = s_lo + aligned_length(s_len, size)
    columns = pool[c_lo:].reshape((1, 2, (pool.shape[0] - c_lo) // 2))
    sgd_epoch_serial_(
        p,
        table,
        hidden[k],
        output[k],
        cost[k],
        labels,
        indptr,
        indices,
        values,
        cuts,
        bounds,
        orders[k],
        m,
        np.int64(0),  # not a literal: shares sgd_serial_'s compile (3 s per dtype)
        (n + m - 1) // m,
        eta[k],
        lmbda[k],
        n,
        zs,
        acts,
        deltas,
        grads,
        partials,
        columns,
        sync,
    )
