"""Work buffers, allocated once per (layout, dtype, mini-batch size) and reused
by every mini-batch and every epoch."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import numpy as np

from fastnet._config import (
    COUNT_CHUNKS,
    DENSE_EVAL_CONVERT_ROWS,
    DENSE_EVAL_ROWS,
    DENSE_ROW_BLOCK,
    EVAL_CHUNKS,
    GRAD_CHUNK,
    INDEX_CACHE_ENTRIES,
    INDEX_CHECK_CHUNKS,
    INPUT_BLOCKS,
)
from fastnet._validation import nonfinite_error
from fastnet.kernels.codes import STRIDE
from fastnet.kernels.dense import balance_inputs_, sample_bounds_, transposed_size
from fastnet.kernels.mlp import (
    aligned_length,
    batch_width,
    index_mismatches,
    n_chunks,
    nonzero_index_,
    row_nonzeros_,
)
from fastnet.kernels.rows import padded_columns
from fastnet.kernels.sync import SYNC_SIZE
from fastnet.layout import Layout, aligned_zeros


class TrainWorkspace:
    """Per-chunk scratch rows, gradient sums and the fused step's block sums
    for SGD with mini-batches of up to `mini_batch` samples on `n_lanes`
    threads.

    Attributes
    ----------
    key : tuple
        ``(sizes, dtype, mini_batch, n_lanes)``: a network reuses its
        workspace while the key matches.
    zs, acts, deltas : ndarray, shape (n_chunks, GRAD_CHUNK, layout.n_z)
    grads : ndarray, shape (n_chunks, layout.n_params)
    partials : ndarray, shape (INPUT_BLOCKS, GRAD_CHUNK, layout.table[0, STRIDE])
        The fused step's first-layer sums per input block.
    columns : ndarray, shape (n_lanes, 2, max(sizes[1:]) * GRAD_CHUNK)
        Each lane's scratch for the fused step's later layers, a column per
        sample (:func:`fastnet.kernels.mlp.sample_errors_`; GRAD_CHUNK
        rounded up to whole vectors).
    sync : ndarray of int64, shape (SYNC_SIZE,)
        Counters through which the parallel fused step's threads meet
        (:mod:`fastnet.kernels.sync`).
    n_lanes : int
    """

    def __init__(self, layout: Layout, dtype, mini_batch: int, n_lanes: int = 1):
        nc = int(n_chunks(mini_batch))
        self.key = (layout.sizes, np.dtype(dtype), mini_batch, n_lanes)
        self.zs = aligned_zeros((nc, GRAD_CHUNK, layout.n_z), dtype)
        self.acts = aligned_zeros((nc, GRAD_CHUNK, layout.n_z), dtype)
        self.deltas = aligned_zeros((nc, GRAD_CHUNK, layout.n_z), dtype)
        self.grads = aligned_zeros((nc, layout.n_params), dtype)
        self.partials = aligned_zeros((INPUT_BLOCKS, GRAD_CHUNK, layout.table[0, STRIDE]), dtype)
        self.columns = aligned_zeros((n_lanes, *column_shape(layout, dtype)), dtype)
        self.sync = aligned_zeros(SYNC_SIZE, np.int64)
        self.n_lanes = n_lanes

    @property
    def buffers(self):
        """The buffers in the order the SGD kernels take them."""
        return (
            self.zs,
            self.acts,
            self.deltas,
            self.grads,
            self.partials,
            self.columns,
            self.sync,
            self.n_lanes,
        )


def column_shape(layout: Layout, dtype) -> tuple[int, int]:
    """Shape of one lane's scratch for the fused step's later layers: a
    layer's inputs and sums, one column per sample of a chunk."""
    ld = int(padded_columns(np.zeros(1, dtype), GRAD_CHUNK))
    return (2, int(batch_width(layout.table)) * ld)


