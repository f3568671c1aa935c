"""Evaluation throughput: accuracy over the 10,000 validation images.

One group per network and dtype (``eval-784-30-10-float32``), three entries:

- ``accuracy``: the public ``net.accuracy((X, y))`` with the split as
  ``load_mnist`` returns it (float32), so every call pays the validation of
  the data (a float64 network widens it block by block in the kernel);
- ``evaluate``: ``net._evaluate(X, y)`` on arrays already in the network's
  dtype, with any per-data-set kernel input (the non-zero index of X) built
  once outside the timing (the compiled kernel alone);
- ``reference``: ``fastnet.reference.accuracy`` on the same weights, with the
  data in the network's dtype.

Each in two starts (``_workloads.EVAL_STARTS``): "idle", every round after
a pause (``settle``), and "hot", rounds back to back after warm-up rounds
(groups ``eval-hot-...``), as in test_bench_threads.py; on a VM the first
milliseconds after a pause may find both of fastnet's threads on one vCPU.

Samples per round: 10,000. Nothing is asserted about speed.

    python -m pytest bench/test_bench_eval.py --benchmark-only
"""

from __future__ import annotations

import pytest
from _workloads import (
    DTYPES,
    EVAL_KINDS,
    EVAL_SIZES,
    EVAL_STARTS,
    eval_info,
    fastnet_evaluator,
    make_network,
    reference_params,
    settle,
)

from fastnet import reference

APIS = ("accuracy", "evaluate", "reference")


@pytest.mark.parametrize("start", EVAL_STARTS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", EVAL_SIZES, ids=lambda s: "-".join(map(str, s)))
def test_eval(benchmark, validation, sizes, dtype, api, start):
    net = make_network(sizes, dtype)
    X, y = validation(dtype)
    impl = "reference" if api == "reference" else "fastnet"
    eval_info(benchmark, net, sizes, dtype, impl, api, len(y), EVAL_KINDS[start])
    benchmark.extra_info["start"] = start
    if start == "hot":
        settle()  # after the previous test's calls (BLAS threads left spinning), once
    if api == "accuracy":
        benchmark.pedantic(net.accuracy, args=(validation.raw,), **EVAL_STARTS[start])
    elif api == "evaluate":
        benchmark.pedantic(fastnet_evaluator(net, X, y), **EVAL_STARTS[start])
    else:
        benchmark.extra_info["threads_note"] = "NumPy BLAS default threads"
        weights, biases = reference_params(net)
        benchmark.pedantic(reference.accuracy, args=(weights, biases, X, y), **EVAL_STARTS[start])
