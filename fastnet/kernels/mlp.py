"""Forward pass, backpropagation, the L2-regularized SGD step and evaluation.

Every kernel takes the flat parameter buffer ``params`` and the layer table of
:class:`fastnet.layout.Layout` (columns named in :mod:`fastnet.kernels.codes`),
plus work buffers owned by a :class:`fastnet.workspace.Workspace`. Nothing is
allocated here.

Determinism: a mini-batch of ``m`` samples is split into ``n_chunks(m)`` fixed
chunks; each chunk sums its samples' gradients in sample order into its own
buffer, and the chunk sums are added in chunk order. The serial and parallel
drivers run the same chunk code, so they give identical bits whatever the
thread count.
"""

from __future__ import annotations

from numba import njit, prange

from fastnet._config import (
    DOT_OPTIONS,
    EVAL_CHUNKS,
    GRAD_CHUNK,
    JIT_OPTIONS,
    MAX_GRAD_CHUNKS,
    UPDATE_BLOCK,
)
from fastnet.kernels.activations import (
    activate_,
    output_delta_,
    sample_cost,
    scale_by_derivative_,
)
from fastnet.kernels.codes import A_IN, A_OUT, B_OFF, N_IN, N_OUT, W_OFF, Z_OFF

PARALLEL_OPTIONS = {**JIT_OPTIONS, "parallel": True}


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


@njit(**DOT_OPTIONS)
def dot(w, a):
    """``sum(w * a)`` for two 1-D views of equal length.

    The only kernel compiled with reassociation (see ``DOT_OPTIONS``), so that
    LLVM vectorizes the sum. Pass views (``params[lo:hi]``), not offsets:
    offset arithmetic in the loop blocks vectorization (measured 2 vs 15-30
    GFLOP/s).
    """
    s = w.dtype.type(0)
    for k in range(w.shape[0]):
        s += w[k] * a[k]
    return s


@njit(**JIT_OPTIONS)
def forward_sample_(params, table, hidden, output, x, z, a):
    """Feed one sample forward, storing every layer's z and activation.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Flat weights and biases.
    table : ndarray of int64, shape (n_layers, N_COLUMNS)
        Layer offsets from :class:`fastnet.layout.Layout`.
    hidden, output : int
        Activation codes of the hidden layers and of the output layer.
    x : ndarray, shape (sizes[0],)
        The input.
    z : ndarray, shape (n_z,)
        Overwritten with every non-input layer's weighted input.
    a : ndarray, shape (n_units,)
        Overwritten with every layer's activation, the input first.
    """
    n_layers = table.shape[0]
    for k in range(table[0, N_IN]):
        a[k] = x[k]
    for layer in range(n_layers):
        n_in = table[layer, N_IN]
        n_out = table[layer, N_OUT]
        w_off = table[layer, W_OFF]
        b_off = table[layer, B_OFF]
        a_in = table[layer, A_IN]
        z_off = table[layer, Z_OFF]
        a_prev = a[a_in : a_in + n_in]
        for j in range(n_out):
            row = w_off + j * n_in
            z[z_off + j] = dot(params[row : row + n_in], a_prev) + params[b_off + j]
        code = output if layer == n_layers - 1 else hidden
        a_out = table[layer, A_OUT]
        activate_(code, z[z_off : z_off + n_out], a[a_out : a_out + n_out])


