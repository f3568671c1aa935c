"""The benchmark workloads and the one place that calls fastnet's kernels.

Every training-kernel call of the suite goes through
:func:`fastnet_epoch_slice`; when the epoch drivers, the workspace or the
layout change, that function (with :func:`_index` and :func:`_blocks`, the
data-derived kernel inputs, the index shared with :func:`fastnet_evaluator`)
is the only thing to adapt.
Everything else uses the public API (``Network``, ``Network.train``,
``Network.accuracy``, ``Network._evaluate``) and ``fastnet.reference``.
"""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass

import numba
import numpy as np

from fastnet import Network, reference

#: The book's hyper-parameters (chapter 3): learning rate and L2 parameter.
ETA = 0.1
LMBDA = 5.0

#: Both parameter precisions fastnet supports.
DTYPES = ("float32", "float64")

#: Seeds: network initialization, and the one sample order every timed slice
#: walks (the same for fastnet and the reference).
NET_SEED = 12345
ORDER_SEED = 2024

#: Pause before each timed round. OpenBLAS's worker threads (the reference's
#: NumPy) keep spinning for a while after a call, and Numba's OpenMP threads
#: after a parallel region; without a pause a timed call shares the cores with
#: the spinning threads of whatever ran just before it. bench/paired.py,
#: which alternates fastnet and the reference, measured accuracy() at
#: 0.67x-1.00x of the reference before it paused (1.0x-1.8x in the suite
#: then). In the suite, accuracy() on [784, 100, 10] float32 runs right after
#: the [784, 30, 10] float64 reference: without the pause its five rounds
#: took 18-34 ms (suite S, 2026-12-01; the kernel alone 20 ms in each), with
#: it 19-22 ms (suite T).
SETTLE_S = 0.25


def settle() -> None:
    """Sleep :data:`SETTLE_S` so threads left spinning by the previous call
    stop using the cores (pass as, or call from, a benchmark's ``setup``;
    pytest-benchmark does not time it)."""
    time.sleep(SETTLE_S)


#: Untimed calls before each timed "hot" call (:func:`warm_up`): the
#: training slices, and the hot evaluation rows of bench/paired.py. After
#: :func:`settle`'s pause this host's scheduler often runs both of fastnet's
#: threads on one vCPU for the next several milliseconds (README, "Calls
#: after a pause"): in suite D (stop 24) the book's float32 slice, 10.3-11.2
#: ms in its own benchmark, took 10.6-14.0 ms in 8 of the paired
#: benchmark's 15 rounds and 19.6-25.7 ms in the other 7. A train() call
#: pays that once, in its first epoch's first milliseconds; the calls
#: before the timed one make each round measure the epochs after it, for
#: fastnet and the reference alike.
WARM_CALLS = 2


def warm_up(fn, *args, reset=None, warm_calls=WARM_CALLS) -> None:
    """:func:`settle`, then `warm_calls` untimed calls of ``fn(*args)``, each
    after ``reset()`` if given, then ``reset()`` once more: the next call of
    `fn` finds the threads running and starts from the same state."""
    settle()
    for _ in range(warm_calls):
        if reset is not None:
            reset()
        fn(*args)
    if reset is not None:
        reset()


def hot_seconds(fn, *args, reset=None, warm_calls=WARM_CALLS) -> float:
    """Seconds of ``fn(*args)`` right after :func:`warm_up`; with
    ``warm_calls=0``, after the pause alone (for the paired rounds, which
    time two sides inside one round themselves)."""
    warm_up(fn, *args, reset=reset, warm_calls=warm_calls)
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


#: Multiply-adds per lane of :func:`core_probe` (about 2 ms on one core of
#: this project's machine: 8 chains of 2**20 steps).
PROBE_STEPS = 2**20


@numba.njit(parallel=True, cache=True)
def _probe_lanes(coef, out):
    # Eight independent chains of multiply-adds per lane, no memory traffic
    # and no synchronization: what a core gives at the moment, nothing else.
    for lane in numba.prange(out.shape[0]):
        a, b = coef[0], coef[1]
        x0 = x1 = x2 = x3 = x4 = x5 = x6 = x7 = float(lane)
        for _ in range(PROBE_STEPS):
            x0 = x0 * a + b
            x1 = x1 * a + b
            x2 = x2 * a + b
            x3 = x3 * a + b
            x4 = x4 * a + b
            x5 = x5 * a + b
            x6 = x6 * a + b
            x7 = x7 * a + b
        out[lane] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7


