"""Epochs-to-accuracy: how many epochs, and how many wall-clock seconds, until
validation accuracy first reaches 95% and 96%.

``[784, 30, 10]`` and ``[784, 100, 10]``, eta 0.1, lambda 5, mini-batch 10,
cross-entropy, float64, seed 12345, at most 30 epochs, for the ``default``
(N(0, 1/n_in)) and the ``large`` (N(0, 1)) initializer; the book's runs reached
95% at epoch 4 (default) vs epoch 13 (large) with 30 hidden neurons. A run
stops once both thresholds are reached. fastnet only; ``--e2a-reference``
also trains the NumPy reference from the same weights in the same sample
orders (a few times longer).

Long (minutes): marked ``slow``, skipped unless ``--runslow`` is given. It is
a plain test, not a pytest-benchmark one, so do not pass ``--benchmark-only``.
Run it with::

    python -m pytest bench/test_bench_epochs_to_accuracy.py --runslow -q

It writes ``bench/results/epochs_to_accuracy.json`` and prints a table.
Seconds: ``train`` is the sum of the epochs' training time, ``wall`` is
measured from the start of the ``Network.train`` call (one call, 30 epochs,
stopped from its callback) and also counts data validation, compilation or
cache loading and the per-epoch evaluation of the 10,000 validation images.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime

import _machine
import numpy as np
import pytest
from _workloads import ETA, LMBDA, NET_SEED

from fastnet import Network, reference

pytestmark = pytest.mark.slow

SIZES = ((784, 30, 10), (784, 100, 10))
INITS = ("default", "large")
THRESHOLDS = (0.95, 0.96)
MAX_EPOCHS = 30
MINI_BATCH = 10
DTYPE = "float64"


def _reached(entry, acc, epoch, train_s, wall_s):
    for t in THRESHOLDS:
        key = f"{round(100 * t)}%"
        if acc >= t and key not in entry:
            entry[key] = {"epoch": epoch, "train_seconds": train_s, "wall_seconds": wall_s}


def _done(entry):
    return all(f"{round(100 * t)}%" in entry for t in THRESHOLDS)


class _BothReached(Exception):
    """Raised from the training callback to stop once both thresholds are hit."""


def run_fastnet(net, training, validation):
    """One ``Network.train(..., epochs=MAX_EPOCHS)`` call, as a user runs it,
    stopped from its callback once both thresholds are reached."""
    entry, accs = {}, []
    train_s = 0.0
    t0 = time.perf_counter()

    def on_epoch(record):
        nonlocal train_s
        train_s += record["seconds"]
        accs.append(record["evaluation_accuracy"])
        _reached(entry, accs[-1], record["epoch"], train_s, time.perf_counter() - t0)
        if _done(entry):
            raise _BothReached

    try:
        net.train(
            training,
            MAX_EPOCHS,
            MINI_BATCH,
            ETA,
            LMBDA,
            evaluation_data=validation,
            monitor_evaluation_accuracy=True,
            callback=on_epoch,
        )
    except _BothReached:
        pass
    return {**entry, "epochs_run": len(accs), "accuracy": accs}


def run_reference(weights, biases, rng, training, validation):
    (X, y), (Xv, yv) = training, validation
    entry, accs = {}, []
    train_s = 0.0
    t0 = time.perf_counter()
    for epoch in range(1, MAX_EPOCHS + 1):
        order = rng.permutation(len(X))
        t = time.perf_counter()
        reference.sgd_epoch(weights, biases, X, y, order, MINI_BATCH, ETA, LMBDA)
        train_s += time.perf_counter() - t
        acc = reference.accuracy(weights, biases, Xv, yv)
        accs.append(acc)
        _reached(entry, acc, epoch, train_s, time.perf_counter() - t0)
        if _done(entry):
            break
    return {**entry, "epochs_run": len(accs), "accuracy": accs}


@pytest.fixture(scope="module")
def e2a_results(results_dir):
    """Collects this run's entries; each test rewrites the JSON file."""
    results = {
        "config": {
            "eta": ETA,
            "lmbda": LMBDA,
            "mini_batch": MINI_BATCH,
            "cost": "cross_entropy",
            "dtype": DTYPE,
            "seed": NET_SEED,
            "max_epochs": MAX_EPOCHS,
            "thresholds": list(THRESHOLDS),
        },
        "machine": _machine.cpu_facts(),
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m pytest bench/test_bench_epochs_to_accuracy.py --runslow",
        "runs": {},
    }
    return results, results_dir / "epochs_to_accuracy.json"


def _fmt(hit):
    if hit is None:
        return "not reached", "—", "—"
    return str(hit["epoch"]), f"{hit['train_seconds']:.1f}", f"{hit['wall_seconds']:.1f}"


def table(runs) -> str:
    lines = [
        "| network | init | impl | epoch 95% | train s | wall s | epoch 96% | train s | wall s "
        "| epochs run | best acc |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs.values():
        for impl in ("fastnet", "reference"):
            if impl not in run:
                continue
            r = run[impl]
            cells = [*_fmt(r.get("95%")), *_fmt(r.get("96%"))]
            lines.append(
                f"| {run['sizes']} | {run['init']} | {impl} | "
                + " | ".join(cells)
                + f" | {r['epochs_run']} | {100 * max(r['accuracy']):.2f}% |"
            )
    return "\n".join(lines)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "-".join(map(str, s)))
def test_epochs_to_accuracy(request, mnist, e2a_results, capsys, sizes, init):
    results, path = e2a_results
    training = (np.ascontiguousarray(mnist.training.X, DTYPE), mnist.training.y)
    validation = (np.ascontiguousarray(mnist.validation.X, DTYPE), mnist.validation.y)
    net = Network(list(sizes), dtype=DTYPE, init=init, seed=NET_SEED)
    ref_start = ([w.copy() for w in net.weights], [b.copy() for b in net.biases])
    ref_rng = copy.deepcopy(net.rng)  # the same shuffles as the network's
    run = {"sizes": list(sizes), "init": init}
    run["fastnet"] = run_fastnet(net, training, validation)
    if request.config.getoption("--e2a-reference"):
        run["reference"] = run_reference(*ref_start, ref_rng, training, validation)
    results["runs"][f"{'-'.join(map(str, sizes))}/{init}"] = run

    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)
    with capsys.disabled():
        print(f"\n\nepochs to accuracy (so far; written to {path}):\n{table(results['runs'])}\n")
