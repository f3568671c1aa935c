"""Thread scaling: fastnet with 1 thread and with every core, same run.

Groups ``threads-train-<workload>-<dtype>`` (the mini-batch 100 and the big
workload, slices as in test_bench_train.py; besides the two benchmarks, a
``paired`` one times both thread counts in every round, on whose median
ratio the target is judged, as the training targets are on theirs) and
``threads-eval-<net>-<dtype>`` / ``threads-eval-hot-<net>-<dtype>``
(``net._evaluate`` over the 10,000 validation images, each call after a pause
or back to back, see ``_workloads.EVAL_STARTS``). The thread count is the
network's ``n_threads``: 1, or every thread Numba was started with
(``NUMBA_NUM_THREADS``, default all cores). With one thread ``Network.train``
uses the serial driver, and so does the timed slice.

    python -m pytest bench/test_bench_threads.py --benchmark-only
"""

from __future__ import annotations

import numpy as np
import pytest
from _workloads import (
    DTYPES,
    EVAL_KINDS,
    EVAL_STARTS,
    PAIRED_ROUNDS,
    THREAD_EVAL_SIZES,
    THREAD_WORKLOADS,
    core_probe,
    eval_info,
    fastnet_epoch_slice,
    fastnet_evaluator,
    hot_seconds,
    make_network,
    resolved_threads,
    settle,
    timed_batches,
    warm_up,
)

from fastnet.threads import max_threads

THREADS = {"1": 1, "all": None}


def train_info(benchmark, workload, dtype, samples, driver, net, label, mode):
    """Group and ``extra_info`` of a training thread benchmark: `label` is
    the thread count's (``"1"``, ``"all"``) or ``"paired"``; `net` runs on
    the thread count the report shows."""
    benchmark.group = f"threads-train-{workload.name}-{dtype}"
    benchmark.extra_info.update(
        kind="threads-train",
        impl="fastnet",
        mode=mode,
        driver=driver,
        workload=workload.name,
        sizes=list(workload.sizes),
        mini_batch=workload.mini_batch,
        dtype=dtype,
        samples=samples,
        n_threads=resolved_threads(net),
        threads_label=label,
        max_threads=max_threads(),
        # ~2*3*n_weights: forward + backward + weight gradient (see _workloads).
        flops_per_sample=workload.flops_per_sample,
    )


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("workload", THREAD_WORKLOADS, ids=str)
def test_threads_train(benchmark, training, order, workload, dtype, threads):
    X, y = training(dtype)
    net = make_network(workload.sizes, dtype, n_threads=THREADS[threads])
    p0 = net.params.copy()
    mb, nb = workload.mini_batch, timed_batches(benchmark, workload.fastnet_batches)
    driver = fastnet_epoch_slice(net, X, y, order, mb, 0)
    train_info(benchmark, workload, dtype, mb * nb, driver, net, threads, "slice")

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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("workload", THREAD_WORKLOADS, ids=str)
def test_threads_train_paired(benchmark, training, order, workload, dtype):
    """Each round: the slice on one thread, then on every thread, from the
    same weights, each hot (``_workloads.hot_seconds``); their seconds go to
    ``extra_info`` (``one_thread_seconds``, ``all_threads_seconds``, warm-up
    round dropped). A slow spell of the host lasting seconds then falls on
    both sides of a round's ratio instead of on one of the two benchmarks
    above."""
    X, y = training(dtype)
    nets = {label: make_network(workload.sizes, dtype, n_threads=n) for label, n in THREADS.items()}
    p0 = nets["1"].params.copy()
    assert np.array_equal(p0, nets["all"].params)
    mb, nb = workload.mini_batch, timed_batches(benchmark, workload.fastnet_batches)
    driver = fastnet_epoch_slice(nets["all"], X, y, order, mb, 0)
    fastnet_epoch_slice(nets["1"], X, y, order, mb, 0)
    train_info(benchmark, workload, dtype, mb * nb, driver, nets["all"], "paired", "paired")
    n_all = resolved_threads(nets["all"])
    seconds = {label: [] for label in THREADS}
    probe = []

    def one_pair():
        for label, net in nets.items():

            def reset(net=net):
                net.params[...] = p0

            seconds[label].append(
                hot_seconds(fastnet_epoch_slice, net, X, y, order, mb, nb, reset=reset)
            )
        # Right after the round, what the cores gave a perfectly parallel job.
        probe.append(core_probe(n_all))

    benchmark.pedantic(one_pair, rounds=PAIRED_ROUNDS, warmup_rounds=1)
    benchmark.extra_info["one_thread_seconds"] = seconds["1"][1:]
    benchmark.extra_info["all_threads_seconds"] = seconds["all"][1:]
    benchmark.extra_info["probe_one_thread_seconds"] = [one for one, _ in probe[1:]]
    benchmark.extra_info["probe_all_threads_seconds"] = [every for _, every in probe[1:]]


@pytest.mark.parametrize("start", EVAL_STARTS)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", THREAD_EVAL_SIZES, ids=lambda s: "-".join(map(str, s)))
def test_threads_eval(benchmark, validation, sizes, dtype, threads, start):
    net = make_network(sizes, dtype, n_threads=THREADS[threads])
    X, y = validation(dtype)
    prefix = "threads-" + EVAL_KINDS[start]
    eval_info(benchmark, net, sizes, dtype, "fastnet", "evaluate", len(y), prefix)
    benchmark.extra_info.update(threads_label=threads, max_threads=max_threads(), start=start)
    if start == "hot":
        settle()  # after the previous test's calls, once
    benchmark.pedantic(fastnet_evaluator(net, X, y), **EVAL_STARTS[start])
