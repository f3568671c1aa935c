"""Training several independent networks at once, one per thread.

The book's mini-batch of 10 is too small to split one network's work across
cores without losing to thread overhead; experiments (initializers x sizes x
seeds) train many independent networks, so :func:`train_many` trains them
together: one kernel call per epoch advances every network, each on its own
thread with its own buffers, generator and mini-batch order. Each network ends
with exactly the bits it would get from :meth:`Network.train` alone.
"""

from __future__ import annotations

import functools
import time
import warnings

import numba
import numpy as np

from fastnet._validation import check_number
from fastnet.history import History
from fastnet.kernels import mlp
from fastnet.kernels.mlp import aligned_length
from fastnet.kernels.sync import SYNC_SIZE
from fastnet.layout import aligned_zeros
from fastnet.network import (
    DivergenceError,
    Network,
    SymmetryWarning,
    block_share,
    compile_notice,
    use_dense,
)
from fastnet.threads import resolve_threads
from fastnet.workspace import data_index, loop_data, train_pool_size


def _per_network(value, k, name, check):
    values = list(value) if np.ndim(value) else [value] * k
    if len(values) != k:
        raise ValueError(f"{name} must be one value or one per network ({k}), got {len(values)}")
    return [check(v, name) for v in values]


def _train_alone(net, n_threads, *args, **kwargs):
    """``net.train(*args, **kwargs)`` on `n_threads` threads (None: the
    network's own setting)."""
    saved = net.n_threads
    if n_threads is not None:
        net.n_threads = resolve_threads(n_threads)
    try:
        return net.train(*args, **kwargs)
    finally:
        net.n_threads = saved