@njit(**JIT_OPTIONS)
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
    z, a : ndarray
        Rows written by :func:`forward_sample_` for this sample.
    delta : ndarray, shape (n_z,)
        Overwritten with every non-input layer's error ``dC/dz``.
    """
    n_layers = table.shape[0]
    last = n_layers - 1
    z_off = table[last, Z_OFF]
    a_out = table[last, A_OUT]
    n_out = table[last, N_OUT]
    output_delta_(
        cost,
        z[z_off : z_off + n_out],
        a[a_out : a_out + n_out],
        label,
        delta[z_off : z_off + n_out],
    )
    zero = params.dtype.type(0)
    for layer in range(last, 0, -1):
        n_in = table[layer, N_IN]
        n_out = table[layer, N_OUT]
        w_off = table[layer, W_OFF]
        z_off = table[layer, Z_OFF]
        p_off = table[layer - 1, Z_OFF]
        for k in range(n_in):
            delta[p_off + k] = zero
        # delta_prev = w^T delta as axpys over the rows of w: contiguous and
        # vectorizable, summed over j in a fixed order.
        d_prev = delta[p_off : p_off + n_in]
        for j in range(n_out):
            dj = delta[z_off + j]
            row = w_off + j * n_in
            w = params[row : row + n_in]
            for k in range(n_in):
                d_prev[k] += w[k] * dj
        a_prev = table[layer, A_IN]
        scale_by_derivative_(
            hidden,
            z[p_off : p_off + n_in],
            a[a_prev : a_prev + n_in],
            delta[p_off : p_off + n_in],
        )


@njit(**JIT_OPTIONS)
def chunk_gradient_(params, table, hidden, output, cost, X, labels, idx, zs, acts, deltas, grad):
    """Sum the gradients of the samples ``X[idx]`` into ``grad``.

    Samples are processed GRAD_CHUNK at a time: forward and backward for each
    sample of a block, then the block's contribution to each weight row is
    added sample by sample, keeping the row in cache.

    Parameters
    ----------
    params, table, hidden, output, cost
        As in :func:`forward_sample_` and :func:`backward_sample_`.
    X : ndarray, shape (n, sizes[0])
    labels : ndarray of int64, shape (n,)
    idx : ndarray of int64
        Indices into `X` of this chunk's samples, in summation order.
    zs, deltas : ndarray, shape (GRAD_CHUNK, n_z)
    acts : ndarray, shape (GRAD_CHUNK, n_units)
        Scratch rows; overwritten.
    grad : ndarray, shape (n_params,)
        Overwritten with the summed gradient (same layout as `params`).
    """
    zero = grad.dtype.type(0)
    for p in range(grad.shape[0]):
        grad[p] = zero
    n_layers = table.shape[0]
    total = idx.shape[0]
    for start in range(0, total, GRAD_CHUNK):
        stop = min(start + GRAD_CHUNK, total)
        for s in range(stop - start):
            i = idx[start + s]
            forward_sample_(params, table, hidden, output, X[i], zs[s], acts[s])
            backward_sample_(params, table, hidden, cost, labels[i], zs[s], acts[s], deltas[s])
        for layer in range(n_layers):
            n_in = table[layer, N_IN]
            n_out = table[layer, N_OUT]
            w_off = table[layer, W_OFF]
            b_off = table[layer, B_OFF]
            a_in = table[layer, A_IN]
            z_off = table[layer, Z_OFF]
            for j in range(n_out):
                row = w_off + j * n_in
                g = grad[row : row + n_in]
                gb = grad[b_off + j]
                for s in range(stop - start):
                    d = deltas[s, z_off + j]
                    gb += d
                    a_prev = acts[s, a_in : a_in + n_in]
                    for k in range(n_in):
                        g[k] += d * a_prev[k]
                grad[b_off + j] = gb


@njit(**JIT_OPTIONS)
def update_block_(params, grads, n_chunk, n_weights, decay, step, lo, hi):
    """The book's step for ``params[lo:hi]``, gradients summed in chunk order.

    ``w <- decay * w - step * g`` for weights (``decay = 1 - eta*lmbda/n``) and
    ``b <- b - step * g`` for biases, with ``step = eta/m``.
    """
    # Weights and biases in two loops so neither holds a branch.
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
def sgd_serial_(
    params,
    table,
    hidden,
    output,
    cost,
    X,
    labels,
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
):
    """Run mini-batches ``first`` to ``last - 1`` of an epoch on one thread.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Updated in place.
    table, hidden, output, cost
        Layer table and codes.
    X : ndarray, shape (n, sizes[0]), same dtype as `params`
    labels : ndarray of int64, shape (n,)
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
    zs, acts, deltas : ndarray, shape (n_chunks, GRAD_CHUNK, ...)
        Per-chunk scratch rows.
    grads : ndarray, shape (n_chunks, n_params)
        Per-chunk gradient sums.
    """
    decay = params.dtype.type(1.0 - eta * lmbda / n)
    n_weights = table[0, B_OFF]
    n_samples = order.shape[0]
    for t in range(first, last):
        start = t * mini_batch
        m = min(mini_batch, n_samples - start)
        batch = order[start : start + m]
        nc = n_chunks(m)
        for c in range(nc):
            chunk_gradient_(
                params,
                table,
                hidden,
                output,
                cost,
                X,
                labels,
                batch[(c * m) // nc : ((c + 1) * m) // nc],
                zs[c],
                acts[c],
                deltas[c],
                grads[c],
            )
        update_block_(
            params, grads, nc, n_weights, decay, params.dtype.type(eta / m), 0, params.shape[0]
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
):
    """Same as :func:`sgd_serial_`, with the chunks of each mini-batch and the
    update blocks spread over threads. Gives the same bits as the serial
    driver: each chunk owns its gradient buffer and the reduction order is
    fixed."""
    decay = params.dtype.type(1.0 - eta * lmbda / n)
    n_weights = table[0, B_OFF]
    n_samples = order.shape[0]
    n_params = params.shape[0]
    n_blocks = (n_params + UPDATE_BLOCK - 1) // UPDATE_BLOCK
    for t in range(first, last):
        start = t * mini_batch
        m = min(mini_batch, n_samples - start)
        batch = order[start : start + m]
        nc = n_chunks(m)
        for c in prange(nc):
            chunk_gradient_(
                params,
                table,
                hidden,
                output,
                cost,
                X,
                labels,
                batch[(c * m) // nc : ((c + 1) * m) // nc],
                zs[c],
                acts[c],
                deltas[c],
                grads[c],
            )
        step = params.dtype.type(eta / m)
        for blk in prange(n_blocks):
            lo = blk * UPDATE_BLOCK
            update_block_(
                params, grads, nc, n_weights, decay, step, lo, min(lo + UPDATE_BLOCK, n_params)
            )


@njit(**JIT_OPTIONS)
def argmax_row(a, start, n):
    """Index (relative to `start`) of the first maximum of ``a[start:start+n]``."""
    best = 0
    for i in range(1, n):
        if a[start + i] > a[start + best]:
            best = i
    return best


@njit(**PARALLEL_OPTIONS)
def evaluate(params, table, hidden, output, cost, X, labels, zs, acts, cost_parts, correct_parts):
    """Summed cost and number of correct predictions over a data set.

    The data are split into EVAL_CHUNKS fixed chunks that run in parallel; the
    partial sums are combined in chunk order, so the result does not depend on
    the thread count.

    Parameters
    ----------
    params, table, hidden, output, cost
        As in :func:`forward_sample_`.
    X : ndarray, shape (n, sizes[0])
    labels : ndarray of int64, shape (n,)
    zs : ndarray, shape (EVAL_CHUNKS, n_z)
    acts : ndarray, shape (EVAL_CHUNKS, n_units)
        Scratch rows; overwritten.
    cost_parts : ndarray of float64, shape (EVAL_CHUNKS,)
    correct_parts : ndarray of int64, shape (EVAL_CHUNKS,)
        Overwritten with per-chunk partial sums.

    Returns
    -------
    cost_sum : float
        Sum of the per-sample costs (no L2 term).
    n_correct : int
    """
    n = X.shape[0]
    last = table.shape[0] - 1
    z_out = table[last, Z_OFF]
    a_out = table[last, A_OUT]
    n_out = table[last, N_OUT]
    for c in prange(EVAL_CHUNKS):
        total = 0.0
        correct = 0
        for i in range((c * n) // EVAL_CHUNKS, ((c + 1) * n) // EVAL_CHUNKS):
            forward_sample_(params, table, hidden, output, X[i], zs[c], acts[c])
            total += sample_cost(
                cost, zs[c, z_out : z_out + n_out], acts[c, a_out : a_out + n_out], labels[i]
            )
            if argmax_row(acts[c], a_out, n_out) == labels[i]:
                correct += 1
        cost_parts[c] = total
        correct_parts[c] = correct
    cost_sum = 0.0
    n_correct = 0
    for c in range(EVAL_CHUNKS):
        cost_sum += cost_parts[c]
        n_correct += correct_parts[c]
    return cost_sum, n_correct


@njit(**PARALLEL_OPTIONS)
def feedforward_(params, table, hidden, output, X, out, zs, acts):
    """Write the network's outputs for every row of `X` into `out`.

    Parameters
    ----------
    X : ndarray, shape (n, sizes[0])
    out : ndarray, shape (n, sizes[-1])
        Overwritten.
    zs, acts : ndarray, shape (EVAL_CHUNKS, ...)
        Scratch rows, as in :func:`evaluate`.
    """
    n = X.shape[0]
    last = table.shape[0] - 1
    a_out = table[last, A_OUT]
    n_out = table[last, N_OUT]
    for c in prange(EVAL_CHUNKS):
        for i in range((c * n) // EVAL_CHUNKS, ((c + 1) * n) // EVAL_CHUNKS):
            forward_sample_(params, table, hidden, output, X[i], zs[c], acts[c])
            for j in range(n_out):
                out[i, j] = acts[c, a_out + j]


@njit(**JIT_OPTIONS)
def sum_of_squares(v):
    """``sum(v**2)`` in float64, summed in index order (the L2 term)."""
    s = 0.0
    for i in range(v.shape[0]):
        s += float(v[i]) * float(v[i])
    return s


@njit(**JIT_OPTIONS)
def batch_gradient_(params, table, hidden, output, cost, X, labels, idx, zs, acts, deltas, grads):
    """Summed gradient of the samples ``X[idx]``, chunked exactly as in one
    SGD step, written into ``grads[0]``. Used by gradient checks and tests.

    Parameters
    ----------
    grads : ndarray, shape (n_chunks(len(idx)), n_params)
        Per-chunk sums; on return ``grads[0]`` holds the total.
    """
    m = idx.shape[0]
    nc = n_chunks(m)
    for c in range(nc):
        chunk_gradient_(
            params,
            table,
            hidden,
            output,
            cost,
            X,
            labels,
            idx[(c * m) // nc : ((c + 1) * m) // nc],
            zs[c],
            acts[c],
            deltas[c],
            grads[c],
        )
    for c in range(1, nc):
        for p in range(grads.shape[1]):
            grads[0, p] += grads[c, p]
