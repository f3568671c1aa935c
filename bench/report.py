#!/usr/bin/env python
"""Turn a pytest-benchmark JSON file from fastnet's benchmark suite into
markdown tables::

    python -m pytest bench --benchmark-only --benchmark-json=bench/results/latest.json
    python bench/report.py bench/results/latest.json [--machine "..."] > table.md

Tables: training throughput (fastnet vs the NumPy reference, same run, with
GFLOP/s next to an estimate of the machine's peak), whole-epoch check,
evaluation, thread scaling, start-up; each row carries issue 6's target and a
pass/fail mark when the issue sets one. Every throughput is
``extra_info["samples"] / median round time`` (``--stat min``: the best
round); speedups are ratios of samples/s from the same run.

Standard library only (plus bench/_machine.py, next to this file).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _machine  # noqa: E402

#: Issue 6: minimum fastnet/reference speedup per training workload and dtype.
TRAIN_TARGETS = {
    ("784-30-10-mb10", "float32"): 5.0,
    ("784-30-10-mb10", "float64"): 3.0,
    ("784-100-10-mb10", "float32"): 4.0,
    ("784-30-10-mb100", "float32"): 2.0,
    ("784-256-128-10-mb64", "float32"): 1.0,
}
#: Issue 6: evaluation of the 10,000 validation images, fastnet vs reference.
EVAL_TARGET = 1.0
#: Issue 6: mini-batch 100 and above, and evaluation, use every core:
#: all-threads samples/s >= 1.6x the 1-thread figure on 2 cores.
THREAD_TARGET = 1.6
THREAD_TARGET_CORES = 2
THREAD_TARGET_MIN_BATCH = 100
#: Issue 6: a warm-cache ``python -m fastnet train --epochs 1`` spends under
#: 2 s before its first epoch begins.
STARTUP_TARGET = 2.0


#: Which round time throughputs use: "median" (default) or "min" (the best
#: round: closer to the machine's uncontended speed when other work competes).
STAT = "median"


def rate(bench) -> float:
    """Samples per second: samples per round over the median (or best) round time."""
    return bench["extra_info"]["samples"] / bench["stats"][STAT]


def fmt_rate(x) -> str:
    return "—" if x is None else f"{x:,.0f}"


def fmt_ratio(x) -> str:
    return "—" if x is None else f"{x:.2f}x"


def mark(ok) -> str:
    if ok is None:
        return "—"
    return "pass" if ok else "**FAIL**"


def target_cells(value, target, fmt="≥ {:.1f}x"):
    if target is None:
        return ["—", "—"]
    return [fmt.format(target), mark(None if value is None else value >= target)]


_NUMERIC = re.compile(r"^[-\d.,]+(x| \(upper bound\))?$|^—$|^$")


def table(header, rows) -> str:
    """Markdown table; columns whose cells are all numbers are right-aligned."""
    aligns = [
        "---:" if all(_NUMERIC.match(str(row[i])) for row in rows) else "---"
        for i in range(len(header))
    ]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def by_kind(benchmarks, kind):
    return [b for b in benchmarks if b.get("extra_info", {}).get("kind") == kind]


def groups_in_order(benchmarks):
    """Group name -> its benchmarks, groups in the order they ran."""
    groups: dict[str, list] = {}
    for b in benchmarks:
        groups.setdefault(b["group"], []).append(b)
    return groups


def paired_ratios(bench) -> list[float]:
    """Per-round speedups of a ``paired`` training benchmark (fastnet samples/s
    over reference samples/s, each round's own), or [] without one."""
    if bench is None:
        return []
    info = bench["extra_info"]
    return [
        (info["samples"] / fs) / (info["reference_samples"] / rs)
        for fs, rs in zip(info["fastnet_seconds"], info["reference_seconds"], strict=True)
    ]


def paired_thread_ratios(bench) -> list[float]:
    """Per-round all-threads / one-thread speedups of a ``paired`` thread
    benchmark (same samples on both sides), or [] without one."""
    if bench is None:
        return []
    info = bench["extra_info"]
    return [
        one / every
        for one, every in zip(info["one_thread_seconds"], info["all_threads_seconds"], strict=True)
    ]


def probe_ratios(bench) -> list[float]:
    """Per-round one-thread / all-threads time of the compute-only probe run
    in each round of a ``paired`` training or thread benchmark
    (``_workloads.core_probe``), or [] without one (runs before stop 27)."""
    if bench is None:
        return []
    info = bench["extra_info"]
    return [
        one / every
        for one, every in zip(
            info.get("probe_one_thread_seconds", []),
            info.get("probe_all_threads_seconds", []),
            strict=True,
        )
    ]


def fmt_spread(values) -> str:
    """``median [min-max]`` of ratios, or an em dash for none."""
    if not values:
        return "—"
    return f"{statistics.median(values):.2f}x [{min(values):.2f}x-{max(values):.2f}x]"


def pick(members, **match):
    for b in members:
        info = b["extra_info"]
        if all(info.get(k) == v for k, v in match.items()):
            return b
    return None


# --------------------------------------------------------------------------- #
# Sections
# --------------------------------------------------------------------------- #


def machine_section(data, machine_text, peak_source):
    mi = data.get("machine_info", {})
    fb = mi.get("fastnet_bench", {})
    cpu = fb.get("cpu") or {}
    lines = ["## Machine", ""]
    if machine_text:
        lines.append(f"- Machine: {machine_text}")
    if cpu:
        mhz = f"{cpu['mhz'] / 1000:.2f} GHz ({cpu['mhz_source']})" if cpu.get("mhz") else "?"
        lines.append(
            f"- CPU: {cpu.get('model')}, {cpu.get('physical_cores')} cores "
            f"({cpu.get('logical_cpus')} logical), {mhz}, {cpu.get('vector')}"
        )
    else:
        lines.append(f"- CPU: {mi.get('cpu', {}).get('brand_raw', mi.get('processor', '?'))}")
    if fb:
        lines.append(
            f"- Numba {fb.get('numba')}, threading layer `{fb.get('numba_threading_layer')}`, "
            f"{fb.get('numba_num_threads')} threads; NumPy {fb.get('numpy')} with "
            f"{fb.get('blas')}; Python {data.get('python', mi.get('python_version', '?'))}"
        )
        if fb.get("env"):
            env = ", ".join(f"{k}={v}" for k, v in fb["env"].items())
            lines.append(f"- Environment: {env}")
        if fb.get("load_average_at_end"):
            la = ", ".join(map(str, fb["load_average_at_end"]))
            lines.append(f"- Load average (1, 5, 15 min) when the run ended: {la}")
    lines.append(f"- Peak (estimate, {peak_source}): {_peak_text(cpu)}")
    lines.append(f"- Measured: {data.get('datetime', '?')}")
    lines.append(f"- Command: `{data.get('command', 'python -m pytest bench --benchmark-only')}`")
    return "\n".join(lines)


def _peak_text(cpu):
    if not cpu.get("peak_gflops_float32"):
        return "unknown"
    return (
        f"{cpu['peak_gflops_float32']:.0f} GFLOP/s float32, "
        f"{cpu['peak_gflops_float64']:.0f} GFLOP/s float64 = {cpu['peak_formula']}"
    )


def train_section(benchmarks, cpu):
    header = [
        "workload",
        "dtype",
        "fastnet samples/s",
        "reference samples/s",
        "speedup",
        "paired speedup",
        "paired range",
        "target",
        "",
        "core probe all / 1, same rounds",
        "fastnet s/epoch",
        "fastnet GFLOP/s",
        "peak GFLOP/s (estimate)",
        "reference GFLOP/s",
    ]
    rows, epoch_rows = [], []
    for members in groups_in_order(by_kind(benchmarks, "train")).values():
        fast = pick(members, impl="fastnet", mode="slice")
        ref = pick(members, impl="reference")
        whole = pick(members, impl="fastnet", mode="epoch")
        paired = pick(members, impl="paired")
        # (A run of the paired benchmark alone, e.g. with -k paired, has only it.)
        info = (fast or ref or whole or paired)["extra_info"]
        wl, dtype = info["workload"], info["dtype"]
        fpsamp = info["flops_per_sample"]
        rf = rate(fast) if fast else None
        rr = rate(ref) if ref else None
        speedup = rf / rr if rf and rr else None
        ratios = paired_ratios(paired)
        judged = statistics.median(ratios) if ratios else speedup
        peak = cpu.get(f"peak_gflops_{dtype}")
        rows.append(
            [
                f"`{wl}`",
                dtype,
                fmt_rate(rf),
                fmt_rate(rr),
                fmt_ratio(speedup),
                fmt_ratio(judged if ratios else None),
                f"{min(ratios):.2f}x-{max(ratios):.2f}x" if ratios else "—",
                *target_cells(judged, TRAIN_TARGETS.get((wl, dtype))),
                fmt_spread(probe_ratios(paired)),
                f"{50_000 / rf:.3f}" if rf else "—",
                f"{rf * fpsamp / 1e9:.1f}" if rf else "—",
                f"{peak:.0f}" if peak else "—",
                f"{rr * fpsamp / 1e9:.1f}" if rr else "—",
            ]
        )
        if whole:
            rw = rate(whole)
            call_s = whole["stats"][STAT]
            loop = whole["extra_info"].get("epoch_seconds")
            loop_s = statistics.median(loop) if loop else None
            epoch_rows.append(
                [
                    f"`{wl}`",
                    dtype,
                    fmt_rate(rf),
                    fmt_rate(rw),
                    fmt_ratio(rw / rf if rf else None),
                    f"{call_s:.3f}",
                    f"{loop_s:.3f}" if loop_s else "—",
                    f"{call_s - loop_s:.3f}" if loop_s else "—",
                ]
            )
    if not rows:
        return ""
    out = [
        "## Training throughput (fastnet vs the NumPy reference, same run)",
        "",
        table(header, rows),
        "",
        "Timed slices of an epoch (the first mini-batches of one fixed sample order, "
        "from the same weights); s/epoch = 50,000 / samples/s. Speedup: the two "
        "benchmarks' samples/s, timed one after the other; paired speedup: the median "
        "(and range) of per-round ratios of the `paired` benchmark, whose every round "
        "times both slices back to back, so a slow spell of the machine hits both "
        "sides. The target is judged on the paired speedup when the run has it. "
        "Core probe: as under the thread-scaling table, right after fastnet's side of "
        "each paired round; a low probe marks rounds in which the host slowed a vCPU. "
        "GFLOP/s count ~2·3·n_weights FLOPs per sample (forward, backward, weight gradient).",
    ]
    if epoch_rows:
        out += [
            "",
            "### Whole epoch through `Network.train` (is the slice representative?)",
            "",
            table(
                [
                    "workload",
                    "dtype",
                    "slice samples/s",
                    "`train()` samples/s",
                    "`train()` / slice",
                    "`train()` call s",
                    "epoch loop s",
                    "per-call overhead s",
                ],
                epoch_rows,
            ),
            "",
            "`train(data, 1, ...)` timed as a whole (one epoch of 50,000 samples); "
            "epoch loop s is the epoch's own `seconds` in its history (the compiled loop "
            "alone), the rest is per-call work (validating the data, the compile/cache "
            "check, and the data's non-zero index: built on the first call, checked "
            "against the data on later calls on the same array), paid once per `train` "
            "call, not per epoch.",
        ]
    return "\n".join(out)


def eval_section(benchmarks):
    rows = []
    starts = [(k, label) for k, label in EVAL_KIND_LABELS.items() if by_kind(benchmarks, k)]
    for kind, label in starts:
        for members in groups_in_order(by_kind(benchmarks, kind)).values():
            acc = pick(members, api="accuracy")
            ev = pick(members, api="evaluate")
            ref = pick(members, api="reference")
            info = (acc or ev or ref)["extra_info"]
            ra, re, rr = (rate(b) if b else None for b in (acc, ev, ref))
            sa = ra / rr if ra and rr else None
            se = re / rr if re and rr else None
            rows.append(
                [
                    f"`{info['workload']}`",
                    info["dtype"],
                    *([label] if len(starts) > 1 else []),
                    fmt_rate(ra),
                    fmt_rate(re),
                    fmt_rate(rr),
                    fmt_ratio(sa),
                    fmt_ratio(se),
                    *target_cells(sa, EVAL_TARGET),
                    f"{re * info['flops_per_sample'] / 1e9:.1f}" if re else "—",
                ]
            )
    if not rows:
        return ""
    header = [
        "network",
        "dtype",
        *(["calls"] if len(starts) > 1 else []),
        "`accuracy()` samples/s",
        "`_evaluate` samples/s",
        "reference samples/s",
        "speedup `accuracy()`",
        "speedup `_evaluate`",
        "target",
        "",
        "`_evaluate` GFLOP/s",
    ]
    return "\n".join(
        [
            "## Evaluation (10,000 validation images)",
            "",
            table(header, rows),
            "",
            "`accuracy()` is the public call on the data as `load_mnist` returns it (float32; "
            "a float64 network validates it and widens it block by block inside the kernel); "
            "`_evaluate` is the kernel on arrays already in the network's dtype. Pass/fail "
            "is judged on `accuracy()`, in both kinds of calls: after a pause (each round "
            "after a 0.25 s sleep) and hot (rounds back to back after warm-up rounds, as "
            "the evaluation right after each training epoch).",
        ]
    )


#: Evaluation benchmark kinds (bench/_workloads.py EVAL_KINDS) and their label.
EVAL_KIND_LABELS = {"eval": "after a pause", "eval-hot": "hot"}


#: Thread-scaling benchmark kinds and their label in the table.
THREAD_KINDS = {
    "threads-train": "train",
    "threads-eval": "eval, after a pause",
    "threads-eval-hot": "eval, hot",
}


def threads_section(benchmarks):
    rows = []
    for kind, what in THREAD_KINDS.items():
        for members in groups_in_order(by_kind(benchmarks, kind)).values():
            one = pick(members, threads_label="1")
            every = pick(members, threads_label="all")
            info = (one or every or members[0])["extra_info"]
            r1 = rate(one) if one else None
            rn = rate(every) if every else None
            ratio = rn / r1 if r1 and rn else None
            paired = pick(members, threads_label="paired")
            ratios = paired_thread_ratios(paired)
            probes = probe_ratios(paired)
            judged = statistics.median(ratios) if ratios else ratio
            n_all = (every or paired)["extra_info"]["n_threads"] if every or paired else None
            if kind == "threads-eval" and by_kind(benchmarks, "threads-eval-hot"):
                # Judged on the back-to-back calls, see the note under the table.
                target = ["— (after a pause)", "—"]
            elif kind == "threads-train" and info.get("mini_batch", 0) < THREAD_TARGET_MIN_BATCH:
                target = ["— (mini-batch < 100)", "—"]
            elif n_all != THREAD_TARGET_CORES:
                target = [f"≥ {THREAD_TARGET}x on {THREAD_TARGET_CORES} cores", "n/a"]
            else:
                target = target_cells(judged, THREAD_TARGET)
            rows.append(
                [
                    what,
                    f"`{info['workload']}`",
                    info["dtype"],
                    fmt_rate(r1),
                    fmt_rate(rn),
                    n_all if n_all is not None else "—",
                    fmt_ratio(ratio),
                    fmt_ratio(judged if ratios else None),
                    f"{min(ratios):.2f}x-{max(ratios):.2f}x" if ratios else "—",
                    *target,
                    fmt_spread(probes),
                    (every or one or members[0])["extra_info"].get("driver", "—"),
                ]
            )
    if not rows:
        return ""
    header = [
        "what",
        "workload",
        "dtype",
        "1 thread samples/s",
        "all threads samples/s",
        "threads",
        "all / 1",
        "paired all / 1",
        "paired range",
        "target",
        "",
        "core probe all / 1, same rounds",
        "driver (all)",
    ]
    lines = ["## Thread scaling (fastnet, same run)", "", table(header, rows)]
    trains = by_kind(benchmarks, "threads-train")
    if any(b["extra_info"].get("threads_label") == "paired" for b in trains):
        lines += [
            "",
            "Training: all / 1 divides the two benchmarks' samples/s, timed one after the "
            "other; paired all / 1 is the median (and range) of per-round ratios of the "
            "`paired` benchmark, whose every round times the slice on one thread and on "
            "every thread back to back. The target is judged on the paired ratio when the "
            "run has it. Core probe: right after each paired round, a compute-only job "
            "split into as many equal lanes as threads (no memory traffic, no barriers; "
            "`_workloads.core_probe`) timed on one thread and on every thread: what the "
            "cores gave a perfectly parallel job at that moment, median [range] over the "
            "rounds. A paired ratio low beside a probe near the thread count is fastnet's; "
            "rounds in which the probe is low too were the host's.",
        ]
    if by_kind(benchmarks, "threads-eval-hot"):
        lines += [
            "",
            "Evaluation after a pause: every call after a 0.25 s sleep; hot: calls back to "
            "back after warm-up calls, as the evaluation right after each training epoch. "
            "On a VM a parallel call after more than ~10 ms idle may run both threads on one "
            "vCPU for its first milliseconds (the scheduler's placement, not the kernel's "
            "work); the target is judged on the hot calls.",
        ]
    return "\n".join(lines)


MANY_TARGET = 1.2


def many_section(benchmarks):
    """K networks trained together vs one alone (with every core, and on one
    thread): wall time of an epoch."""
    rows = []
    for members in groups_in_order(by_kind(benchmarks, "many")).values():
        alone = [m for m in members if m["extra_info"]["networks"] == 1]
        one = max(alone, key=lambda m: m["extra_info"].get("threads", 0), default=None)
        one_serial = next((m for m in alone if m["extra_info"].get("threads") == 1), None)
        for other in members:
            k = other["extra_info"]["networks"]
            if k == 1 or one is None:
                continue
            t1, tk = one["stats"][STAT], other["stats"][STAT]
            ratio = tk / t1
            ok = ratio <= MANY_TARGET if k == 2 else None
            ts = one_serial["stats"][STAT] if one_serial is not None else None
            rows.append(
                [
                    f"`{other['extra_info']['workload']}`",
                    other["extra_info"]["dtype"],
                    f"{t1:.3f}",
                    "—" if ts is None else f"{ts:.3f}",
                    k,
                    f"{tk:.3f}",
                    f"{ratio:.2f}x",
                    "—" if ts is None else f"{tk / ts:.2f}x",
                    f"≤ {MANY_TARGET}x" if k == 2 else "—",
                    mark(ok) if ok is not None else "—",
                ]
            )
    if not rows:
        return ""
    header = [
        "workload",
        "dtype",
        "one network s/epoch",
        "one network, 1 thread",
        "K",
        "K together s/epoch",
        "together / one",
        "together / one on 1 thread",
        "target",
        "",
    ]
    note = (
        "One network alone uses every core (its mini-batch-10 step is split "
        "between threads); the target is judged against that. Together, each "
        "network runs on its own thread."
    )
    return "\n".join(
        [
            "## Several networks at once (`fastnet.many.train_many`)",
            "",
            table(header, rows),
            "",
            note,
        ]
    )


def startup_section(benchmarks):
    rows = []
    for b in by_kind(benchmarks, "startup"):
        info = b["extra_info"]
        before = info["before_first_epoch_median"]
        is_target = info["cache"] == "warm" and info["variant"] == "train-only"
        rows.append(
            [
                info["cache"],
                info["variant"],
                len(info["wall_seconds"]),
                f"{statistics.median(info['wall_seconds']):.2f}",
                f"{statistics.median(info['epoch_seconds']):.2f}",
                f"{before:.2f}" + (" (upper bound)" if info["includes_post_epoch"] else ""),
                f"< {STARTUP_TARGET:.0f} s" if is_target else "—",
                mark(before < STARTUP_TARGET) if is_target else "—",
            ]
        )
    if not rows:
        return ""
    header = [
        "JIT cache",
        "variant",
        "runs",
        "wall s",
        "epoch s",
        "before first epoch s",
        "target",
        "",
    ]
    return "\n".join(
        [
            "## Start-up: fresh process to the end of the first epoch",
            "",
            table(header, rows),
            "",
            "`python -m fastnet train --epochs 1 --no-progress --quiet` in a subprocess with "
            "`NUMBA_CACHE_DIR` fresh (cold) or filled by an earlier run (warm); before first "
            "epoch = wall - the epoch's `seconds` from `--metrics`. `command` evaluates the "
            "default monitors after the epoch (included, hence an upper bound); "
            "`train-only` adds `--monitor=`. Medians over the runs.",
        ]
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", help="a pytest-benchmark --benchmark-json file")
    p.add_argument("--machine", help="free-text description of the machine to print")
    p.add_argument(
        "--stat",
        choices=("median", "min"),
        default="median",
        help="round time used for samples/s (min: the best round, less sensitive to other load)",
    )
    args = p.parse_args(argv)
    global STAT
    STAT = args.stat
    data = json.loads(Path(args.json).read_text())
    benchmarks = data.get("benchmarks", [])
    cpu = data.get("machine_info", {}).get("fastnet_bench", {}).get("cpu")
    peak_source = "recorded with the run"
    if not cpu:
        cpu, peak_source = _machine.cpu_facts(), "from the machine running report.py"
    sections = [
        "# fastnet benchmarks",
        machine_section(data, args.machine, peak_source),
        train_section(benchmarks, cpu),
        eval_section(benchmarks),
        threads_section(benchmarks),
        many_section(benchmarks),
        startup_section(benchmarks),
        f"Throughput = samples per round / {STAT} round time. Targets are issue 6's; "
        "benchmarks never assert them. Regenerate: "
        f"`python bench/report.py {args.json}" + (" --stat min" if STAT == "min" else "") + "`.",
    ]
    print("\n\n".join(s for s in sections if s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
