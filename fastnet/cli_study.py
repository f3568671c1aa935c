"""Command line for the weight-initialization study (:mod:`fastnet.study`,
:mod:`fastnet.diagnostics`).

- ``python -m fastnet compare-init``: the book's comparison of initializers
  (table, JSON, PNG); ``--decay-report`` measures the L2 weight decay instead.
- ``python -m fastnet diagnose``: saturation statistics of a fresh or saved
  network on MNIST validation images.
- ``python -m fastnet train --track saturation,weights``: per-epoch tracking
  into the metrics file.

:func:`add_commands` registers them on the main parser; :data:`COMMANDS` maps
command names to handlers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from fastnet import cli
from fastnet._config import BOOK
from fastnet.kernels.codes import COSTS, HIDDEN_ACTIVATIONS

#: How to get the optional plotting dependency.
PLOT_HINT = 'no PNG written: matplotlib is not installed; get it with: pip install "fastnet[plot]"'


def _names(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _positive_ints(text):
    values = cli._int_list(text)
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _track(text):
    from fastnet.study import check_track

    try:
        return list(check_track(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_commands(sub) -> None:
    """Add ``compare-init`` and ``diagnose`` to the sub-parsers `sub`, and
    ``--track`` to its ``train`` parser."""
    from fastnet.init import INITIALIZERS

    inits = ", ".join(INITIALIZERS)
    c = sub.add_parser(
        "compare-init",
        help="compare weight initializers as in the book (table, JSON, PNG)",
        description="Train [784, h, 10] for each hidden size h, initializer and seed and "
        "report the validation accuracy after every epoch. Without arguments this is the "
        "book's comparison: h = 30 and 100, inits large (N(0,1)) and default (N(0,1/n_in)), "
        "30 epochs, mini-batch 10, eta 0.1, lambda 5.0, cross-entropy. Writes "
        "OUT/compare-init.json and OUT/compare-init.png. --dtype float32 halves the time. "
        "With --decay-report it measures the L2 weight decay of the chapter's last problem "
        "instead (default: init large, h = 30, 60 epochs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    c.add_argument(
        "--inits",
        type=_names,
        default=None,
        help=f"comma-separated initializers (default: large,default; with --decay-report: "
        f"large); any of: {inits}",
    )
    c.add_argument(
        "--hidden",
        type=_positive_ints,
        default=None,
        help="comma-separated hidden-layer sizes (default: 30,100; with --decay-report: 30)",
    )
    c.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="seeds per network: SEED..SEED+N-1 (--decay-report uses SEED only)",
    )
    c.add_argument("--seed", type=int, default=BOOK["seed"], help="first seed")
    c.add_argument(
        "--epochs", type=int, default=None, help="epochs (default 30; 60 with --decay-report)"
    )
    c.add_argument("--batch-size", type=int, default=BOOK["mini_batch"], help="mini-batch size")
    c.add_argument("--eta", type=float, default=BOOK["eta"], help="learning rate")
    c.add_argument("--lmbda", type=float, default=BOOK["lmbda"], help="L2 parameter lambda")
    c.add_argument("--cost", default=BOOK["cost"], choices=list(COSTS))
    c.add_argument(
        "--activation",
        default=BOOK["activation"],
        choices=list(HIDDEN_ACTIVATIONS),
        help="hidden-layer activation",
    )
    c.add_argument(
        "--dtype",
        default="float64",
        choices=["float64", "float32"],
        help="float32 takes about half the time",
    )
    c.add_argument("--threads", type=int, default=None, help="threads per network")
    c.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N training images only (quick runs)",
    )
    c.add_argument("--out", default="compare-init", metavar="DIR", help="output folder")
    c.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    c.add_argument(
        "--all-epochs", action="store_true", help="print every epoch (default: a selection)"
    )
    c.add_argument(
        "--decay-report",
        action="store_true",
        help="measure the per-epoch shrink factor of the weight RMS against the predicted "
        "exp(-eta*lambda/m) instead of comparing accuracies",
    )
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    cli._data_args(c)

    d = sub.add_parser(
        "diagnose",
        help="saturation of each layer's weighted inputs z on MNIST validation images",
        description="Per layer: mean and std of the weighted inputs z, the fraction of "
        "saturated neurons and a histogram of z, for a saved network (MODEL) or for fresh "
        "networks from initializers (default: large and default, [784, 30, 10]).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("model", nargs="?", help="a .npz saved by fastnet, or a network2 JSON file")
    d.add_argument(
        "--init",
        type=_names,
        default=None,
        help=f"comma-separated initializers for fresh networks (default: large,default); "
        f"any of: {inits}",
    )
    d.add_argument(
        "--sizes", type=cli._int_list, default=list(BOOK["sizes"]), help="fresh networks' sizes"
    )
    d.add_argument(
        "--activation",
        default=BOOK["activation"],
        choices=list(HIDDEN_ACTIVATIONS),
        help="fresh networks' hidden activation",
    )
    d.add_argument("--cost", default=BOOK["cost"], choices=list(COSTS), help="fresh networks' cost")
    d.add_argument("--seed", type=int, default=BOOK["seed"], help="fresh networks' seed")
    d.add_argument("--samples", type=int, default=1000, help="validation images to use")
    d.add_argument(
        "--threshold",
        type=float,
        default=0.01,
        help="saturated: activation within this of its limits (0 or 1 for sigmoid)",
    )
    d.add_argument("--bins", type=int, default=20, help="histogram bins")
    d.add_argument("--no-histogram", action="store_true", help="only the per-layer table")
    d.add_argument("--png", metavar="PATH", help="also draw the histograms (needs matplotlib)")
    d.add_argument("--json", metavar="PATH", help="also write the statistics as JSON")
    cli._data_args(d)

    t = sub.choices.get("train")
    if t is not None:
        t.add_argument(
            "--track",
            type=_track,
            default=[],
            metavar="WHAT",
            help="also record per epoch, into the metrics file and the epoch lines: "
            "'saturation' (per layer: mean and std of z and the saturated fraction on the "
            "first --track-samples validation images), 'weights' (per-layer weight RMS), or "
            "both: saturation,weights",
        )
        t.add_argument(
            "--track-samples",
            type=int,
            default=1000,
            help="validation images used by --track saturation",
        )


# --------------------------------------------------------------------- helpers


def _jsonable(obj):
    """Replace NaN/inf by None and NumPy scalars/arrays by Python values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj) -> None:
    """Write `obj` as JSON, atomically."""
    from fastnet._atomic import atomic_write

    with atomic_write(path, "w") as f:
        json.dump(_jsonable(obj), f, indent=1, allow_nan=False)
        f.write("\n")


