"""Training throughput: fastnet's compiled epoch vs the NumPy reference.

One pytest-benchmark group per workload and dtype, e.g.
``train-784-30-10-mb10-float32``, holding side by side:

- ``fastnet``: the first ``fastnet_batches`` mini-batches of a fixed sample
  order through the compiled epoch driver (one call, no Python per batch);
- ``reference``: ``fastnet.reference.sgd_epoch`` over the first
  ``reference_batches`` mini-batches of the same order, from the same weights;
- ``paired``: both slices again, timed one after the other in every one of
  ``PAIRED_ROUNDS`` rounds; the report takes the median of the per-round
  ratios and judges the target on it (this host's speed moves by up to 2x
  between the tests above, and single-run ratios with it; see
  bench/paired.py);
- for the book's workload only, ``epoch``: one whole epoch through the public
  ``Network.train``, a check that the slice timing is representative.

Every round starts from the same weights (reset in the untimed setup); one
untimed warm-up round keeps JIT compilation (or cache loading) out. Figures
are reported as samples per second by bench/report.py from
``extra_info["samples"]`` and the round time; nothing here asserts a speed.

    python -m pytest bench/test_bench_train.py --benchmark-only
"""

from __future__ import annotations

import numpy as np
import pytest
from _workloads import (
    BOOK,
    DTYPES,
    ETA,
    LMBDA,
    PAIRED_ROUNDS,
    WORKLOADS,
    core_probe,
    fastnet_epoch_slice,
    hot_seconds,
    make_network,
    reference_epoch_slice,
    reference_params,
    resolved_threads,
    settle,
    timed_batches,
    warm_up,
)


def _info(benchmark, workload, dtype, impl, samples, n_threads, mode):
    benchmark.group = f"train-{workload.name}-{dtype}"
    benchmark.extra_info.update(
        kind="train",
        impl=impl,
        mode=mode,
        workload=workload.name,
        sizes=list(workload.sizes),
        mini_batch=workload.mini_batch,
        dtype=dtype,
        samples=samples,
        n_threads=n_threads,
        # ~2*3*n_weights: forward + backward + weight gradient (see _workloads).
        flops_per_sample=workload.flops_per_sample,
    )


#: (workload, dtype, what): each group's benchmarks run back to back, so the
#: load of the machine is as alike as possible for the figures compared.
CASES = [
    pytest.param(w, d, what, id=f"{w}-{d}-{what}")
    for w in WORKLOADS
    for d in DTYPES
    for what in ("fastnet", "reference", "paired", *(("epoch",) if w is BOOK else ()))
]


@pytest.mark.parametrize(("workload", "dtype", "what"), CASES)
def test_train(benchmark, training, order, workload, dtype, what):
    X, y = training(dtype)
    net = make_network(workload.sizes, dtype)
    if what == "fastnet":
        train_fastnet_slice(benchmark, net, X, y, order, workload, dtype)
    elif what == "reference":
        train_reference_slice(benchmark, net, X, y, order, workload, dtype)
    elif what == "paired":
        train_paired_slices(benchmark, net, X, y, order, workload, dtype)
    else:
        train_whole_epoch(benchmark, net, X, y, workload, dtype)


def train_fastnet_slice(benchmark, net, X, y, order, workload, dtype):
    """The first mini-batches of the order through the compiled epoch driver."""
    p0 = net.params.copy()
    mb, nb = workload.mini_batch, timed_batches(benchmark, workload.fastnet_batches)
    driver = fastnet_epoch_slice(net, X, y, order, mb, 0)  # compile / load from cache
    _info(benchmark, workload, dtype, "fastnet", mb * nb, resolved_threads(net), "slice")
    benchmark.extra_info["driver"] = driver

    def reset():
        net.params[...] = p0

    def setup():
        warm_up(fastnet_epoch_slice, net, X, y, order, mb, nb, reset=reset)

    benchmark.pedantic(
        fastnet_epoch_slice,
        args=(net, X, y, order, mb, nb),
        setup=setup,
        rounds=workload.rounds,
        warmup_rounds=1,
    )