def core_probe(n_lanes: int) -> tuple[float, float]:
    """Seconds of a compute-only job of `n_lanes` equal lanes on one thread
    and on `n_lanes` threads, each timed right after one untimed call.

    Their ratio is what the cores gave a perfectly parallel job at that
    moment (``n_lanes`` on a quiet machine). The suite's paired training
    and thread benchmarks and ``paired.py``'s thread rows run it in every
    round, so that a round in which the host slowed a vCPU shows as a low
    probe ratio next to fastnet's ratio of the same round, instead of
    passing for fastnet's (training) speed or (thread) scaling.
    """
    coef = np.array([0.5, 1.0])  # a contraction: the chains stay finite
    out = np.empty(n_lanes)
    seconds = []
    for threads in (1, n_lanes):
        numba.set_num_threads(threads)
        _probe_lanes(coef, out)
        t = time.perf_counter()
        _probe_lanes(coef, out)
        seconds.append(time.perf_counter() - t)
    return seconds[0], seconds[1]


#: Rounds of the suite's paired training benchmark (test_bench_train.py
#: ``paired``), on whose median ratio the training targets are judged.
#: Five rounds (each workload's ``rounds``, until stop 24) let one slow
#: spell move the median: the book's float32 workload read 4.61x
#: [3.81-5.66x] in a suite run and 6.22x [5.64-7.46x] over 25 paired rounds
#: of bench/paired.py ten minutes later, on the same code.
PAIRED_ROUNDS = 15


@dataclass(frozen=True)
class Workload:
    """A training workload and how much of an epoch each implementation times.

    Attributes
    ----------
    sizes : tuple of int
        Layer widths, input first.
    mini_batch : int
    fastnet_batches, reference_batches : int
        Mini-batches timed per round (the first ones of the epoch's order).
        The reference may time fewer when it is slow; every figure is turned
        into samples per second, so the slices need not match.
    rounds : int
        Timed rounds (after one untimed warm-up round).
    """

    sizes: tuple[int, ...]
    mini_batch: int
    fastnet_batches: int
    reference_batches: int
    rounds: int = 5

    @property
    def net_name(self) -> str:
        return "-".join(map(str, self.sizes))

    @property
    def name(self) -> str:
        return f"{self.net_name}-mb{self.mini_batch}"

    def __str__(self) -> str:
        return self.name

    @property
    def n_weights(self) -> int:
        return n_weights(self.sizes)

    @property
    def flops_per_sample(self) -> int:
        return train_flops_per_sample(self.sizes)