def try_plot(plot, *args) -> bool:
    """Call a plotting function; on a missing matplotlib print how to get it."""
    try:
        plot(*args)
    except ImportError:
        print(PLOT_HINT)
        return False
    return True


def _check_common(args):
    from fastnet._validation import check_number

    check_number(args.batch_size, "--batch-size", low=1, integer=True)
    check_number(args.eta, "--eta", low=0, low_open=True)
    check_number(args.lmbda, "--lmbda", low=0)
    check_number(args.seeds, "--seeds", low=1, integer=True)
    if args.epochs is not None:
        check_number(args.epochs, "--epochs", low=1, integer=True)
    if args.limit is not None:
        check_number(args.limit, "--limit", low=1, integer=True)
    if args.threads is not None:
        check_number(args.threads, "--threads", low=1, integer=True)


def _training(data, limit):
    X, y = data.training
    if limit is not None:
        X, y = X[:limit], y[:limit]
    return X, y


# ---------------------------------------------------------------- compare-init


def cmd_compare_init(args):
    from fastnet import study
    from fastnet.init import get_initializer

    _check_common(args)
    decay = args.decay_report
    inits = args.inits or (["large"] if decay else list(study.BOOK_INITS))
    inits = [get_initializer(name, "--inits").name for name in inits]
    hidden = args.hidden or ([30] if decay else list(study.BOOK_HIDDEN))
    epochs = args.epochs or (60 if decay else BOOK["epochs"])
    if decay and args.lmbda == 0:
        raise cli.UsageError("--decay-report needs --lmbda > 0: it measures the L2 weight decay")
    data = cli._load_data(args, fetch_if_missing=True)
    training = _training(data, args.limit)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if decay:
        return _decay_reports(args, study, training, data.validation, inits, hidden, epochs, out)

    n_runs = len(inits) * len(hidden) * args.seeds
    if not args.quiet:
        print(
            f"training {n_runs} networks ({', '.join(inits)} x hidden {hidden} x "
            f"{args.seeds} seed(s)), {epochs} epochs each on {len(training[0])} images, "
            f"{args.dtype}",
            flush=True,
        )
    t0 = time.perf_counter()
    result = study.compare_init(
        training,
        data.validation,
        inits=inits,
        hidden=hidden,
        seeds=args.seeds,
        seed=args.seed,
        epochs=epochs,
        mini_batch_size=args.batch_size,
        eta=args.eta,
        lmbda=args.lmbda,
        cost=args.cost,
        activation=args.activation,
        dtype=args.dtype,
        n_threads=args.threads,
        on_epoch=None if args.quiet else _progress(n_runs, epochs),
        on_done=None if args.quiet else _done_line(n_runs),
    )
    result["command"] = _command(args, inits, hidden, epochs)
    print()
    print(study.format_table(result, every=args.all_epochs))
    print()
    json_path = out / "compare-init.json"
    write_json(json_path, result)
    print(f"wrote {json_path} ({time.perf_counter() - t0:.0f} s of training and evaluation)")
    if not args.no_plot:
        png = out / "compare-init.png"
        if try_plot(study.plot_compare_init, result, png):
            print(f"wrote {png}")
    return 0


