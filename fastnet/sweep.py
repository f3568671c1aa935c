"""Hyperparameter sweeps on Dask distributed.

A sweep is a grid of training runs (initializers x hidden sizes x seeds x eta
x lambda, with fixed epochs, mini-batch size, dtype, cost and activation). Each
run is one Dask task that trains one network on MNIST and returns its history
as plain data; the client appends each result to a JSON lines file as soon as
the task finishes, so an interrupted sweep loses only the runs in flight and a
rerun with the same file skips every run already recorded.

Data: tasks get the *path* of the MNIST data, not the arrays. Each worker
process loads the data on its first task and keeps it for the next ones, so a
sweep reads the files once per worker (about 2 s) instead of shipping 150-300
MB per worker through the scheduler; and a worker that dies and is restarted
simply loads them again, whereas scattered arrays would be lost with it. On a
remote cluster the path must be valid on the workers (or omitted, so that each
worker finds MNIST itself through ``$FASTNET_DATA`` or its cache).

Threads: the default cluster is a ``LocalCluster`` with one single-threaded
worker process per core whose environment has ``NUMBA_NUM_THREADS=1``, so
``cores`` networks train at once with one thread each (no oversubscription).
Start remote workers the same way (``NUMBA_NUM_THREADS=1 dask worker ...
--nthreads 1``), or pass ``threads=`` to set the thread count of every task.

Dask is optional (``pip install "fastnet[dask]"``): this module imports it
only when a sweep runs; the grid and summary helpers work without it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastnet._config import BOOK
from fastnet._validation import check_choice, check_dtype, check_number
from fastnet.kernels.codes import COSTS, HIDDEN_ACTIVATIONS

__all__ = [
    "DASK_HINT",
    "GRID_KEYS",
    "DaskMissingError",
    "RunConfig",
    "SweepReport",
    "finished",
    "format_summary",
    "local_cluster",
    "load_grid",
    "make_grid",
    "read_results",
    "require_dask",
    "run_config",
    "run_sweep",
    "summarize",
]

#: How to install the optional dependency.
DASK_HINT = 'pip install "fastnet[dask]"'

#: Keys a grid file (TOML or JSON) may hold; the arguments of :func:`make_grid`.
GRID_KEYS = (
    "inits",
    "hidden",
    "seeds",
    "seed",
    "eta",
    "lmbda",
    "epochs",
    "batch_size",
    "dtype",
    "cost",
    "activation",
    "limit",
)

#: Result statuses that count as finished (skipped on resume). A diverged run
#: is a result too: it would diverge again, bit for bit.
DONE = ("ok", "diverged")


class DaskMissingError(ImportError):
    """Dask distributed is not installed."""


def require_dask():
    """Import and return ``distributed``, or raise :class:`DaskMissingError`
    with the install hint."""
    try:
        import distributed
    except ImportError:
        raise DaskMissingError(
            f"sweeps run on Dask distributed, which is not installed; install it with: {DASK_HINT}"
        ) from None
    return distributed


# ----------------------------------------------------------------- the grid


@dataclass(frozen=True)
class RunConfig:
    """One training run of a sweep: a network ``[784, *hidden, 10]`` trained
    on the first `limit` MNIST training images (all if None) and evaluated on
    the 10,000 validation images after every epoch."""

    init: str
    hidden: tuple[int, ...]
    seed: int
    eta: float
    lmbda: float
    epochs: int
    batch_size: int
    dtype: str = "float64"
    cost: str = "cross_entropy"
    activation: str = "sigmoid"
    limit: int | None = None

    @property
    def key(self) -> str:
        """A stable string naming every setting that changes the result
        (thread counts do not: results are identical for any of them)."""
        hidden = "x".join(str(h) for h in self.hidden) or "none"
        return (
            f"init={self.init},hidden={hidden},seed={self.seed},eta={self.eta!r},"
            f"lmbda={self.lmbda!r},epochs={self.epochs},batch_size={self.batch_size},"
            f"dtype={self.dtype},cost={self.cost},activation={self.activation},"
            f"limit={self.limit if self.limit is not None else 'all'}"
        )

    @property
    def sizes(self) -> list[int]:
        return [784, *self.hidden, 10]

    def to_dict(self) -> dict:
        return {
            "init": self.init,
            "hidden": list(self.hidden),
            "seed": self.seed,
            "eta": self.eta,
            "lmbda": self.lmbda,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "cost": self.cost,
            "activation": self.activation,
            "limit": self.limit,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        return cls(**{**d, "hidden": tuple(d["hidden"])})


def _as_list(value, name) -> list:
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"{name} must not be empty")
        return list(value)
    return [value]


def _hidden(value) -> tuple[int, ...]:
    """A hidden-layer spec: 30, [100, 30] or "100x30"."""
    if isinstance(value, str):
        try:
            value = [int(s) for s in value.split("x")] if value.strip() else []
        except ValueError:
            raise ValueError(f"hidden: expected sizes like 30 or 100x30, got {value!r}") from None
    layers = value if isinstance(value, list | tuple) else [value]
    for h in layers:
        check_number(h, "hidden", low=1, integer=True)
    return tuple(int(h) for h in layers)


def make_grid(
    inits=("default",),
    hidden=(30,),
    seeds=1,
    seed=BOOK["seed"],
    eta=(BOOK["eta"],),
    lmbda=(BOOK["lmbda"],),
    epochs=BOOK["epochs"],
    batch_size=BOOK["mini_batch"],
    dtype="float64",
    cost=BOOK["cost"],
    activation=BOOK["activation"],
    limit=None,
) -> list[RunConfig]:
    """Every combination of initializer, hidden layers, seed, eta and lambda.

    Parameters
    ----------
    inits : str or sequence of str
        Initializer names (:data:`fastnet.INITIALIZERS`).
    hidden : int, str or sequence
        Hidden layers per network: each entry is a width (one hidden layer),
        a list of widths, or a string like ``"100x30"``.
    seeds : int or sequence of int
        A count (seeds ``seed .. seed + seeds - 1``) or the seeds themselves.
    seed : int
        First seed when `seeds` is a count (default: the book's 12345).
    eta, lmbda : float or sequence of float
    epochs, batch_size : int
    dtype, cost, activation : str
    limit : int, optional
        Train on the first `limit` training images only.

    Returns
    -------
    list of RunConfig
        In grid order (init, hidden, seed, eta, lambda), without duplicates.

    Raises
    ------
    TypeError, ValueError
        Naming the bad entry.
    """
    from fastnet.init import get_initializer

    init_list = [get_initializer(name, "inits").name for name in _as_list(inits, "inits")]
    hidden_list = [_hidden(h) for h in _as_list(hidden, "hidden")]
    if isinstance(seeds, list | tuple):
        seed_list = [check_number(s, "seeds", integer=True) for s in _as_list(seeds, "seeds")]
    else:
        count = check_number(seeds, "seeds", low=1, integer=True)
        first = check_number(seed, "seed", integer=True)
        seed_list = list(range(first, first + count))
    eta_list = [check_number(v, "eta", low=0, low_open=True) for v in _as_list(eta, "eta")]
    lmbda_list = [check_number(v, "lmbda", low=0) for v in _as_list(lmbda, "lmbda")]
    common = {
        "epochs": check_number(epochs, "epochs", low=1, integer=True),
        "batch_size": check_number(batch_size, "batch_size", low=1, integer=True),
        "dtype": check_dtype(dtype).name,
        "cost": check_choice(cost, COSTS, "cost", "cost"),
        "activation": check_choice(activation, HIDDEN_ACTIVATIONS, "activation", "activation"),
        "limit": None if limit is None else check_number(limit, "limit", low=1, integer=True),
    }
    configs = [
        RunConfig(init=i, hidden=h, seed=s, eta=e, lmbda=la, **common)
        for i, h, s, e, la in itertools.product(
            init_list, hidden_list, seed_list, eta_list, lmbda_list
        )
    ]
    return list(dict.fromkeys(configs))


def load_grid(path) -> dict:
    """Read a grid file: TOML (``.toml``) or JSON (anything else).

    The file holds keys of :data:`GRID_KEYS`, e.g.::

        inits = ["default", "large"]
        hidden = [30, 100]
        seeds = 2
        eta = 0.1
        lmbda = [5.0]
        epochs = 30

    Returns
    -------
    dict
        Keyword arguments for :func:`make_grid`.

    Raises
    ------
    ValueError
        On a syntax error or an unknown key, naming the file.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            with open(path, "rb") as f:
                grid = tomllib.load(f)
        else:
            with open(path, encoding="utf-8") as f:
                grid = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:  # TOMLDecodeError, JSONDecodeError
        raise ValueError(f"{path}: cannot read the grid ({e})") from None
    if not isinstance(grid, dict):
        raise ValueError(f"{path}: a grid file must hold a table of keys, not {type(grid)}")
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(
            f"{path}: unknown grid key(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(GRID_KEYS)}"
        )
    return grid


# --------------------------------------------------------------- the task

#: The data set of this (worker) process: ``(path, dtype, trust) -> (training,
#: validation)``. One entry: a sweep uses one dtype.
_DATA: dict = {}


def _mnist(data_dir, dtype: np.dtype, trust_data: bool):
    key = (None if data_dir is None else str(data_dir), dtype.name, trust_data)
    if key not in _DATA:
        from fastnet.data import load_mnist

        _DATA.clear()
        # float32 holds the pixels k/256 exactly and loads faster; the
        # conversion to float64 is exact.
        data = load_mnist(data_dir, dtype=np.float32, trust_data=trust_data)
        _DATA[key] = tuple((np.ascontiguousarray(X, dtype=dtype), y) for X, y in data[:2])
    return _DATA[key]


def _sync_numba_env() -> None:
    """Make Numba see ``NUMBA_*`` variables set after it was imported.

    A Dask nanny sets its ``env`` (here ``NUMBA_NUM_THREADS=1``) in the worker
    process after multiprocessing has re-imported the client's main module;
    when that module imports fastnet (the ``fastnet`` console script does),
    Numba has read ``NUMBA_NUM_THREADS`` already. Numba re-reads its
    environment on each compilation, and refuses a new thread count once its
    thread pool runs, so it must re-read it now, before the first kernel call.
    """
    import numba

    try:
        numba.config.reload_config()
    except RuntimeError as e:  # the pool already runs with another count
        warnings.warn(f"fastnet sweep task: {e}", RuntimeWarning, stacklevel=2)


def run_config(config: dict, data_dir=None, trust_data=False, threads=None) -> dict:
    """Train one configuration; the task a sweep runs on each worker.

    Parameters
    ----------
    config : dict
        :meth:`RunConfig.to_dict` of the run.
    data_dir : str, optional
        Where MNIST is (as seen by this process); None: the usual search
        (``$FASTNET_DATA``, the repository's ``data/``, the user cache).
    trust_data : bool
        Passed to :func:`fastnet.data.load_mnist`.
    threads : int, optional
        Threads for the network; default ``NUMBA_NUM_THREADS`` of the worker.

    Returns
    -------
    dict
        ``key``, ``status`` (``"ok"`` or ``"diverged"``), ``config``, the
        history's ``header`` and ``records`` (validation accuracy and cost
        after each epoch), ``worker`` (host and pid) and ``task_seconds``
        (wall time of the task, data loading and JIT cache loading included).
    """
    t0 = time.perf_counter()
    _sync_numba_env()
    from fastnet.network import DivergenceError, Network

    cfg = RunConfig.from_dict(config)
    training, validation = _mnist(data_dir, np.dtype(cfg.dtype), trust_data)
    if cfg.limit is not None:
        training = (training[0][: cfg.limit], training[1][: cfg.limit])
    net = Network(
        cfg.sizes,
        cost=cfg.cost,
        activation=cfg.activation,
        dtype=cfg.dtype,
        init=cfg.init,
        seed=cfg.seed,
        n_threads=threads,
    )
    status, error = "ok", None
    try:
        history = net.train(
            training,
            cfg.epochs,
            cfg.batch_size,
            cfg.eta,
            cfg.lmbda,
            evaluation_data=validation,
            monitor_evaluation_accuracy=True,
            monitor_evaluation_cost=True,
        )
    except DivergenceError as e:
        status, error, history = "diverged", str(e), e.history
    result = {
        "key": cfg.key,
        "status": status,
        "config": cfg.to_dict(),
        "header": history.header,
        "records": history.records,
        "worker": {"host": socket.gethostname(), "pid": os.getpid()},
        "task_seconds": time.perf_counter() - t0,
    }
    if error is not None:
        result["error"] = error
    return result


# ------------------------------------------------------------ results file


def read_results(path) -> dict[str, dict]:
    """The results recorded in a sweep's JSON lines file, by key (the last
    line of a key wins). A missing file gives ``{}``; lines that are not JSON
    (a write cut off by a crash) are skipped with a warning."""
    path = Path(path)
    if not path.exists():
        return {}
    results = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = rec["key"]
            except (json.JSONDecodeError, KeyError, TypeError):
                warnings.warn(
                    f"{path}:{lineno}: skipping a line that is not a sweep result",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            results[key] = rec
    return results


def finished(path) -> dict[str, dict]:
    """The results in `path` that a sweep skips: status ``ok`` or ``diverged``."""
    return {k: r for k, r in read_results(path).items() if r.get("status") in DONE}


class _Appender:
    """Appends one JSON line per result, flushed and fsynced."""

    def __init__(self, path: Path):
        self._f = open(path, "ab+")  # noqa: SIM115 - closed in close()
        # A crash mid-write can leave a partial last line: start on a new one.
        end = self._f.seek(0, os.SEEK_END)
        if end > 0:
            self._f.seek(end - 1)
            if self._f.read(1) != b"\n":
                self._f.write(b"\n")

    def write(self, record: dict) -> None:
        self._f.write((json.dumps(record) + "\n").encode("utf-8"))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


# ------------------------------------------------------------------ sweeps


@dataclass
class SweepReport:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    out : Path
        The results file.
    results : list of dict
        One per configuration of the grid that has a result (``ok`` or
        ``diverged``), in grid order, from this run or an earlier one.
    n_configs : int
        Configurations in the grid.
    n_skipped : int
        Configurations already in `out`, not run again.
    n_submitted : int
        Tasks submitted to Dask by this call.
    failed : list of dict
        Results of tasks that raised (``status`` ``"error"``); they are
        recorded in `out` and run again by the next sweep.
    seconds : float
        Wall time of this call.
    address : str or None
        Scheduler address used, if any tasks were submitted.
    """

    out: Path
    results: list[dict]
    n_configs: int
    n_skipped: int
    n_submitted: int
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    address: str | None = None


def default_workers() -> int:
    """Cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _client(client, scheduler, n_workers):
    """The Dask client to use: `client`, one connected to `scheduler`, or a
    new LocalCluster of single-threaded worker processes with
    ``NUMBA_NUM_THREADS=1``."""
    distributed = require_dask()
    if client is not None:
        yield client
        return
    if scheduler is not None:
        with distributed.Client(scheduler) as c:
            yield c
        return
    n = default_workers() if n_workers is None else n_workers
    with (
        _environ_restored(),
        local_cluster(n) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def local_cluster(n_workers: int):
    """A Dask LocalCluster of `n_workers` single-threaded worker processes
    whose environment has ``NUMBA_NUM_THREADS=1``.

    No dashboard; the scheduler's HTTP endpoints (health, metrics) listen on
    a free port instead of 8787, so two sweeps at once do not collide (the
    second one warned "Port 8787 is already in use").

    The nannies set ``env`` in each worker process before it runs any task;
    :func:`run_config` makes Numba read it even if Numba was imported earlier.
    """
    distributed = require_dask()
    return distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        scheduler_kwargs={"dashboard": False},
        env={"NUMBA_NUM_THREADS": "1"},
    )


@contextlib.contextmanager
def _environ_restored():
    """Undo the changes Dask nannies make to this process's environment.

    A nanny sets ``distributed.nanny.pre-spawn-environ`` (``OMP_NUM_THREADS=1``
    and others) in its own process before starting a worker; for a
    LocalCluster that is the caller's process.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update(saved)


def run_sweep(
    configs: Iterable[RunConfig],
    out,
    *,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    data_dir=None,
    trust_data: bool = False,
    threads: int | None = None,
    on_result: Callable[[dict, int, int], None] | None = None,
) -> SweepReport:
    """Run every configuration not yet in `out` on Dask, appending each result
    to `out` as its task finishes.

    Parameters
    ----------
    configs : iterable of RunConfig
        The grid (see :func:`make_grid`).
    out : str or Path
        JSON lines results file; created if missing, appended to otherwise.
        Configurations whose key it already holds (status ``ok`` or
        ``diverged``) are skipped.
    client : distributed.Client, optional
        Use this client (and its cluster).
    scheduler : str, optional
        Else connect to this scheduler (``tcp://HOST:PORT``).
    n_workers : int, optional
        Else start a LocalCluster of this many single-threaded worker
        processes (default: one per core), with ``NUMBA_NUM_THREADS=1``.
    data_dir : str or Path, optional
        MNIST location passed to the tasks (as seen by the workers).
    trust_data : bool
        Passed to :func:`fastnet.data.load_mnist` in the workers.
    threads : int, optional
        Thread count of each task's network; default: the worker's
        ``NUMBA_NUM_THREADS``.
    on_result : callable, optional
        Called as ``on_result(result, n_done, n_submitted)`` in this process
        after each result is written.

    Returns
    -------
    SweepReport
        No cluster is started, and nothing submitted, when every
        configuration is already in `out`.
    """
    t0 = time.perf_counter()
    configs = list(dict.fromkeys(configs))
    out = Path(out)
    done = finished(out)
    todo = [c for c in configs if c.key not in done]
    failed = []
    address = None
    if todo:
        data_dir = None if data_dir is None else str(data_dir)
        distributed = require_dask()
        writer = _Appender(out)
        try:
            with _client(client, scheduler, n_workers) as c:
                address = c.scheduler.address
                futures = [
                    c.submit(
                        run_config,
                        cfg.to_dict(),
                        data_dir,
                        trust_data,
                        threads,
                        key=f"fastnet-sweep-{cfg.key}",
                    )
                    for cfg in todo
                ]
                by_future = dict(zip(futures, todo, strict=True))
                try:
                    for n_done, fut in enumerate(
                        distributed.as_completed(futures, raise_errors=False), 1
                    ):
                        cfg = by_future[fut]
                        try:
                            result = fut.result()
                        except Exception as e:
                            result = {
                                "key": cfg.key,
                                "status": "error",
                                "config": cfg.to_dict(),
                                "error": f"{type(e).__name__}: {e}",
                            }
                            failed.append(result)
                        else:
                            done[result["key"]] = result
                        writer.write(result)
                        fut.release()
                        if on_result is not None:
                            on_result(result, n_done, len(todo))
                finally:
                    # Interrupted (Ctrl-C) or failed: stop what is still queued;
                    # every finished result is in `out` already.
                    c.cancel([f for f in futures if not f.done()])
        finally:
            writer.close()
    return SweepReport(
        out=out,
        results=[done[c.key] for c in configs if c.key in done],
        n_configs=len(configs),
        n_skipped=len(configs) - len(todo),
        n_submitted=len(todo),
        failed=failed,
        seconds=time.perf_counter() - t0,
        address=address,
    )


# ------------------------------------------------------------------ summary


def epochs_to(accuracies: Sequence[float], target: float) -> int | None:
    """First epoch (1-based) whose accuracy reaches `target`, else None."""
    for epoch, acc in enumerate(accuracies, 1):
        if acc >= target:
            return epoch
    return None


def summarize(results: Iterable[dict], targets=(0.95, 0.96)) -> list[dict]:
    """One row per run, best final validation accuracy first.

    Each row: ``key``, ``config``, ``status``, ``epochs`` (trained),
    ``final`` and ``best`` validation accuracy (fractions; None without any
    epoch), ``epochs_to`` (target -> first epoch reaching it, or None) and
    ``train_seconds`` (training time summed over epochs).
    """
    rows = []
    for r in results:
        acc = [rec["evaluation_accuracy"] for rec in r.get("records", [])]
        rows.append(
            {
                "key": r["key"],
                "config": r["config"],
                "status": r.get("status", "ok"),
                "epochs": len(acc),
                "final": acc[-1] if acc else None,
                "best": max(acc) if acc else None,
                "epochs_to": {t: epochs_to(acc, t) for t in targets},
                "train_seconds": sum(rec["seconds"] for rec in r.get("records", [])),
            }
        )
    rows.sort(key=lambda row: -1.0 if row["final"] is None else row["final"], reverse=True)
    return rows


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _hidden_text(hidden) -> str:
    return "x".join(str(h) for h in hidden) or "none"


def format_summary(rows: list[dict], targets=(0.95, 0.96), top: int | None = 20) -> str:
    """The summary table: the best runs, then each setting averaged over seeds."""
    if not rows:
        return "no results"
    shown = rows if top is None or top <= 0 else rows[:top]
    tcols = [f"ep>={100 * t:g}%" for t in targets]
    head = ["#", "init", "hidden", "seed", "eta", "lmbda", "final", "best", *tcols, "train s"]
    table = []
    for rank, row in enumerate(shown, 1):
        c = row["config"]
        final = _pct(row["final"]) + ("" if row["status"] == "ok" else f" ({row['status']})")
        table.append(
            [
                str(rank),
                c["init"],
                _hidden_text(c["hidden"]),
                str(c["seed"]),
                f"{c['eta']:g}",
                f"{c['lmbda']:g}",
                final,
                _pct(row["best"]),
                *(
                    "-" if row["epochs_to"][t] is None else str(row["epochs_to"][t])
                    for t in targets
                ),
                f"{row['train_seconds']:.1f}",
            ]
        )
    c0 = rows[0]["config"]
    lines = [
        f"Runs by final validation accuracy ({len(shown)} of {len(rows)}; {c0['epochs']} "
        f"epochs, mini-batch {c0['batch_size']}, {c0['dtype']}, "
        f"{'all' if c0['limit'] is None else c0['limit']} training images; "
        f"ep>=X%: first epoch reaching X%):",
        *_columns([head, *table], left=3),
    ]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        c = row["config"]
        groups.setdefault((c["init"], _hidden_text(c["hidden"]), c["eta"], c["lmbda"]), []).append(
            row
        )
    if any(len(g) > 1 for g in groups.values()):
        head = ["init", "hidden", "eta", "lmbda", "seeds", "mean final", "min", "max", *tcols]
        table = []
        for (init, hidden, eta, lmbda), g in sorted(
            groups.items(), key=lambda kv: -_mean([r["final"] for r in kv[1]])
        ):
            finals = [r["final"] for r in g if r["final"] is not None]
            cells = []
            for t in targets:
                reached = [r["epochs_to"][t] for r in g if r["epochs_to"][t] is not None]
                cells.append(
                    f"{sum(reached) / len(reached):.1f} ({len(reached)}/{len(g)})"
                    if reached
                    else f"- (0/{len(g)})"
                )
            table.append(
                [
                    init,
                    hidden,
                    f"{eta:g}",
                    f"{lmbda:g}",
                    str(len(g)),
                    _pct(_mean(finals) if finals else None),
                    _pct(min(finals) if finals else None),
                    _pct(max(finals) if finals else None),
                    *cells,
                ]
            )
        lines += [
            "",
            "Per setting over seeds (epochs to accuracy: mean over the seeds reaching it):",
            *_columns([head, *table], left=2),
        ]
    return "\n".join(lines)


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else -math.inf


def _columns(table: list[list[str]], left: int) -> list[str]:
    """Aligned rows: the first `left` columns (names) flush left, numbers right."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    ]