def train_many(
    nets,
    training_data,
    epochs,
    mini_batch_size,
    eta,
    lmbda=0.0,
    evaluation_data=None,
    monitor_evaluation_cost=False,
    monitor_evaluation_accuracy=False,
    monitor_training_cost=False,
    monitor_training_accuracy=False,
    *,
    n_threads=None,
    callback=None,
) -> list[History]:
    """Train independent networks together, one network per thread.

    Networks whose mini-batches take the dense driver (see
    :func:`fastnet.network.use_dense`: BLAS products that already use the
    cores) are trained one after another with :meth:`Network.train` instead;
    either way each network ends with the bits it gets when trained alone.

        Parameters
        ----------
        nets : sequence of Network
            Same dtype and the same input and output widths; hidden sizes, costs,
            activations, initializers and seeds may differ. Updated in place.
        training_data : (X, y)
            Shared by all networks.
        epochs : int
        mini_batch_size, eta, lmbda : number or sequence of numbers
            One value for all networks or one per network.
        evaluation_data, monitor_* :
            As in :meth:`Network.train`.
        n_threads : int, optional
            Threads to spread the networks over (default: all cores).
        callback : callable, optional
            ``callback(index, record)`` after each network's epoch.

        Returns
        -------
        list of History
            One per network, as :meth:`Network.train` would return.

        Raises
        ------
        TypeError, ValueError
            On invalid arguments, before anything runs.
        DivergenceError
            If a network diverges (it keeps its last finite parameters).

        Examples
        --------
        >>> import numba
    import numpy as np
        >>> X, y = np.random.default_rng(0).random((50, 4)), np.arange(50) % 3
        >>> nets = [Network([4, 5, 3], seed=s) for s in (1, 2)]
        >>> histories = train_many(nets, (X, y), 2, 10, 0.5)
        >>> len(histories), len(histories[0])
        (2, 2)
    """
    nets = list(nets)
    if not nets or not all(isinstance(net, Network) for net in nets):
        raise TypeError("nets must be a non-empty sequence of fastnet.Network")
    first = nets[0]
    for i, net in enumerate(nets):
        if net.dtype != first.dtype:
            raise ValueError(f"nets[{i}] is {net.dtype.name}, nets[0] is {first.dtype.name}")
        if (net.sizes[0], net.sizes[-1]) != (first.sizes[0], first.sizes[-1]):
            raise ValueError(
                f"nets[{i}] maps {net.sizes[0]} -> {net.sizes[-1]}, nets[0] maps "
                f"{first.sizes[0]} -> {first.sizes[-1]}"
            )
    k = len(nets)
    epochs = check_number(epochs, "epochs", low=0, integer=True)
    mbs = _per_network(
        mini_batch_size,
        k,
        "mini_batch_size",
        lambda v, name: check_number(v, name, low=1, integer=True),
    )
    etas = _per_network(eta, k, "eta", lambda v, name: check_number(v, name, low=0, low_open=True))
    lmbdas = _per_network(lmbda, k, "lmbda", lambda v, name: check_number(v, name, low=0))
    # As in Network.train: float32 or float64 data is kept as it is (the
    # kernel reads it through its non-zero index, built in the networks'
    # dtype, which also finds NaN and infinite values), so repeated calls on
    # the same array reuse the kept index instead of converting it each time.
    X, y = first._kernel_data(training_data, "training_data", check_finite=False, training=True)
    n = len(X)
    monitors_eval = monitor_evaluation_cost or monitor_evaluation_accuracy
    if monitors_eval and evaluation_data is None:
        raise ValueError("evaluation_data is required when an evaluation monitor is set")
    if evaluation_data is not None:
        Xe, ye = first._kernel_data(evaluation_data, "evaluation_data")
        eval_index = data_index(Xe, first.dtype)[0]
    train_index, blocks = data_index(
        X, first.dtype, "training_data", blocks_share=block_share("serial")
    )
    for net in nets:
        if net._symmetric and len(net.sizes) > 2:
            warnings.warn(
                f"weights initialized with {net.init!r} are identical within each layer; "
                "gradient descent never breaks the symmetry.",
                SymmetryWarning,
                stacklevel=2,
            )

    mbs = [min(m, n) for m in mbs]
    if any(use_dense(m, net.layout.n_weights) for net, m in zip(nets, mbs, strict=True)):
        # Mini-batches this large take the dense driver, whose BLAS products
        # already use every core: train one network after another, each
        # exactly as Network.train would.
        return [
            _train_alone(
                net,
                n_threads,
                training_data,
                epochs,
                m,
                e,
                lm,
                evaluation_data,
                monitor_evaluation_cost,
                monitor_evaluation_accuracy,
                monitor_training_cost,
                monitor_training_accuracy,
                callback=None if callback is None else functools.partial(callback, i),
            )
            for i, (net, m, e, lm) in enumerate(zip(nets, mbs, etas, lmbdas, strict=True))
        ]
    # Each network's parameters start aligned (as a Network's own do).
    size = first.dtype.itemsize
    p_off = np.cumsum([0] + [aligned_length(net.layout.n_params, size) for net in nets])
    p_off = p_off.astype(np.int64)
    t_off = np.cumsum([0] + [net.layout.n_layers for net in nets]).astype(np.int64)
    w_off = np.cumsum(
        [0]
        + [train_pool_size(net.layout, m, first.dtype) for net, m in zip(nets, mbs, strict=True)]
    ).astype(np.int64)
    params = aligned_zeros(p_off[-1], first.dtype)
    tables = np.concatenate([net.layout.table for net in nets])
    # Read-only like each Layout.table: the per-network slices then have the
    # type the single-network drivers were compiled for, and the whole serial
    # epoch is not compiled a second time (measured: 12-14 s per dtype, cold).
    tables.setflags(write=False)
    work = aligned_zeros(w_off[-1], first.dtype)
    codes = np.array([net._codes for net in nets], dtype=np.int64)
    hidden, output, cost = (np.ascontiguousarray(codes[:, c]) for c in range(3))
    mb_arr = np.array(mbs, np.int64)
    eta_arr = np.array(etas, np.float64)
    lmbda_arr = np.array(lmbdas, np.float64)
    orders = np.empty((k, n), np.int64)
    # Most work first (weights per sample), dealt to threads round-robin.
    schedule = np.argsort([-net.layout.n_weights for net in nets], kind="stable").astype(np.int64)

    threads = resolve_threads(n_threads)
    histories = [
        History(
            net._header(
                epochs=epochs,
                mini_batch_size=m,
                eta=e,
                lmbda=lm,
                n_training=n,
                n_evaluation=None if evaluation_data is None else len(Xe),
                n_threads=threads,
                kernel=f"many ({k} networks)",
            )
        )
        for net, m, e, lm in zip(nets, mbs, etas, lmbdas, strict=True)
    ]
    # Each network runs the fused step on one thread (its blocks: above).
    args = (
        tables,
        t_off,
        hidden,
        output,
        cost,
        loop_data(X, first.dtype),
        y,
        *train_index,
        *blocks,
    )
    monitors_training = monitor_training_cost or monitor_training_accuracy
    X_eval = first._eval_data(X) if monitors_training else X
    sync = np.zeros(SYNC_SIZE, np.int64)
    rest = (orders, mb_arr, eta_arr, lmbda_arr, n, work, w_off, schedule, threads, sync)
    # No networks (p_off[:1]): compiles or loads the kernel and trains
    # nothing, so the first epoch's seconds are training alone.
    with compile_notice(f"many-networks training kernel for {first.dtype.name}"):
        mlp.sgd_many_(params, p_off[:1], *args, *rest)
    for epoch in range(1, epochs + 1):
        for i, net in enumerate(nets):
            params[p_off[i] : p_off[i] + net.params.shape[0]] = net.params
            orders[i] = net.rng.permutation(n)
        last_good = params.copy()
        # Monitoring sets each network's own thread count; reset it per call.
        numba.set_num_threads(threads)
        t0 = time.perf_counter()
        mlp.sgd_many_(params, p_off, *args, *rest)
        seconds = time.perf_counter() - t0
        for i, net in enumerate(nets):
            net.params[...] = params[p_off[i] : p_off[i] + net.params.shape[0]]
            record = {"epoch": epoch, "seconds": seconds}
            net._monitor(
                record,
                "training",
                X_eval,
                y,
                train_index,
                lmbdas[i],
                monitor_training_cost,
                monitor_training_accuracy,
            )
            if monitors_eval:
                net._monitor(
                    record,
                    "evaluation",
                    Xe,
                    ye,
                    eval_index,
                    lmbdas[i],
                    monitor_evaluation_cost,
                    monitor_evaluation_accuracy,
                )
            try:
                net._check_finite(
                    record,
                    epoch,
                    etas[i],
                    last_good[p_off[i] : p_off[i] + net.params.shape[0]],
                    histories[i],
                )
            except DivergenceError as e:
                e.network = i
                raise
            if callback is not None:
                callback(i, record)
            histories[i].append(record)
    return histories