def _decay_reports(args, study, training, validation, inits, hidden, epochs, out):
    for name in inits:
        for h in hidden:
            if not args.quiet:
                print(
                    f"decay report: [{training[0].shape[1]}, {h}, 10], init {name}, "
                    f"{epochs} epochs on {len(training[0])} images, {args.dtype}",
                    flush=True,
                )
            report = study.decay_report(
                training,
                validation,
                hidden=h,
                init=name,
                seed=args.seed,
                epochs=epochs,
                cost=args.cost,
                activation=args.activation,
                mini_batch_size=args.batch_size,
                eta=args.eta,
                lmbda=args.lmbda,
                dtype=args.dtype,
                n_threads=args.threads,
                on_epoch=None if args.quiet else _progress(1, epochs),
            )
            report["command"] = _command(args, [name], [h], epochs)
            if not args.quiet and sys.stderr.isatty():
                print(file=sys.stderr)
            print()
            print(study.format_decay_table(report, every=args.all_epochs))
            print()
            stem = out / f"decay-{name}-h{h}"
            write_json(stem.with_suffix(".json"), report)
            print(f"wrote {stem.with_suffix('.json')}")
            if not args.no_plot and try_plot(
                study.plot_decay_report, report, stem.with_suffix(".png")
            ):
                print(f"wrote {stem.with_suffix('.png')}")
    return 0


def _command(args, inits, hidden, epochs) -> str:
    """The run as one explicit command line (every setting spelled out)."""
    parts = ["python -m fastnet compare-init"]
    if args.decay_report:
        parts.append("--decay-report")
    parts += [
        f"--inits {','.join(inits)}",
        f"--hidden {','.join(map(str, hidden))}",
        f"--seeds {args.seeds}",
        f"--seed {args.seed}",
        f"--epochs {epochs}",
        f"--batch-size {args.batch_size}",
        f"--eta {args.eta:g}",
        f"--lmbda {args.lmbda:g}",
        f"--cost {args.cost}",
        f"--activation {args.activation}",
        f"--dtype {args.dtype}",
    ]
    if args.limit is not None:
        parts.append(f"--limit {args.limit}")
    return " ".join(parts)


