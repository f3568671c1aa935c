"""Paired ratios: fastnet and the reference (or 1 thread and all threads)
timed in alternating rounds, so both sides of each ratio see the same moment
of a noisy machine.

The pytest-benchmark suite times each side in its own test, one after the
other; on this project's shared 2-core host the machine's speed moved by up
to 2x between those tests, and so did single-run ratios. Here every round
times A then B on the same slice, the ratio is taken per round, and the table
reports the median of the per-round ratios with their range, and the ratio
of each side's fastest round: a second view, since the host's slow-downs
only add time. It is not a cleaner figure for the thread ratios: a
one-thread round may also run at a higher clock while the other core idles
(on 2026-12-01 it read 1.44x where the median read 1.67x). The targets are
judged on the median. The thread rows end with a core probe: after each
round, a compute-only job split into one equal lane per thread
(``_workloads.core_probe``) timed on one thread and on all, median and
range of its ratio over the rounds: about the thread count when the host
gave every vCPU in full, lower in rounds where it slowed one (as the suite's
thread table shows it). Same workloads,
slices, data and targets as the suite (``_workloads.py``, ``report.py``).

Each timed call comes after a pause (``_workloads.settle``: the other
side's threads stop spinning) and, except in the "after a pause"
evaluation rows and the two-networks rows, two untimed calls of its own
side (``_workloads.hot_seconds``), so it measures the calls after the
first of a run rather than the scheduler's placement after the pause.

Run from the repository root::

    python bench/paired.py                  # every section, 9 rounds each
    python bench/paired.py --rounds 15 train
    python bench/paired.py threads eval many

Prints a markdown table per section.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numba  # noqa: E402
from _workloads import (  # noqa: E402
    DTYPES,
    EVAL_SIZES,
    THREAD_EVAL_SIZES,
    THREAD_WORKLOADS,
    WARM_CALLS,
    WORKLOADS,
    core_probe,
    fastnet_epoch_slice,
    fastnet_evaluator,
    hot_seconds,
    make_network,
    reference_epoch_slice,
    reference_params,
    sample_order,
)
from report import (  # noqa: E402
    EVAL_TARGET,
    MANY_TARGET,
    THREAD_TARGET,
    TRAIN_TARGETS,
    fmt_spread,
)

from fastnet import reference  # noqa: E402
from fastnet.data import load_mnist  # noqa: E402
from fastnet.threads import max_threads  # noqa: E402

SECTIONS = ("train", "eval", "threads", "many")


def paired(a, b, samples_a, samples_b, rounds, warm_calls=WARM_CALLS, probe=False):
    """Per-round ratios (samples/s of `a` over samples/s of `b`), each round
    timing `a` then `b`, after one untimed warm-up of each; and the ratio of
    the two sides' fastest rounds. Each timed call comes right after the
    pause and `warm_calls` untimed calls of the same side
    (:func:`_workloads.hot_seconds`; 0: after the pause alone). With
    `probe`, each round ends with :func:`_workloads.core_probe` on every
    thread (the thread rows)."""
    a()
    b()
    rates_a, rates_b, probes = [], [], []
    for _ in range(rounds):
        rates_a.append(samples_a / hot_seconds(a, warm_calls=warm_calls))
        rates_b.append(samples_b / hot_seconds(b, warm_calls=warm_calls))
        if probe:
            one, every = core_probe(max_threads())
            probes.append(one / every)
    ratios = [ra / rb for ra, rb in zip(rates_a, rates_b, strict=True)]
    return Paired(ratios, max(rates_a) / max(rates_b), probes)


class Paired(NamedTuple):
    """What :func:`paired` measured."""

    ratios: list
    #: Fastest round of `a` over fastest round of `b` (see the module
    #: docstring for what it does and does not tell).
    fastest: float
    #: Per round, the core probe's one-thread / all-threads time (empty
    #: unless asked for).
    probes: list


def result_row(labels, measured, target, at_least=True) -> tuple[str, ...]:
    """Table cells: `labels`, the median ratio, its range, the ratio of the
    fastest rounds, the target and pass/FAIL on the median (``target`` None:
    no target)."""
    ratios = measured.ratios
    med = statistics.median(ratios)
    cells = (
        *labels,
        f"{med:.2f}x",
        f"{min(ratios):.2f}x-{max(ratios):.2f}x",
        f"{measured.fastest:.2f}x",
    )
    probe = (fmt_spread(measured.probes),) if measured.probes else ()
    if target is None:
        return (*cells, "—", "—", *probe)
    ok = med >= target if at_least else med <= target
    return (*cells, f"{'≥' if at_least else '≤'} {target}x", "pass" if ok else "**FAIL**", *probe)


def train_rows(data, rounds):
    for wl in WORKLOADS:
        for dtype in DTYPES:
            X, y = data(dtype)
            order = sample_order(len(X))
            net = make_network(wl.sizes, dtype)
            p0 = net.params.copy()
            w, b = reference_params(net)
            w0, b0 = [v.copy() for v in w], [v.copy() for v in b]
            fastnet_epoch_slice(net, X, y, order, wl.mini_batch, 0)  # compile / load

            def fast(net=net, X=X, y=y, order=order, wl=wl, p0=p0):
                net.params[...] = p0
                fastnet_epoch_slice(net, X, y, order, wl.mini_batch, wl.fastnet_batches)

            def ref(w=w, b=b, w0=w0, b0=b0, X=X, y=y, order=order, wl=wl):
                for v, v0 in zip(w + b, w0 + b0, strict=True):
                    v[...] = v0
                reference_epoch_slice(w, b, X, y, order, wl.mini_batch, wl.reference_batches)

            measured = paired(
                fast,
                ref,
                wl.fastnet_batches * wl.mini_batch,
                wl.reference_batches * wl.mini_batch,
                rounds,
            )
            yield result_row((f"`{wl.name}`", dtype), measured, TRAIN_TARGETS.get((wl.name, dtype)))


def eval_rows(data, rounds):
    for sizes in EVAL_SIZES:
        for dtype in DTYPES:
            X, y = data(dtype)
            raw = data("raw")
            net = make_network(sizes, dtype)
            w, b = reference_params(net)

            def fast(net=net, raw=raw):
                net.accuracy(raw)

            def ref(w=w, b=b, X=X, y=y):
                reference.accuracy(w, b, X, y)

            n = len(y)
            name = f"`{'-'.join(map(str, sizes))}`"
            # Each side after a pause, then hot: after the pause (which lets
            # the other side's threads stop spinning) and warm-up calls.
            measured = paired(fast, ref, n, n, rounds, warm_calls=0)
            yield result_row((name, dtype, "after a pause"), measured, EVAL_TARGET)
            measured = paired(fast, ref, n, n, rounds)
            yield result_row((name, dtype, "hot"), measured, EVAL_TARGET)


def thread_rows(data, rounds):
    n_all = max_threads()
    for wl in THREAD_WORKLOADS:
        for dtype in DTYPES:
            X, y = data(dtype)
            order = sample_order(len(X))
            nets = {t: make_network(wl.sizes, dtype, n_threads=t) for t in (n_all, 1)}
            p0 = nets[1].params.copy()
            for net in nets.values():
                fastnet_epoch_slice(net, X, y, order, wl.mini_batch, 0)

            def run(t, nets=nets, X=X, y=y, order=order, wl=wl, p0=p0):
                nets[t].params[...] = p0
                fastnet_epoch_slice(nets[t], X, y, order, wl.mini_batch, wl.fastnet_batches)

            samples = wl.fastnet_batches * wl.mini_batch
            measured = paired(
                lambda run=run: run(n_all),
                lambda run=run: run(1),
                samples,
                samples,
                rounds,
                probe=True,
            )
            target = THREAD_TARGET if wl.mini_batch >= 100 else None
            yield result_row(("train", f"`{wl.name}`", dtype), measured, target)
    for sizes in THREAD_EVAL_SIZES:
        for dtype in DTYPES:
            X, y = data(dtype)
            evals = {
                t: fastnet_evaluator(make_network(sizes, dtype, n_threads=t), X, y)
                for t in (n_all, 1)
            }
            n = len(y)
            name = f"`{'-'.join(map(str, sizes))}`"
            # After a pause, and hot (as _workloads.EVAL_STARTS);
            # the target is judged on the hot calls.
            measured = paired(evals[n_all], evals[1], n, n, rounds, warm_calls=0, probe=True)
            yield result_row(("eval, after a pause", name, dtype), measured, None)
            measured = paired(evals[n_all], evals[1], n, n, rounds, probe=True)
            yield result_row(("eval, hot", name, dtype), measured, THREAD_TARGET)


def many_rows(data, rounds):
    """Two [784, 30, 10] networks trained together (train_many, one whole
    epoch) against one trained alone, the ratio of wall times: issue 3's
    target <= 1.2x, judged against one network with every thread. The
    second row, against one network on one thread (the premise of that
    target, set when the mini-batch-10 step ran on one core), has no target:
    it shows what training together costs each network, while the first is
    bounded below by one network's own gain from its second thread."""
    import fastnet
    from fastnet.many import train_many

    for dtype in DTYPES:
        X, y = data(dtype)

        def two(X=X, y=y, dtype=dtype):
            nets = [fastnet.Network([784, 30, 10], dtype=dtype, seed=s) for s in (0, 1)]
            train_many(nets, (X, y), 1, 10, 0.1, 5.0)

        alone_on = (("every thread", None, MANY_TARGET), ("1 thread", 1, None))
        for alone, n_threads, target in alone_on:

            def one(X=X, y=y, dtype=dtype, n_threads=n_threads):
                net = fastnet.Network([784, 30, 10], dtype=dtype, seed=0, n_threads=n_threads)
                net.train((X, y), 1, 10, 0.1, 5.0)

            # paired() returns rate(a) / rate(b); with one "sample" each, that
            # is time(b) / time(a): together over alone.
            measured = paired(one, two, 1, 1, rounds, warm_calls=0)
            yield result_row(("`784-30-10-mb10`", dtype, alone), measured, target, at_least=False)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class Data:
    """MNIST splits in each dtype, converted once."""

    def __init__(self, split):
        self.split = split
        self._cache = {}

    def __call__(self, dtype):
        if dtype == "raw":
            return self.split.X, self.split.y
        if dtype not in self._cache:
            import numpy as np

            self._cache[dtype] = (np.ascontiguousarray(self.split.X, dtype=dtype), self.split.y)
        return self._cache[dtype]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sections", nargs="*", help="any of train, eval, threads (default: all)")
    parser.add_argument("--rounds", type=int, default=9, help="paired rounds per row (default 9)")
    args = parser.parse_args(argv)
    sections = args.sections or SECTIONS
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"sections: unknown {unknown}; choose from {list(SECTIONS)}")
    mnist = load_mnist()
    training, validation = Data(mnist.training), Data(mnist.validation)
    print(
        f"Paired rounds: {args.rounds} per row; Numba {numba.__version__}, "
        f"{max_threads()} threads; median of per-round ratios, their range, and the "
        "ratio of the two sides' fastest rounds.\n"
    )
    results = ("median ratio", "range", "fastest / fastest", "target", "")
    plan = {
        "train": ("Training, fastnet / reference", ("workload", "dtype"), train_rows, training),
        "eval": (
            "Evaluation, `accuracy()` / reference (10,000 images)",
            ("network", "dtype", "calls"),
            eval_rows,
            validation,
        ),
        "many": (
            "Two networks together (train_many) / one alone, wall time",
            ("workload", "dtype", "one alone on"),
            many_rows,
            training,
        ),
        "threads": ("Threads, all / 1", ("what", "workload", "dtype"), thread_rows, training),
    }
    for name in SECTIONS:
        if name in sections:
            title, labels, rows, data = plan[name]
            # Thread rows end with the core probe of their rounds (see
            # _workloads.core_probe and the module docstring).
            probe = ("core probe all / 1, same rounds",) if name == "threads" else ()
            print(f"## {title}\n")
            print(table((*labels, *results, *probe), rows(data, args.rounds)) + "\n", flush=True)


if __name__ == "__main__":
    main()
