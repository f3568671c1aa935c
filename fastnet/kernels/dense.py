"""The dense SGD driver: each mini-batch as matrix products through BLAS.

For large mini-batches on wide layers, the per-sample loops of
:mod:`fastnet.kernels.mlp` cannot match BLAS. This driver runs every later
layer's forward pass, backpropagation and weight gradient as one ``np.dot``
each (Numba calls the BLAS that SciPy ships), so a whole epoch still runs in
one compiled call. The first layer reads its inputs from the non-zero index
instead, skipping MNIST's 81% zeros: its forward sums row by row
(:func:`fastnet.kernels.rows.first_layer_sums_`, as the loop kernels do, one
partial sum per input block: :func:`first_block_sums_`) and its weight
gradient input by input (:func:`first_gradient_rows_`). Both beat gathering
the inputs into a matrix for BLAS products (paired A/B of the whole driver,
2026-12-01, forward then gradient: [784, 30, 10] mini-batch 100 float32
1.06x then 1.06x, float64 1.15x then 1.26x; [784, 100, 10] mini-batch 100
1.27x then 1.13x; [784, 256, 128, 10] mini-batch 64 1.31x then 1.13x).
``fastnet.network.use_dense`` decides where the driver is used, from the
mini-batch size and the layer sizes only, never from the thread count.

BLAS sums in its own order (blocked, with fused multiply-adds), so this
driver's bits differ from the loop drivers' in the last place; it matches the
reference as they do. Its results do not depend on the thread count: BLAS runs
on one thread, the row blocks its products take depend on the mini-batch size
only, and the threads share the work in units (blocks of rows, blocks of the
first layer's inputs) whose sums run in a fixed order whoever takes them
(:func:`sgd_dense_`). ``tests/test_dense.py`` checks one thread and one lane
against all.

Work buffers are layer-major: layer ``l``'s weighted inputs for a mini-batch of
``m <= mini_batch`` samples are the ``(m, stride)`` C-contiguous block starting at
``mini_batch * table[l, Z_OFF]`` of ``zs`` (the same for ``acts`` and
``deltas``), so each product reads and writes whole blocks without copies.

Products take whole stored weight blocks, padding included
(:mod:`fastnet.layout`): a padded block's extra columns are zero, so the
padded entries of ``z`` and of the previous layer's errors come out zero;
activations and errors are computed for the real neurons only, and the padded
entries of ``acts`` and ``deltas`` are set to zero, so the padding's gradients
are zero.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import overload

from fastnet._config import (
    DENSE_EVAL_CONVERT_ROWS,
    DENSE_EVAL_ROWS,
    DENSE_TRANSPOSE_MAX,
    EVAL_CHUNKS,
    JIT_OPTIONS,
)
from fastnet.kernels.activations import (
    activate_,
    output_delta_,
    sample_cost,
    scale_by_derivative_,
)
from fastnet.kernels.codes import B_OFF, N_IN, N_OUT, STRIDE, W_OFF, W_ROWS, Z_OFF
from fastnet.kernels.mlp import (
    PARALLEL_OPTIONS,
    all_finite_row,
    argmax_row,
    first_block_sums_,
    sum_chunks,
    update_block_,
)
from fastnet.kernels.rows import add_rows_, row_fits_registers
from fastnet.kernels.sync import (
    CLAIMS,
    OUT,
    SYNC_SIZE,
    TEAM,
    atomic_add,
    barrier,
    join_team,
    reset_team_,
)


@njit(**JIT_OPTIONS)
def layer_block(buf, table, layer, mini_batch, m):
    """Layer `layer`'s ``(m, stride)`` block of a layer-major work buffer
    (its first ``n_out`` columns are the real neurons)."""
    stride = table[layer, STRIDE]
    lo = mini_batch * table[layer, Z_OFF]
    return buf[lo : lo + m * stride].reshape((m, stride))


@njit(**JIT_OPTIONS)
def layer_weights(params, table, layer):
    """Layer `layer`'s weights as stored: ``w.T`` in a zero-padded block,
    shaped ``(W_ROWS, STRIDE)``."""
    rows = table[layer, W_ROWS]
    stride = table[layer, STRIDE]
    lo = table[layer, W_OFF]
    return params[lo : lo + rows * stride].reshape((rows, stride))


@njit(**JIT_OPTIONS)
def transposed_layer(table, layer):
    """Whether the dense driver keeps a transposed copy of later layer
    `layer`'s weights (at most DENSE_TRANSPOSE_MAX stored weights), and
    where it starts in the copies' buffer (-1 if not kept): the later
    layers' weights are contiguous in ``params``, from layer 1's, and so are
    their copies, each at its layer's offset from layer 1's."""
    if layer < 1 or table[layer, W_ROWS] * table[layer, STRIDE] > DENSE_TRANSPOSE_MAX:
        return -1
    return table[layer, W_OFF] - table[1, W_OFF]


@njit(**JIT_OPTIONS)
def transposed_size(table):
    """Length of the dense driver's buffer of transposed later layers: the
    later layers' stored weights (0 without later layers)."""
    if table.shape[0] < 2:
        return 0
    return table[0, B_OFF] - table[1, W_OFF]


@njit(**JIT_OPTIONS)
def transpose_later_(params, table, transposed):
    """Copy each later layer that :func:`transposed_layer` names into
    `transposed`, as its ``(STRIDE, W_ROWS)`` transpose (C-contiguous).

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    table : ndarray of int64
    transposed : ndarray, shape (>= transposed_size(table),)
        The copies; the other layers' parts are not written.
    """
    for layer in range(1, table.shape[0]):
        off = transposed_layer(table, layer)
        if off < 0:
            continue
        w = layer_weights(params, table, layer)
        rows = w.shape[0]
        stride = w.shape[1]
        wt = transposed[off : off + rows * stride].reshape((stride, rows))
        for k in range(rows):
            wk = w[k]
            for j in range(stride):
                wt[j, k] = wk[j]


