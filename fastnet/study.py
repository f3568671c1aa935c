"""The weight-initialization study of Nielsen's chapter 3, as functions.

- :func:`train_tracked` trains one network and records, per epoch, saturation
  statistics of a fixed set of inputs and the RMS of each layer's weights.
- :func:`train_many` trains several networks (one :class:`RunConfig` each) and
  returns one :class:`~fastnet.history.History` per config. It trains them one
  after another for now; it is the single place a multi-network kernel will
  plug into.
- :func:`compare_init` runs the book's comparison of initializers (``large``
  N(0, 1) against ``default`` N(0, 1/n_in)) for several hidden sizes and seeds;
  :func:`format_table` and :func:`plot_compare_init` show the result.
- :func:`decay_report` measures the L2 weight decay of the problem at the end
  of the chapter: per epoch the weights shrink by ``(1 - eta*lmbda/n)**(n/m)
  ~ exp(-eta*lmbda/m)`` while decay dominates, then the shrinking tails off.

The command line front end is :mod:`fastnet.cli_study`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np

from fastnet._config import BOOK, DEFAULT_DTYPE
from fastnet.diagnostics import DEFAULT_THRESHOLD, saturation_summary, weight_rms
from fastnet.history import History, versions
from fastnet.init import get_initializer
from fastnet.network import DivergenceError, Network, SymmetryWarning

__all__ = [
    "BOOK_RESULTS",
    "TRACK_CHOICES",
    "RunConfig",
    "compare_init",
    "decay_report",
    "format_decay_table",
    "format_table",
    "plot_compare_init",
    "plot_decay_report",
    "train_many",
    "train_tracked",
]

#: What :func:`train_tracked` can record per epoch.
TRACK_CHOICES = ("saturation", "weights")

#: Inputs used for per-epoch saturation tracking (the first ones of the
#: evaluation data).
DEFAULT_TRACK_SAMPLES = 1000

#: The book's comparison: hidden sizes and initializers (``large`` is the old
#: N(0, 1) weights, ``default`` the new N(0, 1/n_in)).
BOOK_HIDDEN = (30, 100)
BOOK_INITS = ("large", "default")

#: Validation accuracy (percent) the book reports for its comparison
#: (network2, [784, hidden, 10], 30 epochs, mini-batch 10, eta 0.1, lambda 5).
BOOK_RESULTS = {
    (30, "default"): {1: 92.70, 30: 96.50},
    (30, "large"): {1: 86.43, 30: 96.37},
    (100, "default"): {1: 92.95, 30: 97.81},
    (100, "large"): {1: 89.94, 30: 97.42},
}

#: Why a network whose weights start identical within each layer does not learn.
SYMMETRY_NOTE = (
    "the weights start identical within each layer, so every hidden neuron computes "
    "the same function of the input and receives the same gradient: the neurons stay "
    "identical, and the network acts like one with a single hidden neuron whatever its "
    "hidden size (SymmetryWarning)."
)

#: Format name and version of the JSON files written by the CLI.
COMPARE_FORMAT = "fastnet-compare-init"
DECAY_FORMAT = "fastnet-decay-report"
FORMAT_VERSION = 1

#: Decay-report thresholds on the rate ratio ``log(measured) / log(predicted)``
#: (1 = pure weight decay, 0 = the weights no longer shrink).
DECAY_DOMINATES = 0.9
DECAY_TAILS_OFF = 0.5
DECAY_STOPPED = 0.1


# ------------------------------------------------------------------- tracking


def check_track(track) -> tuple[str, ...]:
    """Validate a ``track`` argument: a name, a comma-separated string or a
    sequence of names from :data:`TRACK_CHOICES`."""
    if track is None:
        return ()
    if isinstance(track, str):
        track = [t.strip() for t in track.split(",") if t.strip()]
    names = []
    for t in track:
        if t not in TRACK_CHOICES:
            raise ValueError(f"unknown track {t!r}; expected some of: {', '.join(TRACK_CHOICES)}")
        if t not in names:
            names.append(t)
    return tuple(names)


class Tracker:
    """Per-epoch measurements of a network, as record fields.

    Parameters
    ----------
    net : Network
    track : sequence of str
        Some of :data:`TRACK_CHOICES`.
    inputs : ndarray, optional
        Fixed inputs for the saturation statistics (needed for "saturation").
    threshold : float
        Saturation threshold (see :func:`fastnet.diagnostics.saturation`).

    Calling it returns a dict: ``weight_rms`` (per layer) and
    ``weight_rms_all`` for "weights"; ``z_mean``, ``z_std`` and ``saturated``
    (per layer, first hidden layer first) for "saturation".
    """

    def __init__(self, net, track, inputs=None, threshold=DEFAULT_THRESHOLD):
        self.net = net
        self.track = check_track(track)
        self.threshold = threshold
        if "saturation" in self.track:
            if inputs is None:
                raise ValueError("tracking saturation needs inputs (track_inputs=...)")
            self.inputs = np.asarray(inputs, dtype=np.float64)
        else:
            self.inputs = None

    def __call__(self) -> dict:
        out = {}
        if "weights" in self.track:
            out.update(weight_rms(self.net))
        if "saturation" in self.track:
            out.update(saturation_summary(self.net, self.inputs, self.threshold))
        return out


def train_tracked(
    net,
    training_data,
    epochs,
    mini_batch_size,
    eta,
    lmbda=0.0,
    *,
    track=(),
    track_inputs=None,
    track_samples=DEFAULT_TRACK_SAMPLES,
    threshold=DEFAULT_THRESHOLD,
    metrics=None,
    callback=None,
    **train_kwargs,
) -> History:
    """:meth:`Network.train` that also records per-epoch measurements.

    Parameters
    ----------
    net : Network
    training_data, epochs, mini_batch_size, eta, lmbda
        As for :meth:`Network.train`.
    track : str or sequence of str
        Some of :data:`TRACK_CHOICES`: ``"saturation"`` adds ``z_mean``,
        ``z_std`` and ``saturated`` (per layer) to each epoch record,
        ``"weights"`` adds ``weight_rms`` (per layer) and ``weight_rms_all``.
        Empty: exactly :meth:`Network.train`.
    track_inputs : array_like, optional
        Fixed inputs for the saturation statistics; default the first
        `track_samples` rows of ``evaluation_data`` (or of the training data
        when there is none).
    threshold : float
        Saturation threshold.
    metrics : str or Path, optional
        JSON lines file as for :meth:`Network.train`; the epoch records hold
        the tracked fields, and the header a ``"track"`` entry with the
        measurements before training (``"initial"``).
    callback : callable, optional
        Called with each epoch's record, after the tracked fields are added.
    **train_kwargs
        Other :meth:`Network.train` arguments (``evaluation_data``,
        ``monitor_*``, ``progress``).

    Returns
    -------
    History
        Its header has ``"track"``: what was tracked, on how many inputs, and
        the ``"initial"`` measurements (epoch 0).

    Notes
    -----
    The tracked fields are added to each record by a :meth:`Network.train`
    callback, which runs before the record is stored and written, so the
    history, the metrics file and any checkpoint hold them.
    """
    track = check_track(track)
    if not track:
        return net.train(
            training_data,
            epochs,
            mini_batch_size,
            eta,
            lmbda,
            metrics=metrics,
            callback=callback,
            **train_kwargs,
        )
    if "saturation" in track and track_inputs is None:
        source = train_kwargs.get("evaluation_data")
        if source is None:
            source = training_data
        track_inputs = np.asarray(source[0])[:track_samples]
    tracker = Tracker(net, track, track_inputs, threshold)
    extra = {
        "track": {
            "what": list(track),
            "n_inputs": None if tracker.inputs is None else len(tracker.inputs),
            "threshold": threshold,
            "initial": tracker(),
        }
    }

    def on_epoch(record):
        record.update(tracker())
        if callback is not None:
            callback(record)

    return net.train(
        training_data,
        epochs,
        mini_batch_size,
        eta,
        lmbda,
        metrics=metrics,
        callback=on_epoch,
        header_extra=extra,
        **train_kwargs,
    )


# --------------------------------------------------------------- many networks


@dataclass(frozen=True)
class RunConfig:
    """One network of a study and how to train it.

    Attributes
    ----------
    sizes : tuple of int
    init, bias_init : str
        Weight and bias initializers (``bias_init=None``: the weight
        initializer's own bias scheme).
    seed : int or None
    cost, activation, dtype : str
    epochs, mini_batch_size : int
    eta, lmbda : float
    """

    sizes: tuple[int, ...]
    init: str = "default"
    bias_init: str | None = None
    seed: int | None = BOOK["seed"]
    cost: str = BOOK["cost"]
    activation: str = BOOK["activation"]
    dtype: str = DEFAULT_DTYPE.name
    epochs: int = BOOK["epochs"]
    mini_batch_size: int = BOOK["mini_batch"]
    eta: float = BOOK["eta"]
    lmbda: float = BOOK["lmbda"]

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))

    def network(self, n_threads=None) -> Network:
        """A fresh network with this configuration."""
        return Network(
            self.sizes,
            cost=self.cost,
            activation=self.activation,
            dtype=self.dtype,
            init=self.init,
            bias_init=self.bias_init,
            seed=self.seed,
            n_threads=n_threads,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        return d


def _as_dtype(data, dtype, cache):
    """``(X, y)`` with X converted to `dtype` once per dtype (not once per network)."""
    if data is None:
        return None
    key = (id(data), np.dtype(dtype))
    if key not in cache:
        X, y = data
        cache[key] = (np.ascontiguousarray(X, dtype=dtype), np.asarray(y))
    return cache[key]


def distinct_hidden_neurons(net) -> list[int]:
    """Number of distinct neurons in each hidden layer (distinct rows of the
    incoming weights, with the bias). 1 means the layer acts as one neuron."""
    out = []
    for w, b in zip(net.weights[:-1], net.biases[:-1], strict=True):
        rows = np.column_stack([w, b])
        out.append(int(np.unique(rows, axis=0).shape[0]))
    return out


def train_many(
    configs,
    data,
    *,
    evaluation_data=None,
    monitor_evaluation_accuracy=True,
    monitor_evaluation_cost=True,
    track=(),
    track_inputs=None,
    threshold=DEFAULT_THRESHOLD,
    n_threads=None,
    on_epoch=None,
    on_done=None,
) -> list[History]:
    """Train one network per config and return one History per config, in order.

    Configs sharing a dtype and a number of epochs are trained together by
    :func:`fastnet.many.train_many`: one kernel call per epoch advances all of
    them, one network per thread, each getting exactly the bits it would get
    trained alone.

    Parameters
    ----------
    configs : sequence of RunConfig
    data : (X, y)
        Training data, shared by every network.
    evaluation_data : (X, y), optional
        Evaluated after each epoch (accuracy and cost as asked).
    monitor_evaluation_accuracy, monitor_evaluation_cost : bool
        What to record on `evaluation_data` (ignored without it).
    track, track_inputs, threshold
        Per-epoch measurements, as for :func:`train_tracked`.
    n_threads : int, optional
        Threads to spread the networks over (default: all cores).
    on_epoch : callable, optional
        ``on_epoch(index, config, record)`` after each epoch of each network.
    on_done : callable, optional
        ``on_done(index, config, net, history)`` after each network.

    Returns
    -------
    list of History
        Each header also holds ``"run"`` (the config), ``"wall_seconds"``
        (construction, training and evaluation of its group of networks
        trained together), ``"trained_together"`` (the group's size),
        ``"warnings"`` (e.g. the :class:`~fastnet.network.SymmetryWarning` of
        zero-initialized networks) and ``"distinct_hidden_neurons"`` (per
        hidden layer, after training).
    """
    from fastnet import many

    configs = list(configs)
    for c in configs:
        if not isinstance(c, RunConfig):
            raise TypeError(f"configs must hold RunConfig objects, got {type(c).__name__}")
    monitors = {}
    if evaluation_data is not None:
        monitors = {
            "monitor_evaluation_accuracy": monitor_evaluation_accuracy,
            "monitor_evaluation_cost": monitor_evaluation_cost,
        }
    groups = {}
    for i, c in enumerate(configs):
        groups.setdefault((np.dtype(c.dtype).name, c.epochs), []).append(i)
    cache = {}
    histories = [None] * len(configs)
    for (dtype, epochs), members in groups.items():
        t0 = time.perf_counter()
        nets = [configs[i].network() for i in members]
        trackers = [Tracker(net, track, track_inputs, threshold) if track else None for net in nets]
        initial = [t() if t is not None else None for t in trackers]

        def callback(k, record, members=members, trackers=trackers):
            if trackers[k] is not None:
                record.update(trackers[k]())
            if on_epoch is not None:
                on_epoch(members[k], configs[members[k]], record)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                group = many.train_many(
                    nets,
                    _as_dtype(data, np.dtype(dtype), cache),
                    epochs,
                    [configs[i].mini_batch_size for i in members],
                    [configs[i].eta for i in members],
                    [configs[i].lmbda for i in members],
                    evaluation_data=_as_dtype(evaluation_data, np.dtype(dtype), cache),
                    n_threads=n_threads,
                    callback=callback,
                    **monitors,
                )
            except DivergenceError as e:
                c = configs[members[e.network]]
                raise DivergenceError(
                    f"network {members[e.network]} ({c.init}, {list(c.sizes)}, seed {c.seed}): {e}",
                    e.epoch,
                    e.history,
                ) from e
        wall = time.perf_counter() - t0
        for k, i in enumerate(members):
            history, net = group[k], nets[k]
            history.header["run"] = configs[i].to_dict()
            history.header["wall_seconds"] = wall
            history.header["trained_together"] = len(members)
            history.header["warnings"] = (
                [{"category": "SymmetryWarning", "message": SYMMETRY_NOTE}]
                if net._symmetric and len(net.sizes) > 2
                else []
            )
            history.header["distinct_hidden_neurons"] = distinct_hidden_neurons(net)
            if trackers[k] is not None:
                history.header["track"] = {
                    "what": list(trackers[k].track),
                    "n_inputs": None if trackers[k].inputs is None else len(trackers[k].inputs),
                    "threshold": threshold,
                    "initial": initial[k],
                }
            histories[i] = history
            if on_done is not None:
                on_done(i, configs[i], net, history)
        # Recorded above; now passed on to the caller's warning filters.
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return histories


# ---------------------------------------------------------------- compare-init


def _n_classes(*datasets) -> int:
    return int(max(int(np.max(d[1])) for d in datasets if d is not None)) + 1


def compare_init(
    training_data,
    evaluation_data,
    *,
    inits=BOOK_INITS,
    hidden=BOOK_HIDDEN,
    seeds=1,
    seed=BOOK["seed"],
    epochs=BOOK["epochs"],
    mini_batch_size=BOOK["mini_batch"],
    eta=BOOK["eta"],
    lmbda=BOOK["lmbda"],
    cost=BOOK["cost"],
    activation=BOOK["activation"],
    dtype=DEFAULT_DTYPE.name,
    n_threads=None,
    on_epoch=None,
    on_done=None,
) -> dict:
    """The book's comparison of weight initializers, as a JSON-able dict.

    Trains ``[n_in, h, n_out]`` for every hidden size ``h`` in `hidden`, every
    initializer in `inits` and every seed in ``seed .. seed + seeds - 1``,
    recording the evaluation accuracy and cost after every epoch.

    Parameters
    ----------
    training_data, evaluation_data : (X, y)
        E.g. MNIST's training and validation splits.
    inits : sequence of str
        Registered initializer names (``zeros`` is allowed: its failure to
        learn is explained in ``notes``).
    hidden : sequence of int
        Hidden-layer sizes, one network each.
    seeds : int
        Number of seeds per (init, hidden size).
    seed : int
        First seed.
    epochs, mini_batch_size, eta, lmbda, cost, activation, dtype, n_threads
        Training settings, shared by every network.
    on_epoch, on_done : callable, optional
        Progress hooks, as for :func:`train_many`.

    Returns
    -------
    dict
        ``format``, ``format_version``, ``config``, ``versions``, ``started``,
        ``runs`` (one record per init, hidden size and seed: ``init``,
        ``hidden``, ``seed``, ``sizes``, per-epoch ``evaluation_accuracy``
        (fractions) and ``evaluation_cost``, per-epoch training
        ``epoch_seconds``, ``wall_seconds``, ``warnings``,
        ``distinct_hidden_neurons``) and ``notes`` (init -> explanation).
    """
    inits = [get_initializer(name, "inits").name for name in inits]
    hidden = [int(h) for h in hidden]
    if not inits or not hidden:
        raise ValueError("compare_init needs at least one initializer and one hidden size")
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden sizes must be >= 1, got {hidden}")
    if int(seeds) < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    seed_list = [int(seed) + k for k in range(int(seeds))]
    n_in = int(np.asarray(training_data[0]).shape[1])
    n_out = _n_classes(training_data, evaluation_data)
    configs = [
        RunConfig(
            (n_in, h, n_out),
            init=name,
            seed=s,
            cost=cost,
            activation=activation,
            dtype=np.dtype(dtype).name,
            epochs=epochs,
            mini_batch_size=mini_batch_size,
            eta=eta,
            lmbda=lmbda,
        )
        for h in hidden
        for name in inits
        for s in seed_list
    ]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with warnings.catch_warnings():
        # Expected for zeros/constant: recorded per run and explained in `notes`.
        warnings.simplefilter("ignore", SymmetryWarning)
        histories = train_many(
            configs,
            training_data,
            evaluation_data=evaluation_data,
            n_threads=n_threads,
            on_epoch=on_epoch,
            on_done=on_done,
        )
    runs = []
    notes = {}
    for config, h in zip(configs, histories, strict=True):
        symmetric = get_initializer(config.init).symmetric or any(
            w["category"] == "SymmetryWarning" for w in h.header["warnings"]
        )
        if symmetric:
            notes[config.init] = SYMMETRY_NOTE
        runs.append(
            {
                "init": config.init,
                "bias_init": h.header["config"]["bias_init"],
                "hidden": config.sizes[1],
                "seed": config.seed,
                "sizes": list(config.sizes),
                "evaluation_accuracy": h.evaluation_accuracy,
                "evaluation_cost": h.evaluation_cost,
                "epoch_seconds": [r["seconds"] for r in h.records],
                "wall_seconds": h.header["wall_seconds"],
                "warnings": h.header["warnings"],
                "distinct_hidden_neurons": h.header["distinct_hidden_neurons"],
            }
        )
    first = histories[0].header if histories else {}
    return {
        "format": COMPARE_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": {
            "inits": inits,
            "hidden": hidden,
            "seeds": seed_list,
            "epochs": epochs,
            "mini_batch_size": mini_batch_size,
            "eta": eta,
            "lmbda": lmbda,
            "cost": cost,
            "activation": activation,
            "dtype": np.dtype(dtype).name,
            "n_training": len(training_data[0]),
            "n_evaluation": len(evaluation_data[0]),
        },
        "versions": versions(),
        "threading_layer": first.get("threading_layer"),
        "n_threads": first.get("n_threads"),
        "started": started,
        "runs": runs,
        "notes": notes,
    }


def summarize(result: dict) -> dict:
    """Per (hidden, init): mean, spread and range of the accuracy (percent) over seeds.

    Returns
    -------
    dict
        ``(hidden, init) -> {"mean", "std", "min", "max": arrays over epochs,
        "n": seeds}``. ``std`` is the sample standard deviation (0 for one seed).
    """
    groups: dict = {}
    for run in result["runs"]:
        groups.setdefault((run["hidden"], run["init"]), []).append(run["evaluation_accuracy"])
    out = {}
    for key, curves in groups.items():
        length = min(len(c) for c in curves)
        acc = 100.0 * np.array([c[:length] for c in curves], dtype=np.float64).reshape(
            len(curves), length
        )
        out[key] = {
            "mean": acc.mean(axis=0),
            "std": acc.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length),
            "min": acc.min(axis=0),
            "max": acc.max(axis=0),
            "n": len(curves),
        }
    return out


def table_epochs(epochs: int, every: bool = False) -> list[int]:
    """Epochs shown in tables: all of them for short runs (or `every`), else
    1-5, then every fifth, and the last."""
    if every or epochs <= 10:
        return list(range(1, epochs + 1))
    shown = [e for e in range(1, epochs + 1) if e <= 5 or e % 5 == 0]
    if shown[-1] != epochs:
        shown.append(epochs)
    return shown


def _is_books_setup(cfg: dict) -> bool:
    return (
        cfg["epochs"] >= 30
        and cfg["mini_batch_size"] == BOOK["mini_batch"]
        and cfg["eta"] == BOOK["eta"]
        and cfg["lmbda"] == BOOK["lmbda"]
        and cfg["cost"] == BOOK["cost"]
        and cfg["activation"] == BOOK["activation"]
        and cfg["n_training"] == 50_000
    )


def format_table(result: dict, *, every: bool = False) -> str:
    """The per-epoch table of :func:`compare_init`: one row per epoch, one
    column per (hidden size, init), ``mean% ± std`` over seeds; then notes."""
    cfg = result["config"]
    stats = summarize(result)
    keys = [(h, i) for h in cfg["hidden"] for i in cfg["inits"] if (h, i) in stats]
    n_seeds = len(cfg["seeds"])
    cell_w = 16 if n_seeds > 1 else 9
    labels = [i + ("*" if i in result["notes"] else "") for _, i in keys]
    width = max([cell_w, *map(len, labels)])
    lines = []
    title = (
        f"Validation accuracy by epoch: [{result['runs'][0]['sizes'][0]}, hidden, "
        f"{result['runs'][0]['sizes'][-1]}], {cfg['epochs']} epochs, mini-batch "
        f"{cfg['mini_batch_size']}, eta {cfg['eta']:g}, lambda {cfg['lmbda']:g}, {cfg['cost']}, "
        f"{cfg['dtype']}, {cfg['n_training']} training images"
    )
    lines.append(title)
    if n_seeds > 1:
        lines.append(
            f"mean ± standard deviation over {n_seeds} seeds ({cfg['seeds'][0]}.."
            f"{cfg['seeds'][-1]})"
        )
    else:
        lines.append(f"seed {cfg['seeds'][0]}")
    lines.append("")
    head1 = f"{'hidden':>6}  " + "  ".join(f"{h:>{width}}" for h, _ in keys)
    head2 = f"{'epoch':>6}  " + "  ".join(f"{lab:>{width}}" for lab in labels)
    lines += [head1, head2, "-" * len(head2)]
    epochs = min(len(s["mean"]) for s in stats.values()) if stats else 0
    for e in table_epochs(epochs, every):
        cells = []
        for k in keys:
            s = stats[k]
            cell = f"{s['mean'][e - 1]:.2f}%"
            if s["n"] > 1:
                cell += f" ± {s['std'][e - 1]:.2f}"
            cells.append(f"{cell:>{width}}")
        lines.append(f"{e:>6}  " + "  ".join(cells))
    if _is_books_setup(cfg):
        book_keys = [k for k in keys if k in BOOK_RESULTS]
        if book_keys:
            lines.append("")
            lines.append("The book's run (network2, one seed), for comparison:")
            for e in (1, 30):
                cells = []
                for k in keys:
                    v = BOOK_RESULTS.get(k, {}).get(e)
                    cells.append(f"{(f'{v:.2f}%' if v is not None else ''):>{width}}")
                lines.append(f"{e:>6}  " + "  ".join(cells))
    for name, note in result["notes"].items():
        distinct = sorted(
            {
                d
                for run in result["runs"]
                if run["init"] == name
                for d in run["distinct_hidden_neurons"]
            }
        )
        lines.append("")
        lines.append(f"* {name}: {note}")
        if distinct:
            lines.append(
                f"  Measured: {', '.join(map(str, distinct))} distinct hidden neuron(s) after "
                "training."
            )
    return "\n".join(lines)


def plot_compare_init(result: dict, path) -> None:
    """A PNG like the book's: validation accuracy (%) by epoch, one line per
    initializer (the mean over seeds) with a min-max band across seeds, one
    panel per hidden size.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install "fastnet[plot]"``).
    """
    # The Agg canvas directly, not pyplot: no global backend switch, no display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    cfg = result["config"]
    stats = summarize(result)
    hidden = cfg["hidden"]
    fig = Figure(figsize=(5.2 * len(hidden), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(hidden), squeeze=False)[0]
    n_in = result["runs"][0]["sizes"][0]
    n_out = result["runs"][0]["sizes"][-1]
    for ax, h in zip(axes, hidden, strict=True):
        for name in cfg["inits"]:
            s = stats.get((h, name))
            if s is None:
                continue
            x = np.arange(1, len(s["mean"]) + 1)
            label = f"{name} (n={s['n']})" if s["n"] > 1 else name
            (line,) = ax.plot(x, s["mean"], label=label, linewidth=1.5)
            if s["n"] > 1:
                ax.fill_between(x, s["min"], s["max"], color=line.get_color(), alpha=0.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"[{n_in}, {h}, {n_out}]")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    band = " (band: min-max over seeds)" if len(cfg["seeds"]) > 1 else ""
    fig.suptitle(
        f"Weight initialization, eta {cfg['eta']:g}, lambda {cfg['lmbda']:g}, "
        f"mini-batch {cfg['mini_batch_size']}{band}",
        fontsize="medium",
    )
    fig.savefig(path, dpi=90)


# ---------------------------------------------------------------- decay report


def predicted_decay(eta, lmbda, n, m) -> dict:
    """Weight decay per epoch from the L2 term alone (the chapter's problem).

    Every mini-batch step multiplies each weight by ``1 - eta*lmbda/n`` (n the
    training-set size); an epoch has ``ceil(n/m)`` steps, so pure decay shrinks
    the weights by ``(1 - eta*lmbda/n)**ceil(n/m)`` per epoch, which is about
    ``exp(-eta*lmbda/m)`` when ``eta*lmbda << n``.

    Returns
    -------
    dict
        ``per_step``, ``steps``, ``exact`` (the product over an epoch) and
        ``approx`` (``exp(-eta*lmbda/m)``).
    """
    per_step = 1.0 - eta * lmbda / n
    steps = math.ceil(n / m)
    return {
        "per_step": per_step,
        "steps": steps,
        "exact": per_step**steps,
        "approx": math.exp(-eta * lmbda / m),
    }


def _ratio(a: float, b: float) -> float | None:
    """``a / b``, or None when `b` is 0 (e.g. the RMS of zero weights)."""
    return None if b == 0 else a / b


def _rate_ratio(factor: float | None, predicted: float) -> float | None:
    """``log(factor) / log(predicted)``: 1 for pure decay, 0 for no shrinking,
    negative when the weights grow; None when undefined."""
    if factor is None or factor <= 0 or not 0.0 < predicted < 1.0:
        return None
    return math.log(factor) / math.log(predicted)


def _phases(ratios: list[float]) -> dict:
    """Epochs where decay dominates / tails off / has stopped (see the thresholds)."""
    dominates = 0
    for k, r in enumerate(ratios, 1):
        if r is not None and r >= DECAY_DOMINATES:
            dominates = k
        else:
            break
    tails = next(
        (k for k, r in enumerate(ratios, 1) if r is not None and r < DECAY_TAILS_OFF), None
    )
    stopped = next(
        (k for k, r in enumerate(ratios, 1) if r is not None and r < DECAY_STOPPED), None
    )
    return {"dominates_until": dominates, "tails_off_at": tails, "stopped_at": stopped}


def decay_report(
    training_data,
    evaluation_data=None,
    *,
    hidden=30,
    init="large",
    seed=BOOK["seed"],
    epochs=60,
    mini_batch_size=BOOK["mini_batch"],
    eta=BOOK["eta"],
    lmbda=BOOK["lmbda"],
    cost=BOOK["cost"],
    activation=BOOK["activation"],
    dtype=DEFAULT_DTYPE.name,
    n_threads=None,
    on_epoch=None,
) -> dict:
    """Measure the L2 weight decay of the chapter's problem on one network.

    Trains ``[n_in, hidden, n_out]`` from `init`, recording the RMS of the
    weights (per layer and overall) before training and after every epoch,
    and compares the measured per-epoch shrink factor with pure decay.

    Returns
    -------
    dict
        ``format``, ``config``, ``predicted`` (see :func:`predicted_decay`),
        ``n_weights``, ``inv_sqrt_n_weights`` (``1/sqrt(n_weights)``, the
        chapter's estimate of where decay tails off), ``inv_sqrt_n_in`` (per
        layer: the ``default`` init's weight scale), ``epochs`` (one record per
        epoch from 0: ``weight_rms`` per layer, ``weight_rms_all``, measured
        ``factor``/``factor_layers`` and ``rate_ratio``/``rate_ratio_layers``
        = log(measured)/log(predicted), ``evaluation_accuracy``), and
        ``phases`` (overall and per layer: the last epoch through which decay
        dominates, rate ratio >= 0.9, the first where it tails off, < 0.5, and
        the first where it has stopped, < 0.1, with the RMS there).
    """
    if not lmbda > 0:
        raise ValueError(f"the decay report needs lmbda > 0 (L2 decay), got {lmbda!r}")
    n_in = int(np.asarray(training_data[0]).shape[1])
    n_out = _n_classes(training_data, evaluation_data)
    config = RunConfig(
        (n_in, int(hidden), n_out),
        init=get_initializer(init, "init").name,
        seed=seed,
        cost=cost,
        activation=activation,
        dtype=np.dtype(dtype).name,
        epochs=epochs,
        mini_batch_size=mini_batch_size,
        eta=eta,
        lmbda=lmbda,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SymmetryWarning)  # recorded, and noted below
        (history,) = train_many(
            [config],
            training_data,
            evaluation_data=evaluation_data,
            monitor_evaluation_cost=False,
            track=("weights",),
            n_threads=n_threads,
            on_epoch=on_epoch,
        )
    notes = []
    if any(w["category"] == "SymmetryWarning" for w in history.header["warnings"]):
        notes.append(f"{config.init}: {SYMMETRY_NOTE}")
    n = len(training_data[0])
    pred = predicted_decay(eta, lmbda, n, mini_batch_size)
    p = pred["exact"]
    initial = history.header["track"]["initial"]
    rows = [
        {
            "epoch": 0,
            "weight_rms": initial["weight_rms"],
            "weight_rms_all": initial["weight_rms_all"],
        }
    ]
    for r in history.records:
        prev = rows[-1]
        factor = _ratio(r["weight_rms_all"], prev["weight_rms_all"])
        factors = [_ratio(a, b) for a, b in zip(r["weight_rms"], prev["weight_rms"], strict=True)]
        row = {
            "epoch": r["epoch"],
            "weight_rms": r["weight_rms"],
            "weight_rms_all": r["weight_rms_all"],
            "factor": factor,
            "factor_layers": factors,
            "rate_ratio": _rate_ratio(factor, p),
            "rate_ratio_layers": [_rate_ratio(f, p) for f in factors],
        }
        if "evaluation_accuracy" in r:
            row["evaluation_accuracy"] = r["evaluation_accuracy"]
        rows.append(row)
    epochs_rows = rows[1:]

    def phases(ratios, rms):
        ph = _phases(ratios)
        at = {
            "dominates_rms": ph["dominates_until"],
            "tails_off_rms": ph["tails_off_at"],
            "stopped_rms": ph["stopped_at"],
        }
        ph.update({key: rms[k] if k else None for key, k in at.items()})
        ph["start_rms"], ph["end_rms"] = rms[0], rms[-1]
        return ph

    rms_all = [row["weight_rms_all"] for row in rows]
    n_layers = len(config.sizes) - 1
    layer_phases = [
        phases(
            [row["rate_ratio_layers"][layer] for row in epochs_rows],
            [row["weight_rms"][layer] for row in rows],
        )
        for layer in range(n_layers)
    ]
    n_weights = sum(a * b for a, b in zip(config.sizes[:-1], config.sizes[1:], strict=True))
    return {
        "format": DECAY_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": {**config.to_dict(), "n_training": n},
        "versions": versions(),
        "predicted": pred,
        "n_weights": n_weights,
        "n_weights_layers": [
            a * b for a, b in zip(config.sizes[:-1], config.sizes[1:], strict=True)
        ],
        "inv_sqrt_n_weights": 1.0 / math.sqrt(n_weights),
        "inv_sqrt_n_in": [1.0 / math.sqrt(a) for a in config.sizes[:-1]],
        "thresholds": {
            "dominates": DECAY_DOMINATES,
            "tails_off": DECAY_TAILS_OFF,
            "stopped": DECAY_STOPPED,
        },
        "epochs": rows,
        "phases": {
            "all": phases([row["rate_ratio"] for row in epochs_rows], rms_all),
            "layers": layer_phases,
        },
        "wall_seconds": history.header["wall_seconds"],
        "notes": notes,
    }


def _num(v, width, digits) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def format_decay_table(report: dict, *, every: bool = False) -> str:
    """The decay report as text: per-epoch RMS, measured and predicted factors."""
    cfg = report["config"]
    pred = report["predicted"]
    n_layers = len(cfg["sizes"]) - 1
    lines = [
        f"L2 weight decay: {cfg['sizes']}, init {cfg['init']}, eta {cfg['eta']:g}, lambda "
        f"{cfg['lmbda']:g}, mini-batch m={cfg['mini_batch_size']}, n={cfg['n_training']} "
        f"training images, {cfg['dtype']}, seed {cfg['seed']}",
        f"predicted per-epoch factor from decay alone: (1 - eta*lambda/n)^ceil(n/m) = "
        f"{pred['exact']:.6f};  exp(-eta*lambda/m) = {pred['approx']:.6f}",
        "ratio = log(measured factor) / log(predicted): 1 = pure decay, 0 = no shrinking",
        "",
    ]
    head = f"{'epoch':>5}  {'RMS all':>8}  {'factor':>7}  {'ratio':>6}"
    for layer in range(1, n_layers + 1):
        head += f"  {f'RMS w{layer}':>8}  {f'factor{layer}':>7}  {f'ratio{layer}':>6}"
    head += f"  {'val acc':>7}"
    lines += [head, "-" * len(head)]
    rows = report["epochs"]
    shown = set(table_epochs(len(rows) - 1, every))
    if not every and len(rows) - 1 > 10:
        shown |= set(range(1, 11))
    for row in rows:
        if row["epoch"] != 0 and row["epoch"] not in shown:
            continue
        if row["epoch"] == 0:
            line = f"{0:>5}  {row['weight_rms_all']:>8.4f}  {'':>7}  {'':>6}"
            for layer in range(n_layers):
                line += f"  {row['weight_rms'][layer]:>8.4f}  {'':>7}  {'':>6}"
            lines.append(line + f"  {'':>7}")
            continue
        line = f"{row['epoch']:>5}  {row['weight_rms_all']:>8.4f}  {_num(row['factor'], 7, 4)}  "
        line += _num(row["rate_ratio"], 6, 2)
        for layer in range(n_layers):
            line += (
                f"  {row['weight_rms'][layer]:>8.4f}  {_num(row['factor_layers'][layer], 7, 4)}  "
                f"{_num(row['rate_ratio_layers'][layer], 6, 2)}"
            )
        acc = row.get("evaluation_accuracy")
        lines.append(line + (f"  {100 * acc:>6.2f}%" if acc is not None else f"  {'':>7}"))
    lines.append("")

    def describe(name, ph):
        if ph["dominates_until"]:
            parts = [
                f"{name}: decay dominates (ratio >= {DECAY_DOMINATES}) through epoch "
                f"{ph['dominates_until']} (RMS {ph['dominates_rms']:.4f})"
            ]
        else:
            first, last = ph["start_rms"], ph["end_rms"]
            trend = "grow" if last > first else "shrink"
            return (
                f"{name}: decay does not dominate (ratio < {DECAY_DOMINATES} in epoch 1); the "
                f"weights {trend} from RMS {first:.4f} to {last:.4f}"
            )
        if ph["tails_off_at"]:
            parts.append(
                f"tails off (ratio < {DECAY_TAILS_OFF}) at epoch {ph['tails_off_at']} "
                f"(RMS {ph['tails_off_rms']:.4f})"
            )
        else:
            parts.append(f"does not tail off (ratio < {DECAY_TAILS_OFF}) within the run")
        if ph["stopped_at"]:
            parts.append(
                f"stops (ratio < {DECAY_STOPPED}) at epoch {ph['stopped_at']} "
                f"(RMS {ph['stopped_rms']:.4f})"
            )
        return "; ".join(parts)

    lines.append(describe("all weights", report["phases"]["all"]))
    for layer, ph in enumerate(report["phases"]["layers"], 1):
        lines.append(
            describe(f"layer {layer} ({report['n_weights_layers'][layer - 1]} weights)", ph)
        )
    final = rows[-1]["weight_rms_all"]
    lines.append(
        f"1/sqrt(n_weights) = 1/sqrt({report['n_weights']}) = "
        f"{report['inv_sqrt_n_weights']:.4f}; RMS of all weights after epoch "
        f"{rows[-1]['epoch']} = {final:.4f} = {final / report['inv_sqrt_n_weights']:.1f} x "
        "1/sqrt(n_weights)"
    )
    lines.append(
        "for scale: the default init draws layer l's weights with RMS 1/sqrt(n_in) = "
        + ", ".join(f"{v:.4f}" for v in report["inv_sqrt_n_in"])
    )
    lines += [f"note: {note}" for note in report.get("notes", [])]
    return "\n".join(lines)


def plot_decay_report(report: dict, path) -> None:
    """A PNG of the weight RMS by epoch (log scale), per layer and overall, with
    pure decay from the start and the 1/sqrt(n_weights) line.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = report["epochs"]
    x = np.array([r["epoch"] for r in rows])
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.semilogy(x, [r["weight_rms_all"] for r in rows], label="all weights", linewidth=2)
    for layer in range(len(rows[0]["weight_rms"])):
        ax.semilogy(
            x, [r["weight_rms"][layer] for r in rows], label=f"layer {layer + 1}", linewidth=1
        )
    pure = rows[0]["weight_rms_all"] * report["predicted"]["exact"] ** x
    ax.semilogy(x, pure, "k--", linewidth=1, label="pure decay exp(-eta*lambda/m) per epoch")
    ax.axhline(report["inv_sqrt_n_weights"], color="grey", linestyle=":", label="1/sqrt(n_weights)")
    cfg = report["config"]
    ax.set_title(
        f"{cfg['sizes']}, init {cfg['init']}, eta {cfg['eta']:g}, lambda "
        f"{cfg['lmbda']:g}, m {cfg['mini_batch_size']}",
        fontsize="medium",
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel("weight RMS")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=90)
