"""Several networks at once (issue 3, part 4): K [784, 30, 10] networks trained
together by fastnet.many.train_many against one network trained alone, one
whole epoch each, in the same run. Target: two together take at most 1.2x the
wall time of one on a 2-core machine.

    python -m pytest bench/test_bench_many.py --benchmark-only
"""

from __future__ import annotations

import pytest
from _workloads import settle

import fastnet
from fastnet.many import train_many
from fastnet.threads import max_threads

SIZES = (784, 30, 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k,n_threads", [(1, None), (1, 1), (2, None)])
def test_many_networks_one_epoch(benchmark, training, dtype, k, n_threads):
    # One network alone runs with every core (mini-batch 10 splits its step
    # between threads) and, for comparison, on one thread.
    X, y = training(dtype)
    benchmark.group = f"many-784-30-10-mb10-{dtype}"
    benchmark.extra_info.update(
        kind="many",
        workload="784-30-10-mb10",
        dtype=dtype,
        networks=k,
        threads=n_threads or max_threads(),
        samples=k * len(X),
        max_threads=max_threads(),
    )
    nets = []

    def setup():
        nets[:] = [
            fastnet.Network(SIZES, dtype=dtype, seed=s, n_threads=n_threads) for s in range(k)
        ]
        settle()

    def run():
        if k == 1:
            nets[0].train((X, y), 1, 10, 0.1, 5.0)
        else:
            train_many(nets, (X, y), 1, 10, 0.1, 5.0)

    benchmark.pedantic(run, setup=setup, rounds=3, warmup_rounds=1)