def train_reference_slice(benchmark, net, X, y, order, workload, dtype):
    """``reference.sgd_epoch`` on the first mini-batches, from the same weights."""
    mb, nb = workload.mini_batch, timed_batches(benchmark, workload.reference_batches)
    # The reference runs on NumPy's BLAS with its own default thread count.
    _info(benchmark, workload, dtype, "reference", mb * nb, None, "slice")
    benchmark.extra_info["threads_note"] = "NumPy BLAS default threads"

    def fresh_slice():
        reference_epoch_slice(*reference_params(net), X, y, order, mb, nb)

    def setup():
        warm_up(fresh_slice)
        weights, biases = reference_params(net)
        return (weights, biases, X, y, order, mb, nb), {}

    benchmark.pedantic(reference_epoch_slice, setup=setup, rounds=workload.rounds, warmup_rounds=1)


def train_paired_slices(benchmark, net, X, y, order, workload, dtype):
    """Each round: fastnet's slice, then the reference's, from the same weights,
    each after the settling pause and warm-up calls of its own
    (``_workloads.hot_seconds``); their seconds go to ``extra_info``
    (``fastnet_seconds``, ``reference_seconds``, warm-up round dropped)."""
    p0 = net.params.copy()
    mb = workload.mini_batch
    nb_fast = timed_batches(benchmark, workload.fastnet_batches)
    nb_ref = timed_batches(benchmark, workload.reference_batches)
    fastnet_epoch_slice(net, X, y, order, mb, 0)  # compile / load from cache
    _info(benchmark, workload, dtype, "paired", mb * nb_fast, resolved_threads(net), "slice")
    benchmark.extra_info["reference_samples"] = mb * nb_ref
    seconds = {"fastnet": [], "reference": []}
    weights, biases = reference_params(net)
    w0, b0 = [v.copy() for v in weights], [v.copy() for v in biases]

    def reset_fastnet():
        net.params[...] = p0

    def reset_reference():
        for v, v0 in zip(weights + biases, w0 + b0, strict=True):
            v[...] = v0

    def one_pair():
        seconds["fastnet"].append(
            hot_seconds(fastnet_epoch_slice, net, X, y, order, mb, nb_fast, reset=reset_fastnet)
        )
        # What the cores gave a perfectly parallel job right after fastnet's
        # side (after the reference's, OpenBLAS's spinning threads would
        # share the cores with it: probes of 0.4x-0.7x, suite D).
        probe.append(core_probe(resolved_threads(net)))
        seconds["reference"].append(
            hot_seconds(
                reference_epoch_slice,
                *(weights, biases, X, y, order, mb, nb_ref),
                reset=reset_reference,
            )
        )

    probe = []
    benchmark.pedantic(one_pair, rounds=PAIRED_ROUNDS, warmup_rounds=1)
    benchmark.extra_info["fastnet_seconds"] = seconds["fastnet"][1:]
    benchmark.extra_info["reference_seconds"] = seconds["reference"][1:]
    benchmark.extra_info["probe_one_thread_seconds"] = [one for one, _ in probe[1:]]
    benchmark.extra_info["probe_all_threads_seconds"] = [every for _, every in probe[1:]]


def train_whole_epoch(benchmark, net, X, y, workload, dtype):
    """One whole epoch (50,000 samples) through the public ``Network.train``."""
    p0 = net.params.copy()
    _info(benchmark, workload, dtype, "fastnet", len(X), resolved_threads(net), "epoch")
    epoch_seconds = []

    def setup():
        net.params[...] = p0
        settle()

    def one_epoch():
        history = net.train((X, y), 1, workload.mini_batch, ETA, LMBDA)
        epoch_seconds.append(history.records[-1]["seconds"])

    benchmark.pedantic(one_epoch, setup=setup, rounds=2, warmup_rounds=1)
    # Network.train's own timing of the epoch loop (it excludes the per-call
    # work: validating X, building kernel inputs, compiling or cache lookup);
    # the first entry is the warm-up round's.
    benchmark.extra_info["epoch_seconds"] = epoch_seconds[1:] or epoch_seconds


def test_slice_matches_reference(training, order):
    """Not a benchmark: the timed fastnet slice does the reference's work
    (float64, the book's workload, 50 mini-batches, same weights and order).
    Guards the kernel-level helper against binding arguments wrongly; runs in
    the smoke run (``--benchmark-disable``), skipped by ``--benchmark-only``."""
    X, y = training("float64")
    net = make_network(BOOK.sizes, "float64")
    weights, biases = reference_params(net)
    fastnet_epoch_slice(net, X, y, order, BOOK.mini_batch, 50)
    reference_epoch_slice(weights, biases, X, y, order, BOOK.mini_batch, 50)
    for got, want in zip(net.weights + net.biases, weights + biases, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