def rows_as(X, lo, m, buf):
    """Rows ``lo:lo+m`` of `X` in the dtype of `buf`: a view of `X` when the
    dtypes match, else converted into the front of `buf` (1-D, at least
    ``m * X.shape[1]`` long) and returned as an ``(m, X.shape[1])`` view of
    it. Lets a network evaluate data of the other float dtype a block at a
    time instead of converting the whole array first, with the values
    converting first gives: float32 to float64 is exact, float64 to float32
    rounds to nearest as NumPy's ``astype`` does (and overflows to infinity,
    which the evaluation then flags as a non-finite input). Compiled code
    picks the branch from the dtypes at compile time (the overload below);
    this body runs without JIT.
    """
    if X.dtype == buf.dtype:
        return X[lo : lo + m]
    out = buf[: m * X.shape[1]].reshape((m, X.shape[1]))
    out[:] = X[lo : lo + m]
    return out


@overload(rows_as, jit_options=JIT_OPTIONS)
def _rows_as(X, lo, m, buf):
    if X.dtype == buf.dtype:
        return lambda X, lo, m, buf: X[lo : lo + m]

    def convert(X, lo, m, buf):
        n_in = X.shape[1]
        out = buf[: m * n_in].reshape((m, n_in))
        for r in range(m):
            src = X[lo + r]
            dst = out[r]
            for k in range(n_in):
                dst[k] = src[k]
        return out

    return convert


@njit(**JIT_OPTIONS)
def forward_rows_(params, table, hidden, output, x, first, stride, m, lo, hi, zs, acts):
    """Feed rows ``lo:hi`` forward from layer `first` on, one BLAS product
    per layer.

    Parameters
    ----------
    params, table, hidden, output
        As in :func:`fastnet.kernels.mlp.forward_sample_`.
    x : ndarray, shape (hi - lo, sizes[0]), C-contiguous
        The rows' inputs (read only when `first` is 0).
    first : int
        First layer to compute; the earlier layers' blocks must be filled.
    stride, m : int
        Layer-major buffers hold each layer as an ``(m, table[l, STRIDE])``
        block at ``stride * table[l, Z_OFF]`` (:func:`layer_block`).
    lo, hi : int
        The rows to compute.
    zs, acts : ndarray, shape (stride * n_z,)
        Layer-major work buffers; only rows ``lo:hi`` are written.
    """
    n_layers = table.shape[0]
    for layer in range(first, n_layers):
        n_out = table[layer, N_OUT]
        b_off = table[layer, B_OFF]
        z = layer_block(zs, table, layer, stride, m)[lo:hi]
        a = layer_block(acts, table, layer, stride, m)[lo:hi]
        w = layer_weights(params, table, layer)
        if layer == 0:
            np.dot(x, w, z)
        else:
            np.dot(layer_block(acts, table, layer - 1, stride, m)[lo:hi], w, z)
        code = output if layer == n_layers - 1 else hidden
        for r in range(hi - lo):
            zr = z[r, :n_out]
            for j in range(n_out):
                zr[j] += params[b_off + j]
            activate_(code, zr, a[r, :n_out])
            for j in range(n_out, a.shape[1]):
                a[r, j] = 0


@njit(**JIT_OPTIONS)
def column_sums_(d, out):
    """``out[j] = sum_r d[r, j]`` for ``j < len(out)``, rows added in order
    (a bias gradient).

    A row at a time, all columns at once: a column at a time walked `d` with
    a stride of a row and waited on each addition (100 rows of 30 columns,
    float32: 1.95 -> 0.81 us, float64 1.73 -> 0.65 us; same bits).
    """
    n = out.shape[0]
    for j in range(n):
        out[j] = d[0, j]
    for r in range(1, d.shape[0]):
        dr = d[r]
        for j in range(n):
            out[j] += dr[j]


@njit(**JIT_OPTIONS)
def errors_rows_(
    params, table, hidden, cost, labels, rows, stride, m, lo, hi, zs, acts, deltas, transposed
):
    """Errors of rows ``lo:hi`` for every layer (the book's BP1 and BP2), one
    BLAS product per layer. Each row's errors depend on that row only, so
    different row ranges can run side by side.

    Parameters
    ----------
    params, table, hidden, cost
        As in :func:`fastnet.kernels.mlp.backward_sample_`.
    labels : ndarray of int64, shape (n,)
    rows : ndarray of int64, shape (m,)
        The mini-batch's sample indices (its labels are ``labels[rows]``).
    stride, m, lo, hi, zs, acts
        As in :func:`forward_rows_`, filled by it.
    deltas : ndarray, shape (stride * n_z,)
        Layer-major; rows ``lo:hi`` of every layer are overwritten.
    transposed : ndarray
        The later layers' transposed copies (:func:`transpose_later_`), up
        to date: the layers that have one multiply by it, the others by
        their weights' transposed view.
    """
    last = table.shape[0] - 1
    n_out = table[last, N_OUT]
    z = layer_block(zs, table, last, stride, m)[lo:hi]
    a = layer_block(acts, table, last, stride, m)[lo:hi]
    d = layer_block(deltas, table, last, stride, m)[lo:hi]
    for r in range(hi - lo):
        output_delta_(cost, z[r, :n_out], a[r, :n_out], labels[rows[lo + r]], d[r, :n_out])
        for j in range(n_out, d.shape[1]):
            d[r, j] = 0
    for layer in range(last, 0, -1):
        d = layer_block(deltas, table, layer, stride, m)[lo:hi]
        # BP2 with the weights before this step's update.
        d_prev = layer_block(deltas, table, layer - 1, stride, m)[lo:hi]
        off = transposed_layer(table, layer)
        if off >= 0:
            n_rows = table[layer, W_ROWS]
            wt = transposed[off : off + n_rows * d.shape[1]].reshape((d.shape[1], n_rows))
            np.dot(d, wt, d_prev)
        else:
            np.dot(d, layer_weights(params, table, layer).T, d_prev)
        z_prev = layer_block(zs, table, layer - 1, stride, m)[lo:hi]
        a_prev = layer_block(acts, table, layer - 1, stride, m)[lo:hi]
        n_in = table[layer, N_IN]
        for r in range(hi - lo):
            scale_by_derivative_(hidden, z_prev[r, :n_in], a_prev[r, :n_in], d_prev[r, :n_in])
            for j in range(n_in, d_prev.shape[1]):
                d_prev[r, j] = 0