class DenseWorkspace:
    """Scratch and the work split for the dense driver
    (:mod:`fastnet.kernels.dense`) with mini-batches of up to `mini_batch`
    samples on `n_lanes` threads.

    Attributes
    ----------
    key : tuple
        ``(sizes, dtype, mini_batch, ("dense", n_lanes))``.
    zs, acts, deltas : ndarray, shape (mini_batch * layout.n_z,)
        Layer-major: layer ``l`` is the ``(m, n_out)`` block at
        ``mini_batch * layout.table[l, Z_OFF]``.
    grads : ndarray, shape (1, layout.n_params)
        The mini-batch's gradient sum (2-D, as the loop drivers' per-chunk
        sums, so both update through the same kernel).
    partials : ndarray, shape (INPUT_BLOCKS, mini_batch, layout.table[0, STRIDE])
        The first layer's weighted inputs of the next mini-batch, per input
        block.
    transposed : ndarray, shape (later layers' stored weights,)
        Transposed copies of the small later layers
        (:func:`fastnet.kernels.dense.transpose_later_`).
    sync : ndarray of int64, shape (SYNC_SIZE + 8 * ceil(n_lanes / 2),)
        The team's counters (:mod:`fastnet.kernels.sync`).
    n_lanes : int
        Lanes of the team.
    row_block : int
        Rows per unit of the driver's first phase (:func:`dense_row_block`).

    See Also
    --------
    input_blocks : the input blocks of a data set, which the driver takes
        with the data.
    """

    def __init__(self, layout: Layout, dtype, mini_batch: int, n_lanes: int = 1):
        self.key = (layout.sizes, np.dtype(dtype), mini_batch, ("dense", n_lanes))
        self.zs = aligned_zeros(mini_batch * layout.n_z, dtype)
        self.acts = aligned_zeros(mini_batch * layout.n_z, dtype)
        self.deltas = aligned_zeros(mini_batch * layout.n_z, dtype)
        self.grads = aligned_zeros((1, layout.n_params), dtype)
        self.partials = aligned_zeros((INPUT_BLOCKS, mini_batch, layout.table[0, STRIDE]), dtype)
        self.transposed = aligned_zeros(int(transposed_size(layout.table)), dtype)
        self.sync = aligned_zeros(SYNC_SIZE + 8 * ((n_lanes + 1) // 2), np.int64)
        self.n_lanes = n_lanes
        self.row_block = dense_row_block(mini_batch)

    @property
    def buffers(self):
        """The buffers and the work split, in the order
        :func:`~fastnet.kernels.dense.sgd_dense_` takes them."""
        return (
            self.zs,
            self.acts,
            self.deltas,
            self.grads,
            self.partials,
            self.transposed,
            self.sync,
            self.n_lanes,
            self.row_block,
        )


def input_blocks(indptr, indices, n_in: int, first_share: float | None = None):
    """The blocks of the first layer's inputs for a data set, which every
    training driver sums the first layer over (each block's rows owned by
    one thread; :func:`fastnet.kernels.mlp.first_block_sums_`).

    INPUT_BLOCKS runs of inputs, the first holding `first_share` of the
    data's non-zeros and the others about as many each of the rest, and
    where every sample's non-zeros cross them. They
    depend on the data only (not on the thread count or the order of the
    samples), so the drivers' sums over them give the same bits in any
    run on the same data.

    Parameters
    ----------
    indptr, indices : ndarray
        Non-zero index of the data (:func:`nonzero_index`).
    n_in : int
        Inputs of the first layer (``sizes[0]``).
    first_share : float, optional
        The first block's share of the non-zeros; default even blocks. The
        drivers take FIRST_BLOCK_SHARE or DENSE_FIRST_BLOCK_SHARE
        (:func:`fastnet.network.block_share`).

    Returns
    -------
    cuts : ndarray of int64, shape (INPUT_BLOCKS + 1,)
        Block ``b`` is inputs ``cuts[b]`` to ``cuts[b + 1] - 1``.
    bounds : ndarray of int64, shape (n, INPUT_BLOCKS + 1)
        Sample ``i``'s non-zeros in block ``b`` are positions ``bounds[i, b]``
        to ``bounds[i, b + 1] - 1`` of `indices`.

    Examples
    --------
    >>> X = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    >>> cuts, bounds = input_blocks(*nonzero_index(X)[:2], 4)
    >>> cuts.tolist(), bounds.tolist()
    ([0, 2, 4], [[0, 1, 2], [2, 3, 4]])
    """
    cuts = np.zeros(INPUT_BLOCKS + 1, np.int64)
    share = 1 / INPUT_BLOCKS if first_share is None else first_share
    balance_inputs_(indptr, indices, share, np.zeros((COUNT_CHUNKS, n_in), np.int64), cuts)
    bounds = np.zeros((len(indptr) - 1, INPUT_BLOCKS + 1), np.int64)
    sample_bounds_(indptr, indices, cuts, bounds)
    return cuts, bounds


def dense_row_block(mini_batch: int) -> int:
    """Rows per unit of the dense driver's first phase: the mini-batch in an
    even number of equal units of at most DENSE_ROW_BLOCK rows (the last
    unit may be shorter), so that two threads can share it evenly.

    Examples
    --------
    >>> dense_row_block(100), dense_row_block(64), dense_row_block(200), dense_row_block(17)
    (50, 32, 50, 9)
    """
    units = 2 * -(-mini_batch // (2 * DENSE_ROW_BLOCK))
    return max(1, -(-mini_batch // units))


class EvalWorkspace:
    """Scratch and partial sums for evaluation and prediction.

    Attributes
    ----------
    zs, acts : ndarray, shape (EVAL_CHUNKS, layout.n_z)
        Per-chunk rows for the loop kernels (:func:`fastnet.kernels.mlp.evaluate`).
    dense_zs, dense_acts : ndarray, shape (n_threads, DENSE_EVAL_ROWS * layout.n_z)
        Per-thread layer-major blocks for
        :func:`fastnet.kernels.dense.dense_evaluate`, when `dense`; else empty.
    dense_xs : ndarray, shape (n_threads, DENSE_EVAL_CONVERT_ROWS * sizes[0])
        Per-thread rows of data converted to the network's dtype for its
        dense evaluation (float32 data for a float64 network, float64 data
        for a float32 one); empty along axis 1 unless `dense`.
    cost_parts : ndarray of float64, shape (EVAL_CHUNKS,)
    correct_parts : ndarray of int64, shape (EVAL_CHUNKS,)
    claims : ndarray of int64, shape (1,)
        The dense evaluation's counter of chunks taken.
    """

    def __init__(self, layout: Layout, dtype, dense: bool = False, n_threads: int = 1):
        self.zs = aligned_zeros((EVAL_CHUNKS, layout.n_z), dtype)
        self.acts = aligned_zeros((EVAL_CHUNKS, layout.n_z), dtype)
        shape = (n_threads, DENSE_EVAL_ROWS * layout.n_z) if dense else (0, 0)
        self.dense_zs = aligned_zeros(shape, dtype)
        self.dense_acts = aligned_zeros(shape, dtype)
        self.dense_xs = aligned_zeros(
            (shape[0], DENSE_EVAL_CONVERT_ROWS * layout.sizes[0] if dense else 0), dtype
        )
        self.cost_parts = np.zeros(EVAL_CHUNKS, np.float64)
        self.correct_parts = np.zeros(EVAL_CHUNKS, np.int64)
        self.claims = np.zeros(1, np.int64)


class _CachedIndex:
    """A data array's non-zero index and the input blocks found for it (one
    entry of :func:`data_index`'s cache). The arrays are never written
    after they are built: a network training on them in another thread
    keeps reading the same values."""

    __slots__ = ("index", "finite", "blocks", "owner")

    def __init__(self, index, finite, owner):
        self.index = index
        self.finite = finite
        self.blocks = {}
        self.owner = owner


_INDEX_CACHE: OrderedDict = OrderedDict()
_INDEX_LOCK = threading.Lock()
_INDEX_STATS = {"hits": 0, "misses": 0, "stale": 0}
#: Per key, the finalizer that drops its entry when the memory's owner is freed.
_INDEX_FINALIZERS: dict = {}


def _memory_owner(X):
    """The array that owns `X`'s memory (`X` itself if it owns it): the
    cache entry lives as long as that array, so a view made anew for each
    call still finds its entry."""
    owner = X
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return owner


def _index_key(X, dtype):
    return (
        X.__array_interface__["data"][0],
        X.shape,
        X.strides,
        X.dtype.str,
        np.dtype(X.dtype if dtype is None else dtype).str,
    )


def _forget(key):
    with _INDEX_LOCK:
        _INDEX_CACHE.pop(key, None)
        _INDEX_FINALIZERS.pop(key, None)


def data_index(X, dtype=None, argname=None, *, blocks_share=False):
    """:func:`nonzero_index` of `X`, kept between calls: a later call on the
    same array checks that `X` still holds exactly what the index was built
    from (:func:`fastnet.kernels.mlp.index_mismatches`, one pass) and
    reuses it, else builds it anew. With `blocks_share`, also the
    :func:`input_blocks` for that share, kept with the index.

    Repeated ``Network.train`` calls on the same data (a training loop of
    one epoch per call, ``partial_fit``, several networks on one data set)
    then pay the check instead of the build: on MNIST's 50,000 training
    images 18 ms against 45-190 ms for the index and 10-20 ms for the blocks
    (most of it first writes to freshly allocated memory), while one epoch
    of the book's network takes about 45 ms.

    An entry is found by the memory `X` reads (address, shape, strides,
    dtypes), dropped when the array owning that memory is freed, and the
    cache keeps INDEX_CACHE_ENTRIES entries at most, the least recently
    used going first. Correctness never rests on the key: whatever changed
    in `X` (in place or not), the check sees it.

    Parameters
    ----------
    X : ndarray, shape (n, n_in)
    dtype : numpy dtype, optional
        Of the index's values; default `X`'s.
    argname : str, optional
        As in :func:`nonzero_index` (NaN or infinite entries raise).
    blocks_share : float, None or False
        False: no blocks. Else the first block's share, as in
        :func:`input_blocks` (None: even blocks).

    Returns
    -------
    index : tuple
        ``(indptr, indices, values)``; do not write to them.
    blocks : tuple or None
        ``(cuts, bounds)`` when `blocks_share` is not False.

    Examples
    --------
    >>> X = np.array([[0.0, 2.0], [3.0, 4.0]])
    >>> index, _ = data_index(X)
    >>> data_index(X)[0] is index
    True
    >>> X[0, 0] = 1.0                     # changed in place: built anew
    >>> data_index(X)[0][1].tolist()
    [0, 1, 0, 1]
    """
    key = _index_key(X, dtype)
    owner = _memory_owner(X)
    with _INDEX_LOCK:
        entry = _INDEX_CACHE.get(key)
        if entry is not None:
            _INDEX_CACHE.move_to_end(key)
    known = entry is not None and entry.owner() is owner
    fresh = not known
    if known:
        indptr, indices, values = entry.index
        scratch = np.zeros((INDEX_CHECK_CHUNKS, X.shape[1]), values.dtype)
        fresh = index_mismatches(X, indptr, indices, values, scratch) != 0
        if not fresh and not entry.finite and argname is not None:
            raise nonfinite_error(argname, X.dtype, values.dtype)
    if fresh:
        entry = _CachedIndex(*_build_index(X, dtype, argname), weakref.ref(owner))
    with _INDEX_LOCK:
        if fresh:
            done = _INDEX_FINALIZERS.get(key)
            if done is None or not done.alive:
                _INDEX_FINALIZERS[key] = weakref.finalize(owner, _forget, key)
            _INDEX_STATS["misses"] += 1
            _INDEX_CACHE[key] = entry
            _INDEX_CACHE.move_to_end(key)
            while len(_INDEX_CACHE) > INDEX_CACHE_ENTRIES:
                _INDEX_CACHE.popitem(last=False)
        if known:
            _INDEX_STATS["stale" if fresh else "hits"] += 1
    if blocks_share is False:
        return entry.index, None
    blocks = entry.blocks.get(blocks_share)
    if blocks is None:
        indptr, indices, _ = entry.index
        blocks = entry.blocks.setdefault(
            blocks_share, input_blocks(indptr, indices, X.shape[1], blocks_share)
        )
    return entry.index, blocks


def index_cache_info() -> dict:
    """Counts of :func:`data_index` calls since the process started (or
    :func:`clear_index_cache`): ``hits`` (checked and reused), ``stale``
    (checked, `X` had changed), ``misses`` (built; includes the stale ones)
    and the ``entries`` kept now."""
    with _INDEX_LOCK:
        return {**_INDEX_STATS, "entries": len(_INDEX_CACHE)}


def clear_index_cache() -> None:
    """Forget every kept index (their memory is freed once no network is
    training on them) and reset :func:`index_cache_info`."""
    with _INDEX_LOCK:
        _INDEX_CACHE.clear()
        for k in _INDEX_STATS:
            _INDEX_STATS[k] = 0


def no_index(X, dtype=None):
    """Stands in for `X`'s non-zero index where no kernel reads it (the dense
    driver, dense evaluation): empty arrays typed as :func:`nonzero_index`
    returns them for the same arguments, so the kernels keep one compiled
    specialization."""
    values = np.zeros(0, X.dtype if dtype is None else dtype)
    return np.zeros(1, np.int64), np.zeros(0, np.int32), values


def loop_data(X, dtype):
    """`X` as the data argument of an SGD driver (serial, parallel or dense
    epoch) or of the loop evaluation, for a network of `dtype`: `X` itself
    when it has that dtype and is writeable, else (float32 data for a
    float64 network, float64 data for a float32 one, read-only data) a
    zero-row stand-in of `dtype`. Those kernels read the inputs only through
    the non-zero index, built with values in `dtype`, so they are compiled
    once per network dtype instead of once more for each kind of data
    (about 30 s of a cold test run for float32 data, by Numba's compile
    timers)."""
    if X.dtype == dtype and X.flags.writeable:
        return X
    return np.zeros((0, X.shape[1]), dtype)


def nonzero_index(X, dtype=None, argname=None):
    """Compressed-row index of the non-zero entries of `X`, for the kernels.

    Built once per data set and reused every epoch: the first layer then only
    visits non-zero inputs (19% of MNIST pixels), read from two contiguous
    runs per sample.

    Parameters
    ----------
    X : ndarray, shape (n, n_in)
    dtype : numpy dtype, optional
        Of `values`; default `X`'s. Each entry is converted, then tested
        for zero and for being finite, so the index is that of `X`
        converted to `dtype` first (float32 to float64 is exact; float64 to
        float32 rounds, an entry rounding to zero is left out, one
        overflowing is infinite).
    argname : str, optional
        If given, NaN or infinite entries in `X` raise the validation's
        ValueError naming it: the count of non-zeros checks them in the same
        pass over the data, which saves the separate check (10 ms of a
        `train()` call on MNIST's 50,000 training images, measured).

    Returns
    -------
    indptr : ndarray of int64, shape (n + 1,)
    indices : ndarray of int32, shape (nnz,)
        Row ``i``'s non-zero columns are ``indices[indptr[i]:indptr[i+1]]``.
    values : ndarray, shape (nnz,), of `dtype`
        The entries at those columns.

    Examples
    --------
    >>> nonzero_index(np.array([[0.0, 2.0], [3.0, 4.0]]))
    (array([0, 1, 3]), array([1, 0, 1], dtype=int32), array([2., 3., 4.]))
    """
    return _build_index(X, dtype, argname)[0]


def _build_index(X, dtype, argname):
    """:func:`nonzero_index`, and whether `X` is all finite (when `argname`
    is None; else non-finite entries raise)."""
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    counts = np.empty(X.shape[0], np.int64)
    finite = row_nonzeros_(X, counts, np.zeros(0, dtype)) == 0
    if not finite and argname is not None:
        raise nonfinite_error(argname, X.dtype, dtype)
    indptr = np.zeros(X.shape[0] + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], np.int32)
    values = np.empty(indptr[-1], dtype)
    nonzero_index_(X, indptr, indices, values)
    return (indptr, indices, values), finite


def train_pool_size(layout: Layout, mini_batch: int, dtype) -> int:
    """Elements of a network's work pool in :func:`fastnet.kernels.mlp.sgd_many_`:
    the zs, acts and deltas rows, the gradient buffers, the block sums and
    one lane's columns of a :class:`TrainWorkspace`, back to back, each
    rounded up to :func:`fastnet.kernels.mlp.aligned_length`."""
    nc = int(n_chunks(mini_batch))
    size = np.dtype(dtype).itemsize
    parts = [nc * GRAD_CHUNK * layout.n_z] * 3 + [
        nc * layout.n_params,
        INPUT_BLOCKS * GRAD_CHUNK * int(layout.table[0, STRIDE]),
        int(np.prod(column_shape(layout, dtype))),
    ]
    return sum(int(aligned_length(n, size)) for n in parts)
