"""The public network: validates input, owns the buffers, calls the kernels."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
import warnings
from datetime import UTC, datetime

import numba
import numpy as np

from fastnet import io
from fastnet._config import (
    ALPHA_FOLD_EVERY,
    DEFAULT_DTYPE,
    DENSE_EVAL_ROWS,
    DENSE_FIRST_BLOCK_SHARE,
    DENSE_MIN_WORK,
    DENSE_SMALL_MIN_BATCH,
    DENSE_SMALL_MIN_WORK,
    FIRST_BLOCK_SHARE,
    GRAD_CHUNK,
    PARALLEL_FUSED_MIN_BATCH,
    PARALLEL_FUSED_MIN_WORK,
)
from fastnet._validation import (
    check_choice,
    check_data,
    check_dtype,
    check_number,
    reject_nonfinite,
)
from fastnet.checkpoint import data_fingerprint, load_checkpoint, save_checkpoint
from fastnet.history import History, MetricsWriter, versions
from fastnet.init import get_initializer, initialize_layer_
from fastnet.kernels import codes, dense, mlp
from fastnet.layout import Layout, aligned_copy, aligned_zeros
from fastnet.threads import blas_threads, max_threads, resolve_threads, threading_layer
from fastnet.workspace import (
    DenseWorkspace,
    EvalWorkspace,
    TrainWorkspace,
    data_index,
    loop_data,
    no_index,
    nonzero_index,
)

#: Mini-batches per kernel call when a progress bar is shown (otherwise an
#: epoch is one call). Results do not depend on it.
_PROGRESS_STEPS = 50

#: Seconds a kernel's first call may take before :func:`notice_if_slow` says
#: it is compiling (loading a cached kernel takes well under a second; cold
#: compiles took 9-29 s on 2 cores at stop 19).
COMPILE_NOTICE_SECONDS = 2.0

_log = logging.getLogger(__name__)

#: (dense layers, network dtype, data dtype) of the evaluations this process
#: has run: the first of each kind may compile (see Network._run_evaluation).
_EVALUATED: set = set()


class SymmetryWarning(UserWarning):
    """Training from weights that are identical within a layer: gradient
    descent never makes them differ, so each layer acts like one neuron."""


class DivergenceError(FloatingPointError):
    """Training produced NaN or infinite parameters or cost.

    Attributes
    ----------
    epoch : int
        The epoch (1-based) at whose end the problem was found.
    history : History
        The records of the epochs before it.
    """

    def __init__(self, message, epoch, history):
        super().__init__(message)
        self.epoch = epoch
        self.history = history


class Network:
    """A fully-connected feed-forward network trained by L2-regularized SGD.

    All weights and biases live in one contiguous buffer, ``params``; the
    per-layer ``weights[l]`` (shaped ``(n_out, n_in)`` as in the book) and
    ``biases[l]`` (shaped ``(n_out,)``) are views into it. The buffer may hold
    zero padding beside the first layer's weights (:mod:`fastnet.layout`);
    ``layout.flat(params)`` gives the parameters without it.

    Parameters
    ----------
    sizes : sequence of int
        Neurons per layer, input first, e.g. ``[784, 30, 10]``.
    cost : {"cross_entropy", "quadratic", "log_likelihood"}
        Cross-entropy and quadratic use sigmoid outputs, log-likelihood a
        softmax output layer.
    activation : {"sigmoid", "tanh", "relu"}
        Hidden-layer activation.
    dtype : {"float64", "float32"}
        Parameter and arithmetic precision.
    init : str or None
        Weight initializer name (see :data:`fastnet.init.INITIALIZERS`);
        ``"default"`` is the book's N(0, 1/n_in). None leaves every parameter
        zero for the caller to fill (used when loading).
    bias_init : str, optional
        Bias initializer; by default the one that goes with `init`.
    seed : int, optional
        Seeds the network's generator, used for initialization and for
        shuffling: the same seed gives bit-identical results.
    n_threads : int, optional
        Threads for parallel kernels; default all (see :mod:`fastnet.threads`).
    **init_options
        Passed to the initializers (e.g. ``eps=0.1`` for ``small``).

    Examples
    --------
    >>> import numpy as np
    >>> net = Network([4, 3, 2], seed=0)
    >>> X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2
    >>> history = net.train((X, y), epochs=2, mini_batch_size=5, eta=0.5,
    ...                     evaluation_data=(X, y), monitor_evaluation_accuracy=True)
    >>> len(history.evaluation_accuracy)
    2
    """

    def __init__(
        self,
        sizes,
        *,
        cost="cross_entropy",
        activation="sigmoid",
        dtype=DEFAULT_DTYPE,
        init="default",
        bias_init=None,
        seed=None,
        n_threads=None,
        **init_options,
    ):
        self.layout = Layout(sizes)
        self.cost = check_choice(cost, codes.COSTS, "cost", "cost")
        self.activation = check_choice(
            activation, codes.HIDDEN_ACTIVATIONS, "activation", "activation"
        )
        self.dtype = check_dtype(dtype)
        self.n_threads = None if n_threads is None else resolve_threads(n_threads)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.params = aligned_zeros(self.layout.n_params, self.dtype)
        self.weights = self.layout.weight_views(self.params)
        self.biases = self.layout.bias_views(self.params)
        self._train_ws: TrainWorkspace | DenseWorkspace | None = None
        self._eval_ws = self._new_eval_ws()
        if init is None:
            self.init = self.bias_init = None
            self._symmetric = False
        else:
            self.initialize(init, bias_init, **init_options)

    # -- structure ---------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        return self.layout.sizes

    @property
    def _codes(self):
        return (
            codes.HIDDEN_ACTIVATIONS[self.activation],
            codes.ACTIVATIONS[codes.COST_OUTPUT[self.cost]],
            codes.COSTS[self.cost],
        )

    def __repr__(self) -> str:
        return (
            f"Network({list(self.sizes)}, cost={self.cost!r}, activation={self.activation!r}, "
            f"dtype={self.dtype.name!r})"
        )

    def __getstate__(self):
        # Views and work buffers are rebuilt on unpickling: pickled separately
        # they would become copies, detached from `params`.
        state = self.__dict__.copy()
        for key in ("weights", "biases", "_train_ws", "_eval_ws"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.params = aligned_copy(self.params)
        self.weights = self.layout.weight_views(self.params)
        self.biases = self.layout.bias_views(self.params)
        self._train_ws = None
        self._eval_ws = self._new_eval_ws()

    def config(self) -> dict:
        """The network's configuration as plain JSON-able values."""
        return {
            "sizes": list(self.sizes),
            "cost": self.cost,
            "activation": self.activation,
            "dtype": self.dtype.name,
            "init": self.init,
            "bias_init": self.bias_init,
        }

    # -- initialization ----------------------------------------------------
    def initialize(self, weights="default", biases=None, *, seed=None, **options):
        """Refill every weight and bias in place (same buffer, same views).

        Parameters
        ----------
        weights : str
            Initializer for the weights (e.g. ``"large"``, ``"default"``).
        biases : str, optional
            Initializer for the biases; default: the one `weights` names.
        seed : int, optional
            Reseed the network's generator first; otherwise draws continue
            from its current state.
        **options
            Initializer options (``eps``, ``gain``, ``value``...).

        Returns
        -------
        self
        """
        w_init = get_initializer(weights, "init")
        b_init = get_initializer(biases if biases is not None else w_init.bias, "bias_init")
        if seed is not None:
            self.seed = seed
            self.rng = np.random.default_rng(seed)
        for w, b in zip(self.weights, self.biases, strict=True):
            initialize_layer_(w, b, self.rng, w_init, b_init, **options)
        self.init = w_init.name
        self.bias_init = b_init.name
        self._symmetric = w_init.symmetric
        return self

    # -- evaluation --------------------------------------------------------
    def _data(self, data, argname):
        return check_data(data, argname, self.sizes[0], self.sizes[-1], self.dtype)

    def _kernel_data(self, data, argname, check_finite=True, training=False):
        """:meth:`_data` for the training and evaluation kernels: `X` of the
        other float dtype is kept as it is (:meth:`_eval_dtypes`). The dense
        evaluation converts blocks of rows where it reads them and the loop
        kernels read the non-zero index, built in the network's dtype
        (:func:`loop_data`), so the results are the bits of converting first,
        without a converted copy of the data (MNIST's 50,000 training images
        in float64: 314 MB, and 0.6 s of the command's start-up, measured;
        a float32 network's `accuracy()` on the 10,000 float64 validation
        images: see the README).
        `check_finite`: see :func:`fastnet._validation.check_data`.

        `training`: `X` for the SGD drivers, which read it only through its
        non-zero index (built in the network's dtype, entry by entry as
        converting first would, see :func:`fastnet.workspace.nonzero_index`):
        float32 and float64 `X`, read-only or not, are kept as they are, so
        repeated ``train`` calls on the same array find its kept index
        (:func:`fastnet.workspace.data_index`) instead of converting or
        copying it each time. :meth:`_eval_data` converts it if an
        evaluation needs to."""
        floats = (np.dtype(np.float32), np.dtype(np.float64))
        also = floats if training else self._eval_dtypes()
        return check_data(
            data,
            argname,
            self.sizes[0],
            self.sizes[-1],
            self.dtype,
            also=also,
            check_finite=check_finite,
            copy_readonly=not training,
        )

    def _eval_dtypes(self):
        """Dtypes of `X` the evaluation kernels take besides the network's:
        the other float dtype, converted where it is read (the dense
        evaluation converts blocks of rows, :func:`fastnet.kernels.dense.rows_as`;
        the loop evaluation reads the non-zero index, built in the network's
        dtype), so the results are the bits of converting first."""
        return (np.dtype(np.float32),) if self.dtype == np.float64 else (np.dtype(np.float64),)

    def _eval_data(self, X):
        """Training data kept as it is (:meth:`_kernel_data` with
        `training`) as the evaluation kernels take it: in the network's dtype
        (or one of :meth:`_eval_dtypes`) and writeable, converted or copied
        if it is not."""
        keep = X.dtype == self.dtype or X.dtype in self._eval_dtypes()
        if keep and X.flags.writeable:
            return X
        return np.array(X, dtype=X.dtype if keep else self.dtype)

    def _threads(self):
        n = resolve_threads(self.n_threads)
        numba.set_num_threads(n)
        return n

    def _new_eval_ws(self):
        dense_eval = use_dense(DENSE_EVAL_ROWS, self.layout.n_weights)
        return EvalWorkspace(self.layout, self.dtype, dense_eval, max_threads())

    def _evaluate(self, X, y, index=None, unchecked=None, with_cost=True):
        """Summed cost (no L2 term) and number correct over `X` (validated:
        in the network's dtype, or float32 for a float64 network, see
        :meth:`_kernel_data`). `index`: `X`'s non-zero index with values in
        the network's dtype, if at hand; only the loop kernel reads it.
        `unchecked`: the argument name, if `X`
        was not yet checked for NaN and infinite values; the kernels report
        a non-finite first layer (NaN cost), and only then is `X` searched,
        which saves a pass over the data on every call (1.3-2.4 ms of
        accuracy() on the 10,000 validation images, measured).
        `with_cost`: False skips the costs (the cost sum is then 0 or NaN)."""
        cost_sum, n_correct = self._run_evaluation(X, y, index, with_cost)
        if unchecked is not None and not math.isfinite(cost_sum):
            reject_nonfinite(X, unchecked, self.dtype)
        return cost_sum, n_correct

    def _run_evaluation(self, X, y, index, with_cost):
        dense_layers = bool(self._eval_ws.dense_zs.shape[0])
        key = (dense_layers, self.dtype, X.dtype)
        if key in _EVALUATED:
            return self._evaluation_kernel(X, y, index, with_cost)
        # This process's first evaluation of its kind compiles the kernel or
        # loads it from the cache; a long call is said to be compiling.
        with compile_notice(f"evaluation kernel for {self.dtype.name}"):
            result = self._evaluation_kernel(X, y, index, with_cost)
        _EVALUATED.add(key)
        return result

    def _evaluation_kernel(self, X, y, index, with_cost):
        ws = self._eval_ws
        n_threads = self._threads()
        if ws.dense_zs.shape[0]:
            # Layers wide enough for BLAS: one product per layer and chunk of rows.
            with blas_threads(1):
                return dense.dense_evaluate(
                    self.params,
                    self.layout.table,
                    *self._codes,
                    X,
                    y,
                    ws.dense_xs[:n_threads],
                    ws.dense_zs[:n_threads],
                    ws.dense_acts[:n_threads],
                    ws.cost_parts,
                    ws.correct_parts,
                    ws.claims,
                    with_cost,
                )
        return mlp.evaluate(
            self.params,
            self.layout.table,
            *self._codes,
            loop_data(X, self.dtype),
            y,
            *(data_index(X, self.dtype)[0] if index is None else index),
            ws.zs,
            ws.acts,
            ws.cost_parts,
            ws.correct_parts,
            with_cost,
        )

    def _l2(self, lmbda, n):
        if lmbda == 0:
            return 0.0
        return 0.5 * (lmbda / n) * mlp.sum_of_squares(self.params[: self.layout.weight_end])

    def feedforward(self, X) -> np.ndarray:
        """Output activations for inputs `X` shaped (n, sizes[0]).

        Returns
        -------
        ndarray, shape (n, sizes[-1]), dtype of the network

        Notes
        -----
        Computed as the evaluation is (float32 or float64 `X` read as it is,
        the bits of converting it first): on layers wide enough for BLAS,
        one product per layer and block of rows
        (:func:`fastnet.kernels.dense.dense_feedforward_`), else the loop
        kernel on the non-zero index of `X`, kept between calls. On the
        10,000 validation images, hot, medians of 15 calls in two processes
        each, before stop 26 (the per-sample loops, the data converted and
        indexed on every call) and now, ms: [784, 30, 10] float32 7.1-7.3 ->
        2.9, float64 10.4 -> 6.2-6.3, float64 network on float32 data
        18.1-18.6 -> 6.5, float32 network on float64 data 12.0-13.2 ->
        4.1-4.4; [784, 100, 10] float32 12.3-12.7 -> 6.3-6.4;
        [784, 256, 128, 10] float32 29.7-30.6 -> 16.5, float64 51.7-52.6 ->
        41.3-41.4 (``/work/exp/s26/ff.py``).
        """
        X, _ = self._kernel_data(
            (X, np.zeros(len(np.asarray(X)), np.int64)), "X", check_finite=False
        )
        out = np.empty((len(X), self.sizes[-1]), self.dtype)
        n = self._threads()
        ws = self._eval_ws
        table, (hidden, output, _) = self.layout.table, self._codes
        if ws.dense_zs.shape[0]:
            with blas_threads(1):
                finite = dense.dense_feedforward_(
                    self.params,
                    table,
                    hidden,
                    output,
                    X,
                    ws.dense_xs[:n],
                    ws.dense_zs[:n],
                    ws.dense_acts[:n],
                    out,
                    ws.claims,
                )
            if not finite:
                reject_nonfinite(X, "X", self.dtype)
            return out
        # The loop kernel reads the index, which refuses non-finite X itself.
        index = data_index(X, self.dtype, "X")[0]
        mlp.feedforward_(
            self.params,
            table,
            hidden,
            output,
            loop_data(X, self.dtype),
            *index,
            out,
            ws.zs,
            ws.acts,
        )
        return out

    def predict(self, X) -> np.ndarray:
        """Predicted class (index of the largest output) for each row of `X`."""
        return np.argmax(self.feedforward(X), axis=1)

    def accuracy(self, data) -> float:
        """Fraction of ``(X, y)`` classified correctly (network2 returns the count)."""
        X, y = self._kernel_data(data, "data", check_finite=False)
        return self._evaluate(X, y, unchecked="data", with_cost=False)[1] / len(X)

    def total_cost(self, data, lmbda=0.0) -> float:
        """Mean cost over ``(X, y)`` plus ``lmbda/(2n) * sum(w**2)``, ``n = len(X)``
        (as network2's ``total_cost``)."""
        lmbda = check_number(lmbda, "lmbda", low=0)
        X, y = self._kernel_data(data, "data", check_finite=False)
        return self._evaluate(X, y, unchecked="data")[0] / len(X) + self._l2(lmbda, len(X))

    def gradient(self, X, y) -> np.ndarray:
        """Gradient of the summed cost over ``(X, y)`` (no L2 term), flat, in the
        layout of ``params``. Allocates; for checks, not for training."""
        X, y = self._data((X, y), "data")
        m = len(X)
        ws = TrainWorkspace(self.layout, self.dtype, m)
        mlp.batch_gradient_(
            self.params,
            self.layout.table,
            *self._codes,
            X,
            y,
            *nonzero_index(X),
            np.arange(m, dtype=np.int64),
            ws.zs,
            ws.acts,
            ws.deltas,
            ws.grads,
        )
        return ws.grads[0].copy()

    def _driver(self, m, n_threads):
        """The SGD driver for mini-batches of `m` samples on `n_threads`
        threads, and its workspace (kept while the key matches).

        Returns
        -------
        name : str
            ``"dense"``, ``"parallel"`` or ``"serial"`` (recorded in headers).
        kernel : numba dispatcher
            Takes the network, the data, the epoch slice and ``ws.buffers``.
        ws : TrainWorkspace or DenseWorkspace
        """
        if use_dense(m, self.layout.n_weights):
            name, kernel, key = "dense", dense.sgd_dense_, ("dense", n_threads)
        elif n_threads > 1 and use_parallel(m, self.layout.n_weights):
            name, kernel, key = "parallel", mlp.sgd_parallel_, n_threads
        else:
            name, kernel, key = "serial", mlp.sgd_serial_, 1
        ws = self._train_ws
        if ws is None or ws.key != (self.sizes, self.dtype, m, key):
            if name == "dense":
                ws = DenseWorkspace(self.layout, self.dtype, m, n_threads)
            else:
                ws = TrainWorkspace(self.layout, self.dtype, m, key)
            self._train_ws = ws
        return name, kernel, ws

    def _header(self, *, n_threads, kernel, **run) -> dict:
        """The header record of a run: configuration, seed, versions, threads."""
        return {
            "config": {**self.config(), **run},
            "seed": self.seed,
            "versions": versions(),
            "threading_layer": threading_layer(),
            "n_threads": n_threads,
            "kernel": kernel,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _monitor(self, record, prefix, X, y, index, lmbda, want_cost, want_accuracy):
        """Add ``{prefix}_cost`` / ``{prefix}_accuracy`` to an epoch record."""
        if not (want_cost or want_accuracy):
            return
        cost, correct = self._evaluate(X, y, index, with_cost=want_cost)
        if want_cost:
            record[f"{prefix}_cost"] = cost / len(X) + self._l2(lmbda, len(X))
        if want_accuracy:
            record[f"{prefix}_accuracy"] = correct / len(X)

    def _check_finite(self, record, epoch, eta, last_good, history):
        """Raise DivergenceError (restoring `last_good`) if the parameters or a
        recorded cost are NaN or infinite."""
        costs = [v for k, v in record.items() if k.endswith("_cost")]
        if np.isfinite(self.params).all() and np.isfinite(costs).all():
            return
        self.params[...] = last_good
        raise DivergenceError(
            f"training diverged in epoch {epoch}: parameters or cost became NaN or "
            f"infinite with eta={eta}; the network keeps the parameters from the "
            f"end of epoch {epoch - 1}. Try a smaller eta (e.g. {eta / 10:g}).",
            epoch,
            history,
        )

    # -- training ----------------------------------------------------------
    def train(
        self,
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
        metrics=None,
        progress=False,
        callback=None,
        checkpoint_dir=None,
        header_extra=None,
        _resume=None,
    ) -> History:
        """Train by mini-batch SGD with L2 regularization (network2's ``SGD``).

        Each epoch shuffles the training data with the network's generator,
        then for each mini-batch of size m (the last may be smaller) applies
        ``w <- (1 - eta*lmbda/n) w - (eta/m) sum grad_w`` and
        ``b <- b - (eta/m) sum grad_b``, n being the training-set size. The
        whole epoch runs in compiled code.

        Parameters
        ----------
        training_data : (X, y)
            Inputs shaped (n, sizes[0]) and integer labels shaped (n,).
        epochs : int
            Number of epochs (0 is allowed: nothing happens).
        mini_batch_size : int
            Samples per mini-batch, >= 1 (larger than n means one batch).
        eta : float
            Learning rate, > 0.
        lmbda : float
            L2 regularization parameter, >= 0.
        evaluation_data : (X, y), optional
            Held-out data for the ``evaluation_*`` monitors.
        monitor_evaluation_cost, monitor_evaluation_accuracy,
        monitor_training_cost, monitor_training_accuracy : bool
            What to record after each epoch (costs include the L2 term).
        metrics : str or Path, optional
            JSON lines file: a header, then one record per epoch, flushed as
            each epoch ends.
        progress : bool
            Show a progress bar within each epoch (on a terminal only).
        callback : callable, optional
            Called with each epoch's record (a dict) as the epoch ends, before
            the record is stored and written: fields it adds (JSON-able) go
            into the history, the metrics file and the checkpoint.
        checkpoint_dir : str or Path, optional
            Write ``checkpoint.npz`` there after every epoch (atomically):
            parameters, generator state, epoch, history and configuration.
            :func:`fastnet.resume` continues from it bit for bit.
        header_extra : dict, optional
            JSON-able fields added to the history's header (and the metrics
            file's header record), e.g. measurements taken before training.

        Returns
        -------
        History

        Raises
        ------
        TypeError, ValueError
            On invalid arguments, before anything runs.
        DivergenceError
            If parameters or a monitored cost become NaN or infinite; the
            network keeps the last finite parameters.

        Warns
        -----
        SymmetryWarning
            If the weights were initialized identically (``zeros``,
            ``constant``).
        """
        epochs = check_number(epochs, "epochs", low=0, integer=True)
        mini_batch_size = check_number(mini_batch_size, "mini_batch_size", low=1, integer=True)
        eta = check_number(eta, "eta", low=0, low_open=True)
        lmbda = check_number(lmbda, "lmbda", low=0)
        # NaN and infinite values are found while the non-zero index is
        # built (below, before anything runs): one pass over the data less.
        X, y = self._kernel_data(training_data, "training_data", check_finite=False, training=True)
        monitors_eval = monitor_evaluation_cost or monitor_evaluation_accuracy
        if monitors_eval:
            if evaluation_data is None:
                raise ValueError(
                    "evaluation_data is required when monitor_evaluation_cost or "
                    "monitor_evaluation_accuracy is set"
                )
        if evaluation_data is not None:
            Xe, ye = self._kernel_data(evaluation_data, "evaluation_data")
        if self._symmetric and len(self.sizes) > 2:
            warnings.warn(
                f"weights initialized with {self.init!r} are identical within each layer; "
                "gradient descent never breaks the symmetry, so every hidden layer acts "
                "as a single neuron. Use a random initializer such as 'default'.",
                SymmetryWarning,
                stacklevel=2,
            )

        n = len(X)
        m = min(mini_batch_size, n)
        n_batches = math.ceil(n / m)
        n_threads = self._threads()
        kernel_name, kernel, ws = self._driver(m, n_threads)
        # Every SGD driver reads the training data through its non-zero index
        # (values in the network's dtype); the dense evaluation reads rows of
        # X, so skip building an index for the evaluation data then.
        loop_eval = self._eval_ws.dense_zs.shape[0] == 0
        dt = self.dtype
        # The drivers also read where each sample's non-zeros cross the input
        # blocks. Both are kept for the next call on the same data, which
        # only checks that the data did not change.
        train_index, blocks = data_index(
            X, dt, "training_data", blocks_share=block_share(kernel_name)
        )
        if evaluation_data is not None:
            eval_index = data_index(Xe, dt)[0] if loop_eval else no_index(Xe, dt)
        monitors_training = monitor_training_cost or monitor_training_accuracy
        X_eval = self._eval_data(X) if monitors_training else X
        last_good = self.params.copy()

        header = self._header(
            epochs=epochs,
            mini_batch_size=mini_batch_size,
            eta=eta,
            lmbda=lmbda,
            n_training=n,
            n_evaluation=None if evaluation_data is None else len(Xe),
            n_threads=n_threads,
            kernel=kernel_name,
        )
        if header_extra:
            header.update(header_extra)
        train_config = {
            "epochs": epochs,
            "mini_batch_size": mini_batch_size,
            "eta": eta,
            "lmbda": lmbda,
            "monitor_evaluation_cost": bool(monitor_evaluation_cost),
            "monitor_evaluation_accuracy": bool(monitor_evaluation_accuracy),
            "monitor_training_cost": bool(monitor_training_cost),
            "monitor_training_accuracy": bool(monitor_training_accuracy),
            "has_evaluation_data": evaluation_data is not None,
        }
        start_epoch = 1
        if _resume is not None:
            header = _resume["history"]["header"]
            history = History(header, _resume["history"]["records"])
            start_epoch = _resume["epoch"] + 1
        else:
            history = History(header)
        if checkpoint_dir is not None or _resume is not None:
            train_config["data"] = data_fingerprint(X, y, self.dtype)
            if _resume is not None and _resume["train"]["data"] != train_config["data"]:
                raise ValueError(
                    "training_data differs from the data the checkpoint was trained on "
                    "(fingerprint mismatch); resume needs the same data"
                )
        writer = MetricsWriter(metrics, header) if metrics is not None else None
        if writer is not None:
            for record in history.records:
                writer.write(record)
        show_bar = _progress_bar_wanted(progress)
        # Progress-bar slices end where the fused step folds its decay scale
        # anyway (ALPHA_FOLD_EVERY), so the bits do not depend on the bar.
        slices = max(1, n_batches // (_PROGRESS_STEPS * ALPHA_FOLD_EVERY))
        step = ALPHA_FOLD_EVERY * slices if show_bar else n_batches
        bar = None
        # Zero mini-batches: compiles (or loads from the cache) before any
        # epoch is timed, and touches nothing.
        net_args = (self.params, self.layout.table, *self._codes)
        data_args = (loop_data(X, dt), y, *train_index, *blocks)
        hyper = (eta, lmbda, n, *ws.buffers)
        with compile_notice(f"{kernel_name} training kernel for {self.dtype.name}"):
            kernel(*net_args, *data_args, np.arange(n), m, 0, 0, *hyper)
        limits = contextlib.ExitStack()
        try:
            if kernel_name == "dense":
                # One BLAS thread inside the driver's fixed splits: BLAS's own
                # threading would change its sums with the thread count.
                limits.enter_context(blas_threads(1))
            for epoch in range(start_epoch, epochs + 1):
                order = self.rng.permutation(n)
                if show_bar:
                    bar = _progress_bar(n_batches, f"epoch {epoch}/{epochs}")
                t0 = time.perf_counter()
                for first in range(0, n_batches, step):
                    last = min(first + step, n_batches)
                    kernel(*net_args, *data_args, order, m, first, last, *hyper)
                    if bar is not None:
                        bar.update(last - first)
                if bar is not None:
                    # Erased before the epoch's line is printed.
                    bar.close()
                    bar = None
                record = {"epoch": epoch, "seconds": time.perf_counter() - t0}
                self._monitor(
                    record,
                    "training",
                    X_eval,
                    y,
                    train_index,
                    lmbda,
                    monitor_training_cost,
                    monitor_training_accuracy,
                )
                if monitors_eval:
                    self._monitor(
                        record,
                        "evaluation",
                        Xe,
                        ye,
                        eval_index,
                        lmbda,
                        monitor_evaluation_cost,
                        monitor_evaluation_accuracy,
                    )
                self._check_finite(record, epoch, eta, last_good, history)
                last_good[...] = self.params
                if callback is not None:
                    callback(record)  # may add JSON-able fields, which are kept
                history.append(record)
                if checkpoint_dir is not None:
                    save_checkpoint(checkpoint_dir, self, epoch, train_config, history)
                if writer is not None:
                    writer.write(record)
        finally:
            limits.close()
            if writer is not None:
                writer.close()
            if bar is not None:
                bar.close()
        return history

    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0, **kwargs):  # noqa: N802
        """network2's name for :meth:`train`."""
        return self.train(training_data, epochs, mini_batch_size, eta, lmbda, **kwargs)

    # -- persistence -------------------------------------------------------
    def save(self, path):
        """Save to ``.npz`` (atomic write, no pickle). See :func:`fastnet.io.save`."""
        return io.save(self, path)


def use_dense(mini_batch: int, n_weights: int) -> bool:
    """Whether mini-batches of this size go to the dense (BLAS) driver,
    :func:`fastnet.kernels.dense.sgd_dense_`: more than GRAD_CHUNK samples
    with DENSE_MIN_WORK multiply-adds, or fewer with DENSE_SMALL_MIN_BATCH
    samples and DENSE_SMALL_MIN_WORK (wide layers; the measurements behind
    them are in fastnet._config). Depends on the sizes only, never on the
    thread count, so the bits do not either.

    Examples
    --------
    >>> use_dense(100, 23_820), use_dense(10, 23_820)   # [784, 30, 10]
    (True, False)
    >>> use_dense(10, 234_752)                          # [784, 256, 128, 10]
    True
    """
    work = mini_batch * n_weights
    if mini_batch > GRAD_CHUNK:
        return work >= DENSE_MIN_WORK
    return mini_batch >= DENSE_SMALL_MIN_BATCH and work >= DENSE_SMALL_MIN_WORK


def block_share(kernel_name: str) -> float | None:
    """The first input block's share of the data's non-zeros for the driver
    `kernel_name` (:func:`fastnet.workspace.input_blocks`): FIRST_BLOCK_SHARE
    (below half) for the fused step, whose lane 0 also updates the later
    layers; DENSE_FIRST_BLOCK_SHARE (above half) for the dense driver, whose
    lane 1 takes the later layers' unit before the last block. Depends on
    the driver, which depends on the sizes only, so the bits still do not
    depend on the thread count."""
    return DENSE_FIRST_BLOCK_SHARE if kernel_name == "dense" else FIRST_BLOCK_SHARE


def use_parallel(mini_batch: int, n_weights: int) -> bool:
    """Whether mini-batches of this size go to the parallel fused step,
    :func:`fastnet.kernels.mlp.sgd_parallel_` (mini-batches of one chunk; see
    PARALLEL_FUSED_MIN_WORK in fastnet._config for the measurements behind
    it). Larger ones take the dense driver or the serial one."""
    return (
        mlp.n_chunks(mini_batch) == 1
        and mini_batch >= PARALLEL_FUSED_MIN_BATCH
        and mini_batch * n_weights >= PARALLEL_FUSED_MIN_WORK
    )


@contextlib.contextmanager
def notice_if_slow(message, after=None):
    """Log `message` (INFO, logger ``fastnet.network``) if the body is still
    running `after` seconds after it began, and then how long it took.

    Wraps a kernel's first call, which either loads the kernel from Numba's
    on-disk cache (quick) or compiles it (tens of seconds), so that a first
    run does not sit silent. A timer thread does the logging; the body is not
    interrupted. ``python -m fastnet`` shows these lines unless ``--quiet``;
    a library caller sees them if its logging shows INFO for ``fastnet``.

    Parameters
    ----------
    message : str
    after : float, optional
        Seconds; default :data:`COMPILE_NOTICE_SECONDS`.

    Examples
    --------
    >>> with notice_if_slow("compiling...", after=60.0):
    ...     pass
    """
    after = COMPILE_NOTICE_SECONDS if after is None else after
    t0 = time.perf_counter()
    said = threading.Event()

    def say():
        said.set()
        _log.info(message)

    timer = threading.Timer(after, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if said.is_set():
            _log.info("... done in %.1f s", time.perf_counter() - t0)


def compile_notice(what):
    """:func:`notice_if_slow` around a kernel's first call: "compiling the
    `what` (once: ...)", the wording every such notice shares."""
    return notice_if_slow(f"compiling the {what} (once: Numba caches it on disk for later runs)...")


def _progress_bar_wanted(progress) -> bool:
    """Progress bars only when asked for, on a terminal, with tqdm installed."""
    if not progress or not sys.stderr.isatty():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def _progress_bar(total, description):
    """One epoch's bar; it erases itself when closed."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="batch", leave=False)


def resume(
    checkpoint_dir,
    training_data,
    evaluation_data=None,
    *,
    metrics=None,
    progress=False,
    callback=None,
    n_threads=None,
):
    """Continue an interrupted :meth:`Network.train` from its checkpoint.

    The result is bit for bit what the uninterrupted run would have given:
    parameters and the generator state are restored exactly, and the remaining
    epochs run with the saved hyper-parameters. New checkpoints keep being
    written to `checkpoint_dir`.

    Parameters
    ----------
    checkpoint_dir : str or Path
    training_data : (X, y)
        The same data as the interrupted run (checked by fingerprint).
    evaluation_data : (X, y), optional
        Required if the interrupted run monitored evaluation data.
    metrics, progress, callback
        As in :meth:`Network.train`; a metrics file gets the earlier epochs too.
    n_threads : int, optional

    Returns
    -------
    net : Network
    history : History
        Every epoch, the ones before the interruption included.

    Raises
    ------
    FileNotFoundError, ValueError
        If there is no usable checkpoint, or the data do not match.
    """
    net, state = load_checkpoint(checkpoint_dir)
    if n_threads is not None:
        net.n_threads = resolve_threads(n_threads)
    try:
        net._symmetric = get_initializer(net.init).symmetric
    except ValueError:  # a user-registered initializer not registered now
        net._symmetric = False
    cfg = dict(state["train"])
    if cfg.pop("has_evaluation_data") and evaluation_data is None:
        raise ValueError("evaluation_data is required: the checkpointed run monitored it")
    cfg.pop("data")
    history = net.train(
        training_data,
        evaluation_data=evaluation_data,
        metrics=metrics,
        progress=progress,
        callback=callback,
        checkpoint_dir=checkpoint_dir,
        _resume=state,
        **cfg,
    )
    return net, history


def load(path, *, n_threads=None) -> Network:
    """Load a network from ``.npz`` (fastnet) or JSON (network2). See
    :func:`fastnet.io.load`."""
    return io.load(path, n_threads=n_threads)