@njit(**JIT_OPTIONS)
def later_gradients_(table, stride, m, acts, deltas, grad):
    """Gradient sums over all `m` rows of every layer's biases and of the
    weights of every layer after the first: ``a_prev.T @ delta`` per layer
    (one BLAS product) and column sums of ``delta`` in row order.

    Parameters
    ----------
    table : ndarray of int64
    stride, m : int
        As in :func:`forward_rows_`.
    acts, deltas : ndarray, shape (stride * n_z,)
        Filled by :func:`forward_rows_` and :func:`errors_rows_` for all rows.
    grad : ndarray, shape (n_params,)
        Overwritten, except the first layer's weights.
    """
    for layer in range(table.shape[0]):
        n_out = table[layer, N_OUT]
        b_off = table[layer, B_OFF]
        d = layer_block(deltas, table, layer, stride, m)
        if layer > 0:
            a_prev = layer_block(acts, table, layer - 1, stride, m)
            np.dot(a_prev.T, d, layer_weights(grad, table, layer))
        column_sums_(d, grad[b_off : b_off + n_out])


@njit(**JIT_OPTIONS)
def first_gradient_rows_(indices, values, bounds, rows, block, d, k_lo, k_hi, g):
    """``g[k] = sum_r x[r, k] * d[r]`` for the first layer's rows
    ``k_lo <= k < k_hi`` (input block `block`), from the non-zero index,
    rows ``r`` added in order.

    Row ``r`` is sample ``i = rows[r]``, whose non-zeros in the block are
    ``indices[q]``, ``values[q]`` for ``bounds[i, block] <= q < bounds[i,
    block + 1]`` (:func:`sample_bounds_`, found once per data set), so a
    block costs no search. Each column names its own row of `g`, so the bits
    do not depend on the blocks.

    Replaced gathering the inputs into a matrix and one BLAS product
    ``x[:, k_lo:k_hi].T @ d``: skipping MNIST's 81% zeros won (paired A/B of
    the whole driver, 2026-12-01: [784, 30, 10] mini-batch 100 float32
    1.06x, float64 1.26x; [784, 100, 10] mini-batch 100 1.13x;
    [784, 256, 128, 10] mini-batch 64 1.13x). Rows that fit the registers
    (:func:`fastnet.kernels.rows.row_fits_registers`) go to
    :func:`fastnet.kernels.rows.add_rows_` a sample at a time (paired A/B
    of the whole driver against the loop, 2026-12-01, 2 threads:
    [784, 30, 10] mini-batch 100 float32 1.15x-1.25x, float64
    1.02x-1.06x). Longer rows keep the loop: a call per sample measured
    0.90x-0.98x of it on [784, 256, 128, 10].

    Parameters
    ----------
    indices, values : ndarray
        Non-zero index of the data (:func:`fastnet.kernels.mlp.nonzero_index_`),
        values in the dtype of `g`.
    bounds : ndarray of int64, shape (n, n_blocks + 1)
        Per sample of the data, where its non-zeros cross the blocks.
    rows : ndarray of int64, shape (m,)
        The mini-batch's samples.
    block : int
    d : ndarray, shape (m, stride)
        The first layer's errors, one row per sample.
    k_lo, k_hi : int
        The block's inputs, ``cuts[block]`` to ``cuts[block + 1] - 1``.
    g : ndarray, shape (n_in, stride)
        The first layer's gradient block; rows ``k_lo:k_hi`` overwritten.
    """
    stride = g.shape[1]
    if row_fits_registers(g, stride):
        g_flat = g.reshape(g.shape[0] * stride)
        for p in range(k_lo * stride, k_hi * stride):
            g_flat[p] = 0
        for r in range(d.shape[0]):
            i = rows[r]
            add_rows_(
                g_flat, 0, stride, indices, values, bounds[i, block], bounds[i, block + 1], 1, d[r]
            )
        return
    # Row by row: zeroing long rows through the flat view measured 0.89x-0.96x
    # of this in the whole driver ([784, 100, 10], [784, 256, 128, 10]; not
    # in a loop of this kernel alone; the cause was not found).
    for k in range(k_lo, k_hi):
        gk = g[k]
        for j in range(gk.shape[0]):
            gk[j] = 0
    for r in range(d.shape[0]):
        dr = d[r]
        q_lo = bounds[rows[r], block]
        q_hi = bounds[rows[r], block + 1]
        cols = indices[q_lo:q_hi]
        v = values[q_lo:q_hi]
        for q in range(cols.shape[0]):
            c = v[q]
            gk = g[cols[q]]
            for j in range(gk.shape[0]):
                gk[j] += c * dr[j]