def n_weights(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def train_flops_per_sample(sizes) -> int:
    """FLOPs of one training sample, approximately ``2 * 3 * n_weights``.

    One multiply and one add per weight in each of three passes: the forward
    pass (``z = W a``), the backward pass (``delta_{l-1} = W^T delta_l``) and
    the weight gradient (``grad_W += delta a^T``). It slightly overcounts (the
    first layer needs no backward pass) and ignores the activations, the
    biases and the once-per-mini-batch update, so GFLOP/s figures derived from
    it are comparable across implementations but approximate.
    """
    return 2 * 3 * n_weights(sizes)


def eval_flops_per_sample(sizes) -> int:
    """FLOPs of one evaluated sample: the forward pass, ``2 * n_weights``."""
    return 2 * n_weights(sizes)


#: Training workloads (issue 6). Slices: ~10,000-30,000 samples for fastnet,
#: fewer for the reference where it is slow. The mini-batch 100 and big
#: workloads had 10,000 and 5,120-sample slices (20-70 ms rounds) until
#: 2026-12-01: too short on this shared host, their ratios and thread scaling
#: moved by 30% between runs minutes apart.
WORKLOADS = (
    Workload((784, 30, 10), 10, fastnet_batches=1000, reference_batches=500),  # the book's
    Workload((784, 100, 10), 10, fastnet_batches=1000, reference_batches=500),
    Workload((784, 30, 10), 100, fastnet_batches=300, reference_batches=150, rounds=7),
    Workload((784, 256, 128, 10), 64, fastnet_batches=200, reference_batches=100, rounds=5),
)

#: The book's workload: also timed as a whole epoch through ``Network.train``.
BOOK = WORKLOADS[0]

#: Workloads whose mini-batches are large enough for the parallel driver:
#: the thread-scaling groups.
THREAD_WORKLOADS = (WORKLOADS[2], WORKLOADS[3])

#: Networks timed for evaluation over the 10,000 validation images.
EVAL_SIZES = ((784, 30, 10), (784, 100, 10), (784, 256, 128, 10))
THREAD_EVAL_SIZES = ((784, 30, 10), (784, 256, 128, 10))


def make_network(sizes, dtype, n_threads=None) -> Network:
    """A fresh network with the book's init, seeded (same weights every time)."""
    return Network(list(sizes), dtype=dtype, seed=NET_SEED, n_threads=n_threads)


def reference_params(net):
    """The network's weights and biases as fresh lists of arrays (the
    reference's format), so the reference starts from the same point."""
    return [w.copy() for w in net.weights], [b.copy() for b in net.biases]


def sample_order(n: int) -> np.ndarray:
    """The fixed sample order every timed slice walks (int64, like Network.train)."""
    return np.random.default_rng(ORDER_SEED).permutation(n).astype(np.int64)


#: Per data set (and driver), what the kernels need besides X and y (the
#: non-zero index of X, its input blocks), built once like ``Network.train``
#: builds them once per call and kept out of the timed rounds. Keyed by
#: ``id(X)`` and the blocks' share; the value holds X alive.
_PREPARED: dict[tuple, tuple[np.ndarray, dict]] = {}


def _index(X) -> dict:
    """`X`'s non-zero index, by kernel parameter name (empty if this
    fastnet has none)."""
    return _cached((id(X), "index"), X, _build_index)


def _blocks(X, kernel_name) -> dict:
    """`X`'s input blocks for the driver `kernel_name`, by kernel parameter
    name (empty if this fastnet has none)."""
    from fastnet import network

    share = network.block_share(kernel_name) if hasattr(network, "block_share") else None
    return _cached((id(X), "blocks", share), X, lambda X: _build_blocks(X, share))


def _cached(key, X, build) -> dict:
    hit = _PREPARED.get(key)
    if hit is not None and hit[0] is X:
        return hit[1]
    extra = build(X)
    _PREPARED[key] = (X, extra)
    return extra


def _build_index(X) -> dict:
    from fastnet import workspace

    if not hasattr(workspace, "nonzero_index"):
        return {}
    index = workspace.nonzero_index(X)
    return dict(zip(("indptr", "indices", "values")[: len(index)], index, strict=True))


def _build_blocks(X, share) -> dict:
    from fastnet import workspace

    index = _index(X)
    if not hasattr(workspace, "input_blocks") or not index:
        return {}
    args = (index["indptr"], index["indices"], X.shape[1])
    blocks = (
        workspace.input_blocks(*args) if share is None else workspace.input_blocks(*args, share)
    )
    return dict(zip(("cuts", "bounds"), blocks, strict=True))


@functools.cache
def _parameter_names(kernel) -> tuple[str, ...]:
    return tuple(inspect.signature(getattr(kernel, "py_func", kernel)).parameters)


def fastnet_epoch_slice(net, X, y, order, mini_batch, n_batches, *, eta=ETA, lmbda=LMBDA):
    """Run fastnet's compiled epoch driver on mini-batches ``0 .. n_batches-1``
    of ``order``, exactly as ``Network.train`` runs an epoch (same driver
    choice, same workspace, same decay ``1 - eta*lmbda/len(X)``), with no
    Python work per mini-batch.

    THE ONLY place that calls a training kernel; adapt it when the drivers,
    the workspaces or ``Network._driver`` change. The driver
    arguments are bound by parameter name (``params``, ``X``, ``order``,
    ``first``, ``zs``...), so a reordered signature needs no change here and a
    new argument fails loudly, naming it.

    Parameters
    ----------
    net : fastnet.Network
        Trained in place.
    X : ndarray, shape (n, sizes[0]), C-contiguous, dtype of the network
    y : ndarray of int64, shape (n,)
    order : ndarray of int64, shape (n,)
    mini_batch : int
    n_batches : int
        0 only compiles (or loads from the cache) and touches nothing.

    Returns
    -------
    str
        ``"dense"``, ``"parallel"`` or ``"serial"``: the driver that ran.
    """
    from fastnet.threads import blas_threads, resolve_threads

    n_threads = resolve_threads(net.n_threads)
    numba.set_num_threads(n_threads)
    name, kernel, ws = net._driver(mini_batch, n_threads)
    hidden, output, cost = net._codes
    values = {
        "params": net.params,
        "table": net.layout.table,
        "hidden": hidden,
        "output": output,
        "cost": cost,
        "X": X,
        "labels": y,
        "order": order,
        "mini_batch": mini_batch,
        "first": 0,
        "last": n_batches,
        "eta": eta,
        "lmbda": lmbda,
        "n": len(X),
        **_index(X),
        **_blocks(X, name),
    }
    names = _parameter_names(kernel)
    try:
        args = [values[k] if k in values else getattr(ws, k) for k in names]
    except AttributeError as e:
        raise TypeError(f"bench/_workloads.py does not know {kernel.__name__}'s {e.name!r}") from e
    with blas_threads(1):
        kernel(*args)
    return name


def fastnet_evaluator(net, X, y):
    """A zero-argument callable timing ``net._evaluate`` on prepared data:
    `X` already in the network's dtype and, if ``_evaluate`` takes one, the
    data's non-zero index built once here rather than on every call."""
    extra = _index(X)
    if "index" in inspect.signature(net._evaluate).parameters and extra:
        return functools.partial(net._evaluate, X, y, index=tuple(extra.values()))
    return functools.partial(net._evaluate, X, y)


def reference_epoch_slice(weights, biases, X, y, order, mini_batch, n_batches):
    """The reference on the same first mini-batches, with the same decay
    (``n = len(X)``, not the slice length)."""
    reference.sgd_epoch(
        weights, biases, X, y, order[: n_batches * mini_batch], mini_batch, ETA, LMBDA, n=len(X)
    )


def timed_batches(benchmark, n_batches: int) -> int:
    """Mini-batches per round: `n_batches`, or a twentieth of it in the smoke
    run (``--benchmark-disable``, each body once), which checks that the
    bodies run, not how fast."""
    return n_batches if benchmark.enabled else max(1, n_batches // 20)


def resolved_threads(net) -> int:
    """The thread count the network's kernels run with."""
    from fastnet.threads import resolve_threads

    return resolve_threads(net.n_threads)


#: How the evaluation benchmarks' timed calls start: "idle", each after
#: :func:`settle` (a call after a pause, as an occasional evaluation in a
#: pipeline), or "hot", back to back after warm-up calls (as the monitors'
#: evaluation right after each training epoch). On this project's 2-core VM
#: a parallel call after more than ~10 ms idle often runs with both threads
#: on one vCPU for its first 5-10 ms (an empty ``prange`` took 4 us hot and
#: 5.5 ms after a 0.25 s pause; with ``OMP_PROC_BIND=true`` 0.2 ms), which a
#: 5-25 ms evaluation cannot hide. pytest-benchmark's pedantic arguments per
#: start; the tests call :func:`settle` once before the hot rounds.
EVAL_STARTS = {
    "idle": dict(setup=settle, rounds=5, warmup_rounds=1),
    "hot": dict(rounds=10, warmup_rounds=3),
}

#: Benchmark kind (and group prefix) of the evaluation benchmarks per start.
EVAL_KINDS = {"idle": "eval", "hot": "eval-hot"}


def eval_info(benchmark, net, sizes, dtype, impl, api, samples, group_prefix="eval"):
    """Group and extra_info of an evaluation benchmark (10,000 validation images)."""
    name = "-".join(map(str, sizes))
    benchmark.group = f"{group_prefix}-{name}-{dtype}"
    benchmark.extra_info.update(
        kind=group_prefix,
        impl=impl,
        api=api,
        workload=name,
        sizes=list(sizes),
        dtype=dtype,
        samples=samples,
        n_threads=resolved_threads(net) if impl == "fastnet" else None,
        # forward pass only: 2 * n_weights
        flops_per_sample=eval_flops_per_sample(sizes),
    )
