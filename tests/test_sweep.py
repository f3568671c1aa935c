"""Tests for fastnet.sweep and ``python -m fastnet sweep``: the grid, the
results file and resuming, the summary, thread control in workers, and sweeps
on Dask LocalClusters (including one that loses a worker mid-sweep)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import pytest

from fastnet import cli, sweep
from fastnet.sweep import RunConfig, make_grid, read_results, run_sweep

HAVE_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="needs dask[distributed]")

#: The sweep of the CLI test: 2 inits x 2 hidden sizes x 2 seeds, 1 epoch on
#: the first 2000 training images (evaluated on all 10,000 validation images).
SMALL = [
    "--inits", "default,large", "--hidden", "30,100", "--seeds", "2",
    "--epochs", "1", "--limit", "2000",
]  # fmt: skip


def run_cli(*argv):
    """``python -m fastnet`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def environ_restored():
    # Dask nannies set OMP_NUM_THREADS=1 and friends in their own process (here:
    # pytest's); keep them from leaking into other tests' subprocesses.
    with sweep._environ_restored():
        yield


# ----------------------------------------------------------------- the grid


def test_make_grid_product_and_keys():
    grid = make_grid(inits="default,large".split(","), hidden=[30, "100x30"], seeds=2, seed=7)
    assert len(grid) == 2 * 2 * 2
    assert [(c.init, c.hidden, c.seed) for c in grid[:3]] == [
        ("default", (30,), 7),
        ("default", (30,), 8),
        ("default", (100, 30), 7),
    ]
    keys = [c.key for c in grid]
    assert len(set(keys)) == 8
    assert keys[2] == (
        "init=default,hidden=100x30,seed=7,eta=0.1,lmbda=5.0,epochs=30,batch_size=10,"
        "dtype=float64,cost=cross_entropy,activation=sigmoid,limit=all"
    )
    # Round trip through the plain dict a task receives.
    assert RunConfig.from_dict(json.loads(json.dumps(grid[2].to_dict()))) == grid[2]
    assert grid[2].sizes == [784, 100, 30, 10]


def test_make_grid_values():
    grid = make_grid(seeds=[3, 1, 3], eta=[0.1, 0.5], lmbda=5, epochs=2, limit=100)
    assert [(c.seed, c.eta) for c in grid] == [(3, 0.1), (3, 0.5), (1, 0.1), (1, 0.5)]
    assert all(c.lmbda == 5.0 and c.epochs == 2 and c.limit == 100 for c in grid)
    # An int and a float lambda name the same run.
    assert make_grid(lmbda=5)[0].key == make_grid(lmbda=5.0)[0].key
    for bad, exc in (
        ({"inits": ["nope"]}, ValueError),
        ({"hidden": [0]}, ValueError),
        ({"hidden": ["3x"]}, ValueError),
        ({"seeds": 0}, ValueError),
        ({"eta": [0.1, -1]}, ValueError),
        ({"epochs": 0}, ValueError),
        ({"dtype": "float16"}, ValueError),
        ({"inits": []}, ValueError),
        ({"limit": 1.5}, TypeError),
    ):
        with pytest.raises(exc):
            make_grid(**bad)


def test_grid_files_and_flags(tmp_path):
    toml = tmp_path / "grid.toml"
    toml.write_text(
        textwrap.dedent(
            """
            inits = ["default", "large"]
            hidden = [30, [100, 30]]
            seeds = 2
            eta = 0.5
            lmbda = [1.0, 5.0]
            epochs = 3
            """
        )
    )
    as_json = tmp_path / "grid.json"
    as_json.write_text(json.dumps(sweep.load_grid(toml)))
    for path in (toml, as_json):
        grid = make_grid(**sweep.load_grid(path))
        assert len(grid) == 2 * 2 * 2 * 2
        assert {c.hidden for c in grid} == {(30,), (100, 30)}
        assert {(c.eta, c.epochs) for c in grid} == {(0.5, 3)}
    # Flags given on the command line override the file; others keep it.
    from fastnet.cli_sweep import _grid_kwargs

    args = cli.build_parser().parse_args(["sweep", "--grid", str(toml), "--epochs", "1"])
    grid = make_grid(**_grid_kwargs(args))
    assert {c.epochs for c in grid} == {1} and len(grid) == 16
    args = cli.build_parser().parse_args(["sweep"])
    assert len(make_grid(**_grid_kwargs(args))) == 4  # default,large x 30,100 x 1 seed
    bad = tmp_path / "bad.toml"
    bad.write_text("inits = ['default']\nepoch = 3\n")
    with pytest.raises(ValueError, match="unknown grid key.*epoch"):
        sweep.load_grid(bad)
    bad.write_text("inits = [")
    with pytest.raises(ValueError, match="cannot read"):
        sweep.load_grid(bad)


# ------------------------------------------------------- results and summary


def fake_result(cfg, accuracies, status="ok"):
    return {
        "key": cfg.key,
        "status": status,
        "config": cfg.to_dict(),
        "header": {"n_threads": 1},
        "records": [
            {"epoch": i, "seconds": 0.5, "evaluation_accuracy": a}
            for i, a in enumerate(accuracies, 1)
        ],
        "worker": {"host": "h", "pid": 1},
        "task_seconds": 1.0,
    }


def test_summary_ranks_and_epochs_to_accuracy():
    a, b, c, d = make_grid(inits=["default", "large"], seeds=2, epochs=3)
    results = [
        fake_result(a, [0.94, 0.955, 0.962]),
        fake_result(b, [0.951, 0.949, 0.958]),
        fake_result(c, [0.90, 0.93, 0.94]),
        fake_result(d, [0.91], status="diverged"),
    ]
    rows = sweep.summarize(results)
    assert [r["key"] for r in rows] == [a.key, b.key, c.key, d.key]
    assert rows[0]["epochs_to"] == {0.95: 2, 0.96: 3}
    assert rows[1]["epochs_to"] == {0.95: 1, 0.96: None}
    assert rows[0]["train_seconds"] == 1.5
    text = sweep.format_summary(rows)
    lines = text.splitlines()
    assert "final" in lines[1] and "ep>=95%" in lines[1] and "ep>=96%" in lines[1]
    assert lines[2].split()[:8] == ["1", "default", "30", "12345", "0.1", "5", "96.20%", "96.20%"]
    assert "91.00% (diverged)" in text
    assert "Per setting over seeds" in text
    # default/30 over its 2 seeds: mean 96.0%, epochs to 95%: (2 + 1) / 2, both reached
    assert any(line.split()[:6] == ["default", "30", "0.1", "5", "2", "96.00%"] for line in lines)
    assert "1.5 (2/2)" in text and "3.0 (1/2)" in text
    assert sweep.epochs_to([0.5, 0.97], 0.96) == 2
    assert sweep.format_summary([]) == "no results"


def test_results_file_survives_a_torn_line(tmp_path):
    a, b = make_grid(seeds=2)
    out = tmp_path / "sweep.jsonl"
    out.write_text(json.dumps(fake_result(a, [0.9])) + "\n" + '{"key": "init=def')
    with pytest.warns(RuntimeWarning, match="not a sweep result"):
        assert list(read_results(out)) == [a.key]
    writer = sweep._Appender(out)
    writer.write(fake_result(b, [0.8]))
    writer.close()
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["key"] == b.key
    with pytest.warns(RuntimeWarning):
        assert list(read_results(out)) == [a.key, b.key]
    assert read_results(tmp_path / "missing.jsonl") == {}


def test_nothing_to_do_submits_nothing(tmp_path):
    grid = make_grid(seeds=2)
    out = tmp_path / "sweep.jsonl"
    out.write_text("".join(json.dumps(fake_result(c, [0.9])) + "\n" for c in grid))
    # No client, no scheduler: a cluster would be started if anything were left.
    report = run_sweep(grid, out, n_workers=1)
    assert (report.n_submitted, report.n_skipped, report.address) == (0, 2, None)
    assert [r["key"] for r in report.results] == [c.key for c in grid]


# ------------------------------------------------------------ without Dask


def test_sweep_without_dask_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    status, out, err = run_cli("sweep", "--out", tmp_path / "s.jsonl", "--epochs", "1")
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert 'pip install "fastnet[dask]"' in err
    assert not (tmp_path / "s.jsonl").exists()
    # Listing the runs needs no Dask.
    status, out, _ = run_cli("sweep", "--out", tmp_path / "s.jsonl", "--dry-run")
    assert status == 0 and out.count("todo  init=") == 4


# ------------------------------------------------------------------ threads


def test_numba_num_threads_1_gives_one_thread():
    """A process-pool worker started with NUMBA_NUM_THREADS=1 trains with one thread."""
    code = (
        "import numpy as np, fastnet\n"
        "net = fastnet.Network([4, 3, 2], seed=0)\n"
        "X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2\n"
        "print(net.train((X, y), 1, 5, 0.5).header['n_threads'])\n"
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_task_reads_numba_num_threads_set_after_numba_import():
    """A Dask nanny sets NUMBA_NUM_THREADS=1 after a spawned worker may have
    imported Numba (when the client's main module imports fastnet); the task
    makes Numba read it before the first kernel runs."""
    code = (
        "import os, numba, fastnet.sweep as sweep\n"
        "from fastnet.threads import max_threads\n"
        "before = max_threads()\n"
        "os.environ['NUMBA_NUM_THREADS'] = '1'\n"
        "sweep._sync_numba_env()\n"
        "import numpy as np, fastnet\n"
        "net = fastnet.Network([4, 3, 2], seed=0)\n"
        "X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2\n"
        "print(before, max_threads(), net.train((X, y), 1, 5, 0.5).header['n_threads'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    before, after, used = out.stdout.split()
    # Numba read its default (every core) at import; the task makes it read 1.
    assert int(before) >= 1
    assert (after, used) == ("1", "1")


# ------------------------------------------------------------ Dask sweeps


@pytest.fixture(scope="module")
def small_sweep(mnist_dir, tmp_path_factory):
    """The 8-run CLI sweep on its own LocalCluster of 2 workers: (out, stdout)."""
    out = tmp_path_factory.mktemp("sweep") / "sweep.jsonl"
    with environ_restored():
        status, stdout, stderr = run_cli(
            "sweep", *SMALL, "--workers", "2", "--out", out, "--data-dir", mnist_dir
        )
    assert status == 0, stderr
    return out, stdout


@pytest.fixture(scope="module")
def client():
    """A client of a LocalCluster of 2 single-threaded worker processes."""
    from distributed import Client

    with environ_restored(), sweep.local_cluster(2) as cluster, Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


@needs_dask
@pytest.mark.needs_jit
def test_cli_sweep_on_local_cluster(small_sweep):
    out, stdout = small_sweep
    lines = out.read_text().splitlines()
    assert len(lines) == 8
    results = [json.loads(line) for line in lines]
    assert {r["key"] for r in results} == {c.key for c in make_grid(**_small_grid())}
    assert all(r["status"] == "ok" and len(r["records"]) == 1 for r in results)
    # Workers have NUMBA_NUM_THREADS=1: every run used one thread.
    assert {r["header"]["n_threads"] for r in results} == {1}
    assert len({r["worker"]["pid"] for r in results}) == 2
    assert all(0.3 < r["records"][0]["evaluation_accuracy"] < 0.9 for r in results)
    assert "8 submitted, 0 already in" in stdout
    assert stdout.count("] init=") == 8  # one line per finished run
    assert "Runs by final validation accuracy (8 of 8" in stdout


def _small_grid():
    return dict(inits=["default", "large"], hidden=[30, 100], seeds=2, epochs=1, limit=2000)


@needs_dask
@pytest.mark.needs_jit
def test_rerun_does_no_new_work(small_sweep, mnist_dir):
    out, _ = small_sweep
    before = out.read_bytes()
    status, stdout, _ = run_cli("sweep", *SMALL, "--workers", "2", "--out", out)
    assert status == 0
    assert "0 submitted, 8 already in" in stdout
    assert "] init=" not in stdout
    assert out.read_bytes() == before
    report = run_sweep(make_grid(**_small_grid()), out, data_dir=mnist_dir)
    assert (report.n_submitted, report.n_skipped, report.address) == (0, 8, None)


@needs_dask
@pytest.mark.needs_jit
def test_resume_runs_only_the_missing_configurations(small_sweep, client, mnist_dir, tmp_path):
    full, _ = small_sweep
    lines = full.read_text().splitlines()
    out = tmp_path / "resumed.jsonl"
    # Five runs finished, then the sweep died while writing the sixth line.
    out.write_text("\n".join(lines[:5]) + "\n" + lines[5][:40])
    with pytest.warns(RuntimeWarning, match="not a sweep result"):
        status, stdout, stderr = run_cli(
            "sweep", *SMALL, "--out", out, "--scheduler", client.scheduler.address,
            "--data-dir", mnist_dir,
        )  # fmt: skip
    assert status == 0, stderr
    assert "3 submitted, 5 already in" in stdout
    with pytest.warns(RuntimeWarning):
        resumed = read_results(out)
    original = read_results(full)
    assert set(resumed) == set(original)
    # Recomputed on other workers, the runs give the same accuracies, bit for bit.
    for key, result in resumed.items():
        assert (
            result["records"][0]["evaluation_accuracy"]
            == (original[key]["records"][0]["evaluation_accuracy"])
        )


@needs_dask
@pytest.mark.needs_jit
def test_sweep_survives_a_killed_worker(client, mnist_dir, tmp_path):
    """SIGKILL one of 2 worker processes once the first result is in: Dask
    reschedules its task, the nanny restarts it, and every run completes."""
    pids = client.run(os.getpid)  # worker address -> pid
    assert len(pids) == 2
    # 10,000 images and 2 epochs: each task takes long enough (~0.5 s) for
    # the other worker to be busy when the first result arrives.
    grid = make_grid(**{**_small_grid(), "epochs": 2, "limit": 10_000})
    killed = {}

    def kill_a_busy_worker(result, n_done, n_submitted):
        if killed:
            return
        processing = client.processing()  # worker address -> keys assigned to it
        busy = [addr for addr, keys in processing.items() if keys and addr in pids]
        assert busy, f"no task in flight after the first result: {processing}"
        addr = max(busy, key=lambda a: len(processing[a]))
        killed.update(pid=pids[addr], keys=list(processing[addr]), n_done=n_done)
        os.kill(pids[addr], signal.SIGKILL)

    out = tmp_path / "killed.jsonl"
    report = run_sweep(grid, out, client=client, data_dir=mnist_dir, on_result=kill_a_busy_worker)
    assert killed["n_done"] == 1
    assert (report.n_submitted, report.failed) == (8, [])
    lines = out.read_text().splitlines()
    assert len(lines) == 8
    results = read_results(out)
    assert set(results) == {c.key for c in grid}
    assert all(r["status"] == "ok" and len(r["records"]) == 2 for r in results.values())
    # The tasks the dead worker held were run again elsewhere.
    lost = [k.removeprefix("fastnet-sweep-") for k in killed["keys"]]
    assert lost and all(results[k]["worker"]["pid"] != killed["pid"] for k in lost)
    # The nanny restarted the worker: two workers again, one with a new pid.
    client.wait_for_workers(2, timeout=60)
    now = set(client.run(os.getpid).values())
    assert killed["pid"] not in now and len(now) == 2


@needs_dask
@pytest.mark.needs_jit
def test_failed_task_is_recorded_and_retried(client, mnist_dir, tmp_path):
    good = make_grid(epochs=1, limit=100)[0]
    # An initializer unknown to the workers (make_grid would refuse it here).
    bad = RunConfig(**{**good.to_dict(), "hidden": (30,), "init": "not-registered"})
    out = tmp_path / "failed.jsonl"
    report = run_sweep([good, bad], out, client=client, data_dir=mnist_dir)
    assert report.n_submitted == 2
    assert [r["key"] for r in report.results] == [good.key]
    (failure,) = report.failed
    assert failure["key"] == bad.key and "not-registered" in failure["error"]
    assert len(out.read_text().splitlines()) == 2
    # Failed runs are recorded but not "done": the next sweep tries them again.
    assert read_results(out)[bad.key]["status"] == "error"
    assert set(sweep.finished(out)) == {good.key}


@needs_dask
def test_two_local_clusters_at_once_take_different_ports():
    # Both schedulers used to ask for port 8787 and the second one warned.
    with environ_restored(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sweep.local_cluster(1) as first, sweep.local_cluster(1) as second:
            ports = {first.scheduler.http_server.port, second.scheduler.http_server.port}
    assert len(ports) == 2 and 8787 not in ports
    assert not [w for w in caught if "already in use" in str(w.message)]