def _progress(n_runs, epochs):
    """Per-epoch progress on a terminal (overwritten in place), nothing otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(i, config, record):
        acc = record.get("evaluation_accuracy")
        acc = f"  val {100 * acc:.2f}%" if acc is not None else ""
        print(
            f"\r  [{i + 1}/{n_runs}] {config.init} {list(config.sizes)} seed {config.seed}: "
            f"epoch {record['epoch']}/{epochs}{acc}   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _done_line(n_runs):
    def done(i, config, net, history):
        if sys.stderr.isatty():
            print("\r" + " " * 79 + "\r", end="", file=sys.stderr, flush=True)
        acc = history.evaluation_accuracy
        first = f"epoch 1 {100 * acc[0]:.2f}%" if acc else ""
        last = f", epoch {len(acc)} {100 * acc[-1]:.2f}%" if len(acc) > 1 else ""
        print(
            f"  [{i + 1}/{n_runs}] {config.init} {list(config.sizes)} seed {config.seed}: "
            f"{first}{last} ({history.header['wall_seconds']:.1f} s)",
            flush=True,
        )

    return done


# -------------------------------------------------------------------- diagnose


def cmd_diagnose(args):
    from fastnet import diagnostics
    from fastnet._validation import check_number
    from fastnet.network import Network, load

    check_number(args.samples, "--samples", low=1, integer=True)
    check_number(args.bins, "--bins", low=1, integer=True)
    check_number(args.threshold, "--threshold", low=0, low_open=True)
    if not args.threshold < 0.5:
        raise cli.UsageError(f"--threshold must be < 0.5, got {args.threshold}")
    if args.model and args.init:
        raise cli.UsageError("give either MODEL or --init, not both")
    if args.model:
        nets = {args.model: load(args.model)}
    else:
        nets = {
            name: Network(
                args.sizes, init=name, activation=args.activation, cost=args.cost, seed=args.seed
            )
            for name in (args.init or ["large", "default"])
        }
    data = cli._load_data(args, fetch_if_missing=True)
    X = data.validation.X[: args.samples]
    results = {}
    for label, net in nets.items():
        stats = diagnostics.saturation(net, X, args.threshold, bins=args.bins)
        results[label] = stats
        what = f"init {net.init}, seed {net.seed}" if not args.model else label
        print(f"{what}: {net!r} on {len(X)} MNIST validation images")
        print(diagnostics.render_saturation(stats, histograms=not args.no_histogram))
        print()
    if len(results) > 1:
        print(
            "saturated fraction by layer: "
            + "; ".join(
                f"{label} " + ", ".join(f"{100 * s.saturated:.1f}%" for s in stats)
                for label, stats in results.items()
            )
        )
    if args.json:
        write_json(
            args.json,
            {
                "format": "fastnet-diagnose",
                "format_version": 1,
                "n_inputs": len(X),
                "threshold": args.threshold,
                "networks": {
                    label: {
                        "network": nets[label].config(),
                        "seed": nets[label].seed,
                        "layers": [s.to_dict() for s in stats],
                    }
                    for label, stats in results.items()
                },
            },
        )
        print(f"wrote {args.json}")
    if args.png and try_plot(diagnostics.plot_saturation, results, args.png):
        print(f"wrote {args.png}")
    return 0


# ----------------------------------------------------------- train --track


def _track_line(rec) -> str:
    parts = []
    if "saturated" in rec:
        parts.append("saturated " + "/".join(f"{100 * v:.1f}%" for v in rec["saturated"]))
        parts.append("std z " + "/".join(f"{v:.2f}" for v in rec["z_std"]))
    if "weight_rms" in rec:
        parts.append("weight RMS " + "/".join(f"{v:.4f}" for v in rec["weight_rms"]))
    return "  ".join(parts)


#: Command name -> handler, merged into :func:`fastnet.cli.main`'s dispatch.
#: (``train --track`` is handled by :func:`fastnet.cli.cmd_train`.)
COMMANDS = {"compare-init": cmd_compare_init, "diagnose": cmd_diagnose}