@njit(**JIT_OPTIONS)
def block_bounds_(indptr, indices, i, cuts, out):
    """Where sample `i`'s non-zeros cross the first layer's input blocks.

    Parameters
    ----------
    indptr, indices : ndarray
        Non-zero index of the data.
    i : int
        The sample.
    cuts : ndarray of int64, shape (n_blocks + 1,)
        The blocks (:func:`balance_inputs_`).
    out : ndarray of int64, shape (n_blocks + 1,)
        Overwritten: the sample's non-zeros in block ``b`` are positions
        ``out[b]`` to ``out[b + 1] - 1`` of `indices`.

    Examples
    --------
    >>> import numpy as np
    >>> indptr, indices = np.array([0, 4]), np.array([1, 2, 5, 7], np.int32)
    >>> out = np.empty(3, np.int64)
    >>> block_bounds_(indptr, indices, 0, np.array([0, 3, 9]), out)
    >>> out.tolist()
    [0, 2, 4]
    """
    n_blocks = cuts.shape[0] - 1
    q = indptr[i]
    hi = indptr[i + 1]
    out[0] = q
    for b in range(1, n_blocks):
        c = cuts[b]
        while q < hi and indices[q] < c:
            q += 1
        out[b] = q
    out[n_blocks] = hi


@njit(**PARALLEL_OPTIONS)
def sample_bounds_(indptr, indices, cuts, bounds):
    """:func:`block_bounds_` for every sample of the data: row ``i`` of
    `bounds` (shape ``(n, n_blocks + 1)``, int64) is overwritten with sample
    ``i``'s, rows in parallel (MNIST's 50,000 training images: 1.2 ms on 2
    threads against 2.5 ms in one loop, /work/exp/s22/hist.py)."""
    for i in prange(bounds.shape[0]):
        block_bounds_(indptr, indices, i, cuts, bounds[i])


