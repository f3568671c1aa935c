"""``python -m fastnet``: a thin command line over the public API.

Bad arguments give a one-line ``fastnet: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time

from fastnet._config import BOOK
from fastnet.kernels.codes import COSTS, HIDDEN_ACTIVATIONS

EXIT_USAGE = 2
MONITOR_CHOICES = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")


class UsageError(Exception):
    """Raised for bad input found after parsing; reported like argparse errors."""


def _int_list(text):
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 784,30,10, got {text!r}"
        ) from None


def _name_list(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in MONITOR_CHOICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown monitor {bad[0]!r}; expected some of {', '.join(MONITOR_CHOICES)}"
        )
    return names


def _data_args(p):
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where MNIST is (mnist.pkl.gz or the IDX files); default: $FASTNET_DATA, the "
        "repository's data/, then the user cache dir",
    )
    p.add_argument(
        "--trust-data",
        action="store_true",
        help="unpickle mnist.pkl.gz even if its sha256 is not the known one",
    )


def build_parser() -> argparse.ArgumentParser:
    from fastnet.init import INITIALIZERS

    parser = argparse.ArgumentParser(
        prog="python -m fastnet",
        description="Fast CPU training of the sigmoid MNIST networks of Nielsen's book, ch. 3.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a network on MNIST (no arguments: the book's run)",
        description="Train on MNIST's 50,000 training images, reporting on the 10,000 "
        "validation images after each epoch. Without arguments this is the book's run: "
        "[784, 30, 10], cross-entropy, default init, 30 epochs, mini-batch 10, eta 0.1, "
        "lambda 5.0.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument(
        "--sizes",
        type=_int_list,
        default=list(BOOK["sizes"]),
        help="layer widths, input first (784 inputs, 10 outputs for MNIST)",
    )
    t.add_argument(
        "--init", default=BOOK["init"], help=f"weight initializer: {', '.join(INITIALIZERS)}"
    )
    t.add_argument(
        "--bias-init",
        default=None,
        help="bias initializer (default: the one that goes with --init)",
    )
    t.add_argument("--epochs", type=int, default=BOOK["epochs"])
    t.add_argument("--batch-size", type=int, default=BOOK["mini_batch"], help="mini-batch size")
    t.add_argument("--eta", type=float, default=BOOK["eta"], help="learning rate")
    t.add_argument(
        "--lmbda", type=float, default=BOOK["lmbda"], help="L2 regularization parameter lambda"
    )
    t.add_argument("--cost", default=BOOK["cost"], choices=list(COSTS))
    t.add_argument(
        "--activation",
        default=BOOK["activation"],
        choices=list(HIDDEN_ACTIVATIONS),
        help="hidden-layer activation",
    )
    t.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    t.add_argument(
        "--seed", type=int, default=BOOK["seed"], help="seeds initialization and shuffling"
    )
    t.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for parallel kernels (default: all cores, or NUMBA_NUM_THREADS)",
    )
    t.add_argument(
        "--monitor",
        type=_name_list,
        default=list(MONITOR_CHOICES),
        help="comma-separated per-epoch measurements; evaluation_* use the validation set",
    )
    t.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N training images only (quick runs)",
    )
    t.add_argument(
        "--checkpoint", metavar="DIR", help="write a checkpoint to DIR after every epoch (atomic)"
    )
    t.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run checkpointed in DIR; its saved configuration is "
        "used and the network/training flags are ignored (pass the same --limit)",
    )
    t.add_argument("--save", metavar="PATH", help="save the trained network (.npz)")
    t.add_argument("--metrics", metavar="PATH", help="write per-epoch metrics as JSON lines")
    t.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar within epochs (it shows only on a terminal)",
    )
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    _data_args(t)

    e = sub.add_parser(
        "evaluate",
        help="accuracy and cost of a saved network on MNIST",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    e.add_argument("model", help="a .npz saved by fastnet, or a network2 JSON file")
    e.add_argument("--split", default="test", choices=["training", "validation", "test"])
    e.add_argument("--threads", type=int, default=None)
    _data_args(e)

    d = sub.add_parser("data", help="find or download MNIST")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = dsub.add_parser("fetch", help="download MNIST into the data dir (sha256-checked)")
    f.add_argument("--data-dir", metavar="DIR", help="where to put it")
    f.add_argument("--no-progress", action="store_true")
    w = dsub.add_parser("where", help="print where MNIST is found, or where it was looked for")
    w.add_argument("--data-dir", metavar="DIR")

    from fastnet import cli_study

    cli_study.add_commands(sub)
    from fastnet import cli_sweep

    cli_sweep.add_command(sub)
    return parser


def _load_data(args, *, fetch_if_missing):
    from fastnet.data import DataNotFoundError, fetch_mnist, load_mnist

    try:
        return load_mnist(args.data_dir, trust_data=args.trust_data)
    except DataNotFoundError:
        if not fetch_if_missing:
            raise
        print("MNIST not found; fetching it (python -m fastnet data fetch)...", file=sys.stderr)
        fetch_mnist(progress=not getattr(args, "no_progress", False))
        return load_mnist(args.data_dir, trust_data=args.trust_data)


def _epoch_line(rec, epochs):
    parts = [f"epoch {rec['epoch']:>{len(str(epochs))}}/{epochs}"]
    for key, label in (("training_accuracy", "train acc"), ("evaluation_accuracy", "val acc")):
        if key in rec:
            parts.append(f"{label} {100 * rec[key]:6.2f}%")
    for key, label in (("training_cost", "train cost"), ("evaluation_cost", "val cost")):
        if key in rec:
            parts.append(f"{label} {rec[key]:.4f}")
    parts.append(f"{rec['seconds']:.2f} s")
    return "  ".join(parts)


def cmd_train(args):
    from fastnet._validation import check_number
    from fastnet.cli_study import _track_line
    from fastnet.network import Network, resume
    from fastnet.study import Tracker, train_tracked

    track = getattr(args, "track", None) or ()
    if track and args.resume is not None:
        raise UsageError("--track cannot be combined with --resume")
    if args.resume is None:
        net = Network(
            args.sizes,
            cost=args.cost,
            activation=args.activation,
            dtype=args.dtype,
            init=args.init,
            bias_init=args.bias_init,
            seed=args.seed,
            n_threads=args.threads,
        )
        if net.sizes[0] != 784 or net.sizes[-1] != 10:
            raise UsageError(
                f"--sizes must start with 784 (MNIST pixels) and end with 10 (classes), "
                f"got {','.join(map(str, net.sizes))}"
            )
        # Validate the remaining numbers before the data loads, so typos fail fast.
        check_number(args.epochs, "--epochs", low=0, integer=True)
        check_number(args.batch_size, "--batch-size", low=1, integer=True)
        check_number(args.eta, "--eta", low=0, low_open=True)
        check_number(args.lmbda, "--lmbda", low=0)
        check_number(args.track_samples, "--track-samples", low=1, integer=True)
    if args.limit is not None:
        check_number(args.limit, "--limit", low=1, integer=True)
    data = _load_data(args, fetch_if_missing=True)
    training = data.training
    if args.limit is not None:
        training = type(training)(training.X[: args.limit], training.y[: args.limit])
    progress = not args.no_progress and not args.quiet
    t0 = time.perf_counter()
    if args.resume is not None:
        from fastnet.checkpoint import load_checkpoint

        epochs = load_checkpoint(args.resume)[1]["train"]["epochs"]
        net, history = resume(
            args.resume,
            training,
            data.validation,
            metrics=args.metrics,
            progress=progress,
            callback=None if args.quiet else lambda r: print(_epoch_line(r, epochs), flush=True),
            n_threads=args.threads,
        )
    else:
        inputs = data.validation.X[: args.track_samples]
        if not args.quiet:
            tracking = f", tracking {','.join(track)}" if track else ""
            print(
                f"{net}, {args.epochs} epochs, mini-batch {args.batch_size}, eta {args.eta}, "
                f"lambda {args.lmbda}, seed {args.seed}{tracking}",
                flush=True,
            )
            if track:
                print(f"before training  {_track_line(Tracker(net, track, inputs)())}", flush=True)

        def show(rec):
            print(f"{_epoch_line(rec, args.epochs)}  {_track_line(rec)}".rstrip(), flush=True)

        history = train_tracked(
            net,
            training,
            args.epochs,
            args.batch_size,
            args.eta,
            args.lmbda,
            evaluation_data=data.validation,
            track=track,
            track_inputs=inputs,
            metrics=args.metrics,
            progress=progress,
            callback=None if args.quiet else show,
            checkpoint_dir=args.checkpoint,
            **{f"monitor_{m}": True for m in args.monitor},
        )
    if not args.quiet:
        per_epoch = sum(r["seconds"] for r in history.records) / max(1, len(history))
        print(
            f"done in {time.perf_counter() - t0:.1f} s ({per_epoch:.3f} s per epoch of "
            f"training, {history.header['n_threads']} threads, "
            f"{history.header['threading_layer']})"
        )
    if args.save:
        net.save(args.save)
        if not args.quiet:
            print(f"saved {args.save}")
    return 0


def cmd_evaluate(args):
    from fastnet.network import load

    net = load(args.model, n_threads=args.threads)
    data = _load_data(args, fetch_if_missing=False)
    split = getattr(data, args.split)
    acc = net.accuracy(split)
    cost = net.total_cost(split)
    print(
        f"{args.split} accuracy {100 * acc:.2f}% ({round(acc * len(split.y))} / {len(split.y)}), "
        f"cost {cost:.4f}"
    )
    return 0


def cmd_data(args):
    from fastnet.data import data_dirs, fetch_mnist, find_mnist

    if args.data_command == "fetch":
        path = fetch_mnist(args.data_dir, progress=not args.no_progress)
        print(path)
    else:
        try:
            print(find_mnist(args.data_dir))
        except FileNotFoundError:
            print("MNIST not found; looked in:", *data_dirs(args.data_dir), sep="\n  ")
            return 1
    return 0


def main(argv=None) -> int:
    from fastnet.data import DataFetchError, DataNotFoundError

    logging.basicConfig(level=logging.WARNING, format="fastnet: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "quiet", False):
        # fastnet's INFO lines: a kernel compiling on a first run, and the like.
        logging.getLogger("fastnet.network").setLevel(logging.INFO)
    from fastnet import cli_study, cli_sweep

    handler = {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "data": cmd_data,
        **cli_study.COMMANDS,  # compare-init, diagnose
        "sweep": cli_sweep.cmd_sweep,
    }[args.command]
    try:
        return handler(args)
    except (DataNotFoundError, DataFetchError) as e:
        print(f"fastnet: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, UsageError) as e:
        print(f"fastnet: error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fastnet: interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    """Entry point of ``python -m fastnet`` and the ``fastnet`` script:
    :func:`main`, then exit with its status.

    Before the interpreter exits, ``gc.freeze()`` takes every object out of
    the garbage collector's reach: the collection Python runs while shutting
    down would otherwise walk Numba's object graph, which took 0.54-0.67 s
    after each ``train`` command (0.06-0.09 s frozen; measured at stop 19).
    Nothing is lost: by then the command has closed its files (saves and
    checkpoints are atomic renames, metrics are flushed per epoch), and the
    operating system frees the memory.
    """
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    console_main()
