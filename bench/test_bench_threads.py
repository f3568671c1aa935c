"""Thread scaling: fastnet with 1 thread and with every core, same run.

Groups ``threads-train-<workload>-<dtype>`` (the mini-batch 100 and the big
workload, slices as in test_bench_train.py) and
``threads-eval-<net>-<dtype>`` / ``threads-eval-hot-<net>-<dtype>``
(``net._evaluate`` over the 10,000 validation images, each call after a pause
or back to back, see ``_workloads.EVAL_STARTS``). The thread count is the
network's ``n_threads``: 1, or every thread Numba was started with
(``NUMBA_NUM_THREADS``, default all cores). With one thread ``Network.train``
uses the serial driver, and so does the timed slice.

    python -m pytest bench/test_bench_threads.py --benchmark-only
"""

from __future__ import annotations

import pytest
from _workloads import (
    DTYPES,
    EVAL_KINDS,
    EVAL_STARTS,
    THREAD_EVAL_SIZES,
    THREAD_WORKLOADS,
    eval_info,
    fastnet_epoch_slice,
    fastnet_evaluator,
    make_network,
    resolved_threads,
    settle,
    timed_batches,
    warm_up,
)

from fastnet.threads import max_threads

THREADS = {"1": 1, "all": None}


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("workload", THREAD_WORKLOADS, ids=str)
def test_threads_train(benchmark, training, order, workload, dtype, threads):
    X, y = training(dtype)
    net = make_network(workload.sizes, dtype, n_threads=THREADS[threads])
    p0 = net.params.copy()
    mb, nb = workload.mini_batch, timed_batches(benchmark, workload.fastnet_batches)
    driver = fastnet_epoch_slice(net, X, y, order, mb, 0)
    benchmark.group = f"threads-train-{workload.name}-{dtype}"
    benchmark.extra_info.update(
        kind="threads-train",
        impl="fastnet",
        mode="slice",
        driver=driver,
        workload=workload.name,
        sizes=list(workload.sizes),
        mini_batch=mb,
        dtype=dtype,
        samples=mb * nb,
        n_threads=resolved_threads(net),
        threads_label=threads,
        max_threads=max_threads(),
        # ~2*3*n_weights: forward + backward + weight gradient (see _workloads).
        flops_per_sample=workload.flops_per_sample,
    )

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