@njit(**PARALLEL_OPTIONS)
def balance_inputs_(indptr, indices, first_share, counts, cuts):
    """Split the first layer's inputs into ``len(cuts) - 1`` runs, the first
    holding about `first_share` of the data's non-zeros and the others
    about as many each of the rest (MNIST's are in the middle of the image:
    runs of equal width would not share the work evenly).

    Parameters
    ----------
    indptr, indices : ndarray
        Non-zero index of the data; every sample is counted.
    first_share : float
        The first run's share, between 0 and 1 (``1 / n_blocks``: even
        runs). Ignored for one run.
    counts : ndarray of int64, shape (n_chunks, n_in)
        Scratch; row ``c`` is overwritten with each input's non-zeros in the
        ``c``-th of `n_chunks` fixed runs of the index, counted in parallel
        (the counts are integers, so the cuts do not depend on the runs).
        On MNIST's 50,000 training images 2.9 ms with 8 runs on 2 threads
        against 13.2 ms counting in one pass (/work/exp/s22/hist.py).
    cuts : ndarray of int64, shape (n_blocks + 1,)
        Overwritten: run ``b`` is inputs ``cuts[b]`` to ``cuts[b + 1] - 1``,
        from ``cuts[0] = 0`` to ``cuts[-1] = n_in``. Each run ends at the
        first input where the running count reaches its share.
    """
    n_chunks, n_in = counts.shape
    n_blocks = cuts.shape[0] - 1
    lo = indptr[0]
    total = indptr[indptr.shape[0] - 1] - lo
    for c in prange(n_chunks):
        row = counts[c]
        for k in range(n_in):
            row[k] = 0
        for q in range(lo + (c * total) // n_chunks, lo + ((c + 1) * total) // n_chunks):
            row[indices[q]] += 1
    rest = (1.0 - first_share) / max(n_blocks - 1, 1)
    cuts[0] = 0
    b = 1
    acc = 0
    for k in range(n_in):
        for c in range(n_chunks):
            acc += counts[c, k]
        while b < n_blocks and acc >= total * (first_share + (b - 1) * rest):
            cuts[b] = k + 1
            b += 1
    while b <= n_blocks:
        cuts[b] = n_in
        b += 1


@njit(**JIT_OPTIONS)
def next_unit(sync, counter, team, base, unit):
    """The next unit of work for a lane of :func:`sgd_dense_`: a claim on the
    team's counter ``sync[counter]`` (minus `base`, the claims of earlier
    phases), or ``unit + 1`` for a lane working alone."""
    if team:
        return atomic_add(sync, counter, 1) - base
    return unit + 1


@njit(**PARALLEL_OPTIONS)
def sgd_dense_(
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
    transposed,
    sync,
    n_lanes,
    row_block,
):
    """Run mini-batches ``first`` to ``last - 1`` of an epoch as matrix products.

    The whole call is one parallel region of `n_lanes` lanes
    (:mod:`fastnet.kernels.sync`); each mini-batch is two phases, split into
    fixed units of work that the lanes take from a shared counter, the next
    free unit to whichever lane is free, and a barrier after each:

    1. Blocks of `row_block` rows: each row's first-layer weighted input,
       the sum of its partial sums over the input blocks, then the block
       forward through the later layers and back to its errors, one BLAS
       product per layer (:func:`forward_rows_`, :func:`errors_rows_`).
    2. The gradient and the book's step
       ``w <- (1 - eta*lmbda/n) w - (eta/m) sum grad_w``,
       ``b <- b - (eta/m) sum grad_b``: one unit per input block of the
       first layer (:func:`first_gradient_rows_`), which then sums the *next*
       mini-batch's partial weighted inputs over the rows it has just updated
       (:func:`first_block_sums_`); and one unit for the later layers'
       weights and every bias (:func:`later_gradients_`, BLAS).

    So a block of the first layer's weights is summed forward and updated
    by the lane that owns it, right after its update, instead of every lane
    reading every row of the first layer in phase 1. Paired A/B against the
    driver before (in which phase 1 summed all of a row's inputs and found
    where they cross the blocks, 4 blocks per pair of lanes and 1 for a lane
    alone; ``/work/exp/s20/ab_s20.py``, 2026-12-01, 2 threads / 1 thread,
    medians of 8-10 rounds): [784, 30, 10] mini-batch 100 float32 1.36x /
    1.14x, float64 1.23x / 1.07x, [784, 100, 10] 1.14x / 1.04x,
    [784, 256, 128, 10] mini-batch 64 float32 1.20x / 1.07x, float64 1.06x /
    1.06x, [784, 30, 10] mini-batch 17 1.33x / 1.07x. Which part of the
    change gives what was not separated. The first mini-batch of a call has
    its partial sums computed before the loop, shared out as the blocks.

    Each pair of lanes shares a run of input blocks from both ends, one lane
    upwards and the other downwards until they meet, so a lane keeps the
    same blocks from one mini-batch to the next; the last run ends with the
    later layers' unit, which the downward lane takes first. Units instead
    of fixed halves let the faster core do more when the host slows one vCPU
    (it slows one at a time); one region per call instead of ``prange``
    loops per mini-batch saves their launches.

    The input blocks (`cuts`) are fixed per data set and the row blocks per
    mini-batch size, and every sum runs in a fixed order whichever lane
    takes the unit, so the bits depend neither on the thread count nor on
    who took what, nor on how an epoch is split into calls.
    BLAS must run on one thread inside (``fastnet.threads.blas_threads(1)``):
    its own threading gave different bits on different thread counts.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Updated in place.
    table, hidden, output, cost, X, labels, order, mini_batch, first, last, eta, lmbda, n
        As in :func:`fastnet.kernels.mlp.sgd_serial_` (`X` is not read).
    indptr, indices, values : ndarray
        Non-zero index of the data, values in the dtype of `params`; the
        first layer reads its inputs from it.
    cuts : ndarray of int64, shape (n_blocks + 1,)
        The first layer's input blocks, from ``cuts[0] = 0`` to
        ``cuts[-1] = sizes[0]`` (:func:`balance_inputs_`).
    bounds : ndarray of int64, shape (n, n_blocks + 1)
        Where each sample's non-zeros cross the blocks (:func:`sample_bounds_`).
        ``fastnet.workspace.input_blocks`` makes both.
    zs, acts, deltas : ndarray, shape (mini_batch * n_z,)
        Layer-major scratch (see the module docstring).
    grads : ndarray, shape (1, n_params)
        The mini-batch's gradient sum.
    partials : ndarray, shape (n_blocks, mini_batch, table[0, STRIDE])
        The next mini-batch's first-layer sums per input block; overwritten.
    transposed : ndarray, shape (>= transposed_size(table),)
        Transposed copies of the small later layers for the backward
        products (:func:`transpose_later_`); overwritten.
    sync : ndarray of int64, shape (SYNC_SIZE + 8 * ceil(n_lanes / 2),)
        The team's counters (:mod:`fastnet.kernels.sync`), then one claim
        counter per pair of lanes; overwritten.
    n_lanes : int
        Lanes of the team (at least 1, normally the thread count).
    row_block : int
        Rows per unit of phase 1 (at least 1;
        :func:`fastnet.workspace.dense_row_block`).

    Raises
    ------
    ValueError
        If the blocks do not fit the data or the layer sizes, or the scratch
        buffers do not fit `mini_batch`, the lanes or the blocks
        (:class:`fastnet.workspace.DenseWorkspace` and
        ``fastnet.workspace.input_blocks`` make them fit).

    Notes
    -----
    Until 2026-12-01 the threads took fixed halves (of the rows, then of the
    first layer's inputs) in two ``prange`` loops per mini-batch, and the
    update in a third. With units from shared counters, paired rounds
    against that driver (2 threads, 15,000 shuffled MNIST images per round)
    measured [784, 30, 10] mini-batch 100 float32 1.01x (1 thread 1.07x),
    float64 1.05x (1 thread 1.10x), [784, 256, 128, 10] mini-batch 64
    float32 1.15x (1 thread 0.97x), [784, 30, 10] mini-batch 17 1.20x.
    Each input block costs a pass over the mini-batch's samples, in both the
    forward sums and the gradient, hence few blocks (INPUT_BLOCKS).

    Examples
    --------
    Through the public API, a mini-batch this large on these layers takes
    this driver:

    >>> import numpy as np, fastnet
    >>> rng = np.random.default_rng(0)
    >>> net = fastnet.Network([64, 256, 10], seed=0)
    >>> X, y = rng.random((512, 64)), rng.integers(0, 10, 512)
    >>> net.train((X, y), 1, 256, 0.5).header["kernel"]
    'dense'
    """
    # Out-of-range indices are not checked in compiled code: a short buffer
    # from a direct caller would write past its end.
    n_blocks = cuts.shape[0] - 1
    if (
        n_blocks < 1
        or cuts[0] != 0
        or cuts[n_blocks] != table[0, N_IN]
        or bounds.shape[0] != indptr.shape[0] - 1
        or bounds.shape[1] != n_blocks + 1
    ):
        raise ValueError(
            "sgd_dense_: cuts or bounds do not fit the data and the layer sizes "
            "(make them with fastnet.workspace.input_blocks)"
        )
    if (
        n_lanes < 1
        or row_block < 1
        or partials.shape[0] != n_blocks
        or partials.shape[1] < mini_batch
        or partials.shape[2] < table[0, STRIDE]
        or sync.shape[0] < SYNC_SIZE + 8 * ((n_lanes + 1) // 2)
        or transposed.shape[0] < transposed_size(table)
    ):
        raise ValueError("sgd_dense_: partials, transposed, sync, n_lanes or row_block do not fit")
    if last <= first:
        return
    decay = params.dtype.type(1.0 - eta * lmbda / n)
    reset_team_(sync)
    for i in range(SYNC_SIZE, sync.shape[0]):
        sync[i] = 0
    for t in prange(n_lanes):
        lane = np.int64(t)  # one type for dense_lane_, see sgd_parallel_
        mode = join_team(sync, lane, n_lanes)
        if mode != OUT:
            dense_lane_(
                params,
                table,
                hidden,
                output,
                cost,
                labels,
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
                zs,
                acts,
                deltas,
                grads,
                partials,
                transposed,
                sync,
                n_lanes,
                row_block,
                lane,
                mode == TEAM,
            )


@njit(**JIT_OPTIONS)
def dense_lane_(
    params,
    table,
    hidden,
    output,
    cost,
    labels,
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
    zs,
    acts,
    deltas,
    grads,
    partials,
    transposed,
    sync,
    n_lanes,
    row_block,
    lane,
    team,
):
    """One lane of :func:`sgd_dense_`: the units it takes of every
    mini-batch's two phases, or, when not `team`, every unit in order."""
    n_out0 = table[0, N_OUT]
    b0 = table[0, B_OFF]
    stride0 = table[0, STRIDE]
    w_off0 = table[0, W_OFF]
    code0 = output if table.shape[0] == 1 else hidden
    n_weights = table[0, B_OFF]
    end0 = w_off0 + table[0, N_IN] * stride0
    n_params = params.shape[0]
    n_samples = order.shape[0]
    n_blocks = cuts.shape[0] - 1
    grad = grads[0]
    g0 = layer_weights(grad, table, 0)
    # Phase 2: the input blocks fall into one segment per pair of lanes; the
    # even lane of a pair takes its segment's blocks upwards, the odd one
    # downwards, until they meet; the last segment ends with the later
    # layers' unit. Alone, a lane takes every unit upwards.
    n_seg = (n_lanes + 1) // 2
    seg = lane // 2 if team else 0
    seg_lanes = min(2, n_lanes - 2 * seg) if team else 1
    up = lane % 2 == 0 or not team
    blk_lo = (seg * n_blocks) // n_seg if team else 0
    blk_hi = ((seg + 1) * n_blocks) // n_seg if team else n_blocks
    n_seg_blocks = blk_hi - blk_lo
    n_seg_units = n_seg_blocks + (1 if blk_hi == n_blocks else 0)
    seg_counter = SYNC_SIZE + 8 * seg
    base = 0
    seg_base = 0
    passed = 0
    # The first mini-batch's partial sums, shared out as phase 2's blocks.
    # (A slice stops at the end of `order`: the last mini-batch may be short.)
    upcoming = order[first * mini_batch : (first + 1) * mini_batch]
    taken = 0
    while next_unit(sync, seg_counter, team, seg_base, taken - 1) < n_seg_blocks:
        u = taken if up else n_seg_blocks - 1 - taken
        taken += 1
        first_block_sums_(
            params, w_off0, stride0, indices, values, bounds, upcoming, blk_lo + u, partials
        )
    # The later layers' copies for the first mini-batch (then refreshed by
    # whoever updates those layers).
    if lane == 0 or not team:
        transpose_later_(params, table, transposed)
    if team:
        seg_base += n_seg_blocks + seg_lanes
        passed = barrier(sync, n_lanes, passed)
    for t in range(first, last):
        start = t * mini_batch
        m = min(mini_batch, n_samples - start)
        rows = order[start : start + m]
        step = params.dtype.type(eta / m)
        z0 = layer_block(zs, table, 0, mini_batch, m)
        a0 = layer_block(acts, table, 0, mini_batch, m)
        n_units = (m + row_block - 1) // row_block
        u = next_unit(sync, CLAIMS, team, base, -1)
        while u < n_units:
            r_lo = u * row_block
            r_hi = min(r_lo + row_block, m)
            for r in range(r_lo, r_hi):
                # The blocks' sums in block order, then the bias.
                zr = z0[r]
                p0 = partials[0, r]
                for j in range(stride0):
                    zr[j] = p0[j]
                for b in range(1, n_blocks):
                    pb = partials[b, r]
                    for j in range(stride0):
                        zr[j] += pb[j]
                for j in range(n_out0):
                    zr[j] = zr[j] + params[b0 + j]
                activate_(code0, zr[:n_out0], a0[r, :n_out0])
                for j in range(n_out0, a0.shape[1]):
                    a0[r, j] = 0
            # (From layer 1 on, forward_rows_ does not read its inputs.)
            forward_rows_(params, table, hidden, output, z0, 1, mini_batch, m, r_lo, r_hi, zs, acts)
            errors_rows_(
                params,
                table,
                hidden,
                cost,
                labels,
                rows,
                mini_batch,
                m,
                r_lo,
                r_hi,
                zs,
                acts,
                deltas,
                transposed,
            )
            u = next_unit(sync, CLAIMS, team, base, u)
        if team:
            base += n_units + n_lanes
            passed = barrier(sync, n_lanes, passed)
        d0 = layer_block(deltas, table, 0, mini_batch, m)
        upcoming = order[start + m : start + m + mini_batch] if t + 1 < last else rows[:0]
        taken = 0
        while next_unit(sync, seg_counter, team, seg_base, taken - 1) < n_seg_units:
            u = taken if up else n_seg_units - 1 - taken
            taken += 1
            if blk_lo + u == n_blocks:
                later_gradients_(table, mini_batch, m, acts, deltas, grad)
                update_block_(params, grads, 1, n_weights, decay, step, end0, n_params)
                transpose_later_(params, table, transposed)
            else:
                blk = blk_lo + u
                k_lo = cuts[blk]
                k_hi = cuts[blk + 1]
                first_gradient_rows_(indices, values, bounds, rows, blk, d0, k_lo, k_hi, g0)
                update_block_(
                    params,
                    grads,
                    1,
                    n_weights,
                    decay,
                    step,
                    w_off0 + k_lo * stride0,
                    w_off0 + k_hi * stride0,
                )
                first_block_sums_(
                    params, w_off0, stride0, indices, values, bounds, upcoming, blk, partials
                )
        if team:
            seg_base += n_seg_units + seg_lanes
            passed = barrier(sync, n_lanes, passed)


@njit(**JIT_OPTIONS)
def eval_chunks(n):
    """Number of fixed chunks :func:`dense_evaluate` splits `n` rows into:
    enough for chunks of at most DENSE_EVAL_ROWS rows, at most EVAL_CHUNKS,
    at least 1. Depends on `n` only (never on the thread count), so the
    partial sums, and the bits, do not either.

    Examples
    --------
    >>> from fastnet._config import DENSE_EVAL_ROWS, EVAL_CHUNKS
    >>> eval_chunks(10_000) == -(-10_000 // DENSE_EVAL_ROWS), eval_chunks(0)
    (True, 1)
    >>> eval_chunks(10**9) == EVAL_CHUNKS
    True
    """
    return min(EVAL_CHUNKS, max(1, -(-n // DENSE_EVAL_ROWS)))


@njit(**JIT_OPTIONS)
def eval_part_rows(params, X, xs):
    """Rows per part of :func:`dense_evaluate` and :func:`dense_feedforward_`:
    DENSE_EVAL_ROWS, or DENSE_EVAL_CONVERT_ROWS when `X`'s rows are converted
    into `xs` (converted rows are written there and read back by BLAS:
    smaller parts keep them in cache). Raises ValueError if `xs` is too short
    for them."""
    if X.itemsize == params.itemsize:
        return DENSE_EVAL_ROWS
    if xs.shape[1] < min(DENSE_EVAL_CONVERT_ROWS, X.shape[0]) * X.shape[1]:
        # Compiled code does not check its indices: a short buffer from a
        # direct caller would be written past its end.
        raise ValueError("dense evaluation: xs is too short to convert X's rows into")
    return DENSE_EVAL_CONVERT_ROWS


@njit(**JIT_OPTIONS)
def eval_chunk(c, n):
    """First row and number of rows of chunk `c` of the :func:`eval_chunks`
    chunks of `n` rows."""
    n_chunks = eval_chunks(n)
    lo = (c * n) // n_chunks
    return lo, ((c + 1) * n) // n_chunks - lo


@njit(**JIT_OPTIONS)
def eval_parts(c, n, part_rows):
    """Number of even parts of at most `part_rows` rows in chunk `c`."""
    return -(-eval_chunk(c, n)[1] // part_rows)


@njit(**JIT_OPTIONS)
def eval_part(c, part, n, part_rows):
    """First row and number of rows of part `part` of chunk `c`
    (:func:`eval_parts`); they depend on `n` only, never on the threads."""
    chunk_lo, chunk_rows = eval_chunk(c, n)
    n_parts = eval_parts(c, n, part_rows)
    lo = chunk_lo + (part * chunk_rows) // n_parts
    return lo, chunk_lo + ((part + 1) * chunk_rows) // n_parts - lo


@njit(**JIT_OPTIONS)
def forward_part_(params, table, hidden, output, X, lo, m, xs, zs, acts):
    """Feed rows ``lo:lo+m`` of `X` forward through every layer, one BLAS
    product per layer (:func:`forward_rows_`), into the layer-major blocks
    of ``m <= DENSE_EVAL_ROWS`` rows of `zs` and `acts` (one thread's); rows
    in another dtype than `params` are converted into `xs` first
    (:func:`rows_as`). Returns whether every first-layer weighted input is
    finite (NaN or infinite inputs make one non-finite, zero weights
    included: ``inf * 0`` is NaN)."""
    x = rows_as(X, lo, m, xs)
    forward_rows_(params, table, hidden, output, x, 0, DENSE_EVAL_ROWS, m, 0, m, zs, acts)
    z0 = layer_block(zs, table, 0, DENSE_EVAL_ROWS, m)
    finite = True
    for r in range(m):
        if not all_finite_row(z0[r]):
            finite = False
    return finite


@njit(**PARALLEL_OPTIONS)
def dense_evaluate(
    params,
    table,
    hidden,
    output,
    cost,
    X,
    labels,
    xs,
    zs,
    acts,
    cost_parts,
    correct_parts,
    claims,
    with_cost,
):
    """Summed cost and number of correct predictions over a data set, each
    layer as BLAS products on blocks of rows.

    The data are split into :func:`eval_chunks` fixed chunks of at most
    DENSE_EVAL_ROWS rows where EVAL_CHUNKS chunks allow it (so each chunk is
    one product per layer, as large as that allows). Each of the ``T``
    threads takes the next chunk nobody has taken yet (an atomic counter),
    until none is left, and feeds it forward through its own buffers, in
    even parts of at most DENSE_EVAL_ROWS rows (DENSE_EVAL_CONVERT_ROWS when
    they are converted to the network's dtype first); so a thread on a core that
    is slowed down (this project's shared host slows one vCPU at a time)
    does fewer chunks, where fixed chunks per thread made the other wait.
    The per-chunk sums are combined in chunk order (the unused entries of
    the parts are zeroed), so the result depends neither on the thread
    count nor on which thread took which chunk. BLAS must run on one thread
    (``fastnet.threads.blas_threads(1)``).

    Parameters
    ----------
    params, table, hidden, output, cost
        As in :func:`fastnet.kernels.mlp.forward_sample_`.
    X : ndarray, shape (n, sizes[0]), C-contiguous
        Float32 or float64; in another dtype than `params`, converted block
        by block into `xs` (:func:`rows_as`), so the results are the bits of
        converting first.
    labels : ndarray of int64, shape (n,)
    xs : ndarray, shape (n_threads, DENSE_EVAL_CONVERT_ROWS * sizes[0]), dtype of `params`
        Per-thread scratch for converted rows; unused (may be empty along its
        second axis) when `X` has the dtype of `params`.
    zs, acts : ndarray, shape (n_threads, DENSE_EVAL_ROWS * n_z)
        Per-thread layer-major scratch; overwritten.
    cost_parts : ndarray of float64, shape (EVAL_CHUNKS,)
    correct_parts : ndarray of int64, shape (EVAL_CHUNKS,)
        Overwritten with per-chunk partial sums.
    claims : ndarray of int64, shape (1,)
        The chunk counter; overwritten.
    with_cost : bool
        Whether to sum the costs (as :func:`fastnet.kernels.mlp.evaluate`).

    Returns
    -------
    cost_sum : float
        Sum of the per-sample costs (no L2 term; 0 unless `with_cost`); NaN
        if a first-layer weighted input is not finite (as
        :func:`fastnet.kernels.mlp.evaluate`).
    n_correct : int
    """
    n = X.shape[0]
    n_threads = zs.shape[0]
    last = table.shape[0] - 1
    n_out = table[last, N_OUT]
    n_chunks = eval_chunks(n)
    part_rows = eval_part_rows(params, X, xs)
    for c in range(n_chunks, EVAL_CHUNKS):
        cost_parts[c] = 0.0
        correct_parts[c] = 0
    claims[0] = 0
    for t in prange(n_threads):
        while True:
            c = atomic_add(claims, 0, 1)
            if c >= n_chunks:
                break
            total = 0.0
            correct = 0
            for part in range(eval_parts(c, n, part_rows)):
                lo, m = eval_part(c, part, n, part_rows)
                if not forward_part_(
                    params, table, hidden, output, X, lo, m, xs[t], zs[t], acts[t]
                ):
                    total = np.nan
                z = layer_block(zs[t], table, last, DENSE_EVAL_ROWS, m)
                a = layer_block(acts[t], table, last, DENSE_EVAL_ROWS, m)
                for r in range(m):
                    label = labels[lo + r]
                    if with_cost:
                        total += sample_cost(cost, z[r, :n_out], a[r, :n_out], label)
                    if argmax_row(a[r], 0, n_out) == label:
                        correct += 1
            cost_parts[c] = total
            correct_parts[c] = correct
    return sum_chunks(cost_parts, correct_parts)


@njit(**PARALLEL_OPTIONS)
def dense_feedforward_(params, table, hidden, output, X, xs, zs, acts, out, claims):
    """Write the network's outputs for every row of `X` into `out`, each
    layer as BLAS products on blocks of rows: the chunks and parts of
    :func:`dense_evaluate`, taken by the threads from a counter, each row's
    outputs copied out of its thread's scratch. A row's outputs depend on
    the chunks (on `n`) only, so not on the thread count. BLAS must run on
    one thread (``fastnet.threads.blas_threads(1)``).

    Replaced the per-sample loops of :func:`fastnet.kernels.mlp.feedforward_`
    (and an index of `X` built on every call) for layers wide enough for
    BLAS: ``Network.feedforward`` on the 10,000 validation images, see
    ``fastnet.network.Network.feedforward``.

    Parameters
    ----------
    params, table, hidden, output
        As in :func:`dense_evaluate`.
    X : ndarray, shape (n, sizes[0]), C-contiguous, float32 or float64
    xs, zs, acts : ndarray
        Per-thread scratch, as in :func:`dense_evaluate`.
    out : ndarray, shape (n, sizes[-1])
        Overwritten.
    claims : ndarray of int64, shape (1,)
        The chunk counter; overwritten.

    Returns
    -------
    bool
        Whether every first-layer weighted input was finite (False for NaN
        or infinite inputs, see :func:`forward_part_`).

    Examples
    --------
    Through the public API, layers this wide take this kernel:

    >>> import numpy as np, fastnet
    >>> net = fastnet.Network([784, 30, 10], seed=0)
    >>> net.feedforward(np.zeros((3, 784))).shape
    (3, 10)
    """
    n = X.shape[0]
    last = table.shape[0] - 1
    n_out = table[last, N_OUT]
    n_chunks = eval_chunks(n)
    part_rows = eval_part_rows(params, X, xs)
    claims[0] = 0
    bad = 0
    for t in prange(zs.shape[0]):
        t_bad = 0
        while True:
            c = atomic_add(claims, 0, 1)
            if c >= n_chunks:
                break
            for part in range(eval_parts(c, n, part_rows)):
                lo, m = eval_part(c, part, n, part_rows)
                if not forward_part_(
                    params, table, hidden, output, X, lo, m, xs[t], zs[t], acts[t]
                ):
                    t_bad += 1
                a = layer_block(acts[t], table, last, DENSE_EVAL_ROWS, m)
                for r in range(m):
                    for j in range(n_out):
                        out[lo + r, j] = a[r, j]
        bad += t_bad
    return bad == 0
