"""``python -m fastnet sweep``: a grid of training runs on Dask distributed.

:func:`add_command` registers the sub-command on the main parser and
:func:`cmd_sweep` runs it (see :mod:`fastnet.sweep`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from fastnet import cli

#: Defaults of the grid flags (None on the parser, so that a --grid file's
#: values are overridden only by flags actually given).
DEFAULTS = {
    "inits": ["default", "large"],
    "hidden": ["30", "100"],
    "seeds": 1,
}


def _names(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}")
    return names


def _floats(text):
    try:
        return [float(s) for s in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers like 0.1,0.5, got {text!r}"
        ) from None


def _seeds(text):
    """``N`` (a count) or ``S1,S2,...`` (the seeds)."""
    try:
        values = [int(s) for s in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count like 2 or seeds like 1,7,42, got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def _targets(text):
    values = _floats(text)
    if any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"targets are accuracies in (0, 1], got {text!r}")
    return values


def add_command(sub) -> None:
    """Add ``sweep`` to the sub-parsers `sub`."""
    from fastnet.init import INITIALIZERS
    from fastnet.kernels.codes import COSTS, HIDDEN_ACTIVATIONS
    from fastnet.sweep import DASK_HINT

    s = sub.add_parser(
        "sweep",
        help="run a grid of training runs on Dask distributed (resumable)",
        description="Train [784, hidden..., 10] on MNIST for every initializer x hidden "
        "size x seed x eta x lambda, one Dask task per run, and report the validation "
        "accuracy after each epoch. Runs on a LocalCluster of single-threaded worker "
        "processes (NUMBA_NUM_THREADS=1), one per core, or on an existing cluster with "
        "--scheduler. Each finished run is appended to --out as it arrives; running the "
        "same sweep again skips the runs already there. Grid values come from --grid "
        f"(TOML or JSON) and/or the flags (flags win). Needs Dask: {DASK_HINT}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s.add_argument(
        "--grid",
        metavar="FILE",
        help="grid file (.toml, else JSON) with keys inits, hidden, seeds, seed, eta, lmbda, "
        "epochs, batch_size, dtype, cost, activation, limit",
    )
    s.add_argument(
        "--inits",
        type=_names,
        default=None,
        help=f"comma-separated initializers (default: default,large); any of: "
        f"{', '.join(INITIALIZERS)}",
    )
    s.add_argument(
        "--hidden",
        type=_names,
        default=None,
        help="comma-separated hidden layers, 100x30 for two (default: 30,100)",
    )
    s.add_argument(
        "--seeds",
        type=_seeds,
        default=None,
        help="number of seeds per setting (SEED..SEED+N-1), or a list like 1,7,42 (default: 1)",
    )
    s.add_argument("--seed", type=int, default=None, help="first seed (default: 12345)")
    s.add_argument(
        "--eta", type=_floats, default=None, help="learning rate(s), comma-separated (0.1)"
    )
    s.add_argument(
        "--lmbda", type=_floats, default=None, help="L2 parameter(s), comma-separated (5.0)"
    )
    s.add_argument("--epochs", type=int, default=None, help="epochs per run (30)")
    s.add_argument("--batch-size", type=int, default=None, help="mini-batch size (10)")
    s.add_argument("--dtype", default=None, choices=["float64", "float32"], help="(float64)")
    s.add_argument("--cost", default=None, choices=list(COSTS), help="(cross_entropy)")
    s.add_argument("--activation", default=None, choices=list(HIDDEN_ACTIVATIONS), help="(sigmoid)")
    s.add_argument(
        "--limit", type=int, default=None, help="train on the first N training images only"
    )
    s.add_argument(
        "--out", default="sweep.jsonl", metavar="PATH", help="results, one JSON line per run"
    )
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use an existing Dask cluster (tcp://HOST:PORT) instead of a LocalCluster; "
        "start its workers with NUMBA_NUM_THREADS=1 and give them the data (--data-dir "
        "must be valid on the workers)",
    )
    s.add_argument(
        "--workers",
        type=int,
        default=None,
        help="LocalCluster worker processes (default: one per core)",
    )
    s.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per run (default: the worker's NUMBA_NUM_THREADS)",
    )
    s.add_argument(
        "--targets",
        type=_targets,
        default=[0.95, 0.96],
        help="validation accuracies for the epochs-to-accuracy columns",
    )
    s.add_argument("--top", type=int, default=20, help="runs shown in the summary (0: all)")
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs and which are already in --out; run nothing (no Dask needed)",
    )
    s.add_argument("--quiet", action="store_true", help="no line per finished run")
    cli._data_args(s)


def _grid_kwargs(args) -> dict:
    from fastnet.sweep import load_grid

    grid = load_grid(args.grid) if args.grid else {}
    flags = {
        "inits": args.inits,
        "hidden": args.hidden,
        "seeds": args.seeds,
        "seed": args.seed,
        "eta": args.eta,
        "lmbda": args.lmbda,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "cost": args.cost,
        "activation": args.activation,
        "limit": args.limit,
    }
    kwargs = {**DEFAULTS, **grid}
    kwargs.update({k: v for k, v in flags.items() if v is not None})
    return kwargs


def _run_line(result, n_done, n_total) -> str:
    from fastnet.sweep import RunConfig

    cfg = RunConfig.from_dict(result["config"])
    head = f"[{n_done}/{n_total}] {cfg.key}"
    if result["status"] == "error":
        return f"{head}: FAILED {result['error']}"
    records = result["records"]
    acc = f"val {100 * records[-1]['evaluation_accuracy']:.2f}%" if records else "no epoch"
    status = "" if result["status"] == "ok" else f" ({result['status']})"
    return (
        f"{head}: {acc} after {len(records)} epochs{status}, {result['task_seconds']:.1f} s "
        f"on pid {result['worker']['pid']} ({result['header']['n_threads']} thread(s))"
    )


def cmd_sweep(args) -> int:
    from fastnet import sweep

    for value, name in ((args.workers, "--workers"), (args.threads, "--threads")):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    configs = sweep.make_grid(**_grid_kwargs(args))
    done = sweep.finished(args.out)
    if args.dry_run:
        for cfg in configs:
            print(f"{'done' if cfg.key in done else 'todo'}  {cfg.key}")
        n_done = sum(c.key in done for c in configs)
        print(f"{len(configs)} runs, {n_done} already in {args.out}")
        return 0
    try:
        sweep.require_dask()
    except sweep.DaskMissingError as e:
        print(f"fastnet: error: {e}", file=sys.stderr)
        return cli.EXIT_USAGE
    # The in-process scheduler and nannies log every step at INFO level through
    # the root handler that cli.main sets up; keep warnings (lost workers) only.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    data_dir = args.data_dir
    if args.scheduler is None and any(c.key not in done for c in configs):
        # Fail fast here rather than in every task; the workers get the path found.
        from fastnet.data import find_mnist

        data_dir = str(find_mnist(data_dir))
    if not args.quiet:
        where = args.scheduler or (
            f"a LocalCluster of {args.workers or sweep.default_workers()} single-threaded workers"
        )
        print(f"sweep: {len(configs)} runs on {where}; results in {args.out}", flush=True)
    report = sweep.run_sweep(
        configs,
        args.out,
        scheduler=args.scheduler,
        n_workers=args.workers,
        data_dir=data_dir,
        trust_data=args.trust_data,
        threads=args.threads,
        on_result=None if args.quiet else lambda r, i, n: print(_run_line(r, i, n), flush=True),
    )
    print(
        f"sweep: {report.n_submitted} submitted, {report.n_skipped} already in {args.out}, "
        f"{len(report.failed)} failed; {report.seconds:.1f} s"
    )
    rows = sweep.summarize(report.results, args.targets)
    print(sweep.format_summary(rows, args.targets, args.top))
    if report.failed:
        print(
            f"fastnet: {len(report.failed)} run(s) failed (see {args.out}); run the same "
            "command again to retry them",
            file=sys.stderr,
        )
        return 1
    return 0
