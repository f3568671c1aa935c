"""Tests for ``python -m fastnet`` run as a subprocess on the real MNIST.

Every command line costs an interpreter start (NumPy, Numba, the cached
kernels), so one short training run is made first and every other command
then runs once, side by side, in the module-scoped ``runs`` fixture; the
tests only inspect the results.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import fastnet
from fastnet import data as fastnet_data

TRAIN_FLAGS = [
    "--sizes",
    "--init",
    "--epochs",
    "--batch-size",
    "--eta",
    "--lmbda",
    "--cost",
    "--activation",
    "--dtype",
    "--seed",
    "--threads",
    "--save",
    "--metrics",
]

#: Bad ``train`` arguments -> what the one-line error must mention.
BAD_TRAIN = {
    "--eta -1": "--eta",
    "--init xavier": "xavier_normal",
    "--sizes 784,0,10": "sizes",
    "--sizes 700,30,10": "700",
    "--batch-size 0": "--batch-size",
    "--lmbda -1": "--lmbda",
    "--epochs -1": "--epochs",
    "--threads 0": "threads",
}

#: Command lines that argparse itself rejects.
ARGPARSE_ERRORS = ["", "train --dtype float16", "train --sizes 784,x,10"]

SPLITS = {"test": (), "validation": ("--split", "validation")}

# A training run on the full MNIST takes minutes without compiled kernels.
needs_jit = pytest.mark.needs_jit

NUMBA_ERROR = re.compile(r"Numba\w*Error|TypingError|LoweringError|numba\.core")


def run(*args, env=None, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "fastnet", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def assert_no_crash(result):
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream
        assert not NUMBA_ERROR.search(stream), stream


def assert_usage_error(result, *fragments):
    """Exit 2 and exactly one line on stderr, ``fastnet: error: ...``."""
    assert_no_crash(result)
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert err[0].startswith("fastnet: error:"), result.stderr
    for fragment in fragments:
        assert fragment in err[0], err[0]


@pytest.fixture(scope="module")
def env(mnist_dir):
    return {**os.environ, "FASTNET_DATA": str(mnist_dir)}


def run_all(commands):
    """{key: (args, cwd, env)} -> {key: CompletedProcess}, run side by side."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            key: pool.submit(run, *args, env=env, cwd=cwd)
            for key, (args, cwd, env) in commands.items()
        }
        return {key: future.result() for key, future in futures.items()}


@pytest.fixture(scope="module")
def trained(env, tmp_path_factory):
    """One short training run; its model and metrics feed the other commands."""
    workdir = tmp_path_factory.mktemp("cli")
    args = "train --epochs 1 --sizes 784,10,10 --dtype float32 --save m.npz --metrics r.jsonl"
    return run(*args.split(), env=env, cwd=workdir), workdir


@pytest.fixture(scope="module")
def evaluations(trained, env):
    """``evaluate`` on each split of the trained model, and on half of it."""
    _, good = trained
    model = (good / "m.npz").read_bytes() if (good / "m.npz").exists() else b""
    (good / "half.npz").write_bytes(model[: len(model) // 2])
    commands = {
        split: (("evaluate", "m.npz", *extra), good, env) for split, extra in SPLITS.items()
    }
    commands["half"] = (("evaluate", "half.npz"), good, env)
    return run_all(commands)


@pytest.fixture(scope="module")
def runs(env, tmp_path_factory):
    """The command lines that train nothing (errors, help, data where)."""
    bad = tmp_path_factory.mktemp("bad")
    (bad / "garbage.npz").write_bytes(b"not a model at all\n")
    empty, home, cache = (tmp_path_factory.mktemp(name) for name in ("empty", "home", "xdg"))
    lost = {**env, "FASTNET_DATA": str(empty), "HOME": str(home), "XDG_CACHE_HOME": str(cache)}
    commands = {
        **{
            f"train {args}": (("train", *args.split(), "--save", "m.npz"), bad, env)
            for args in BAD_TRAIN
        },
        **{f"argparse {args}": (tuple(args.split()), bad, env) for args in ARGPARSE_ERRORS},
        "help": (("train", "--help"), bad, env),
        "missing": (("evaluate", "nope.npz"), bad, env),
        "garbage": (("evaluate", "garbage.npz"), bad, env),
        "directory": (("evaluate", empty), bad, env),
        "where": (("data", "where"), bad, env),
        "where-lost": (("data", "where"), bad, lost),
    }
    results = run_all(commands)
    results["bad dir"] = bad
    results["lost dirs"] = (empty, cache)
    return results


# ------------------------------------------------------------------- train


@needs_jit
def test_train(trained):
    result, workdir = trained
    assert_no_crash(result)
    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 1, result.stdout
    assert "val acc" in epoch_lines[0]
    val_acc = float(re.search(r"val acc\s+([\d.]+)%", epoch_lines[0]).group(1))
    assert 50 < val_acc <= 100  # a [784, 10, 10] net learns something in one epoch
    assert (workdir / "m.npz").is_file()
    assert (workdir / "r.jsonl").is_file()


@needs_jit
def test_train_metrics_file(trained):
    _, workdir = trained
    records = [json.loads(line) for line in (workdir / "r.jsonl").read_text().splitlines()]
    assert [r["type"] for r in records] == ["header", "epoch"]
    header, epoch = records
    config = header["config"]
    assert config["sizes"] == [784, 10, 10] and config["dtype"] == "float32"
    assert config["epochs"] == 1
    assert config["n_training"] == 50_000 and config["n_evaluation"] == 10_000
    assert header["seed"] == 12345
    assert header["threading_layer"] in ("omp", "tbb", "workqueue")
    assert epoch["epoch"] == 1
    assert 0 <= epoch["evaluation_accuracy"] <= 1


@needs_jit
def test_train_saved_model(trained):
    _, workdir = trained
    net = fastnet.load(workdir / "m.npz")
    assert net.sizes == (784, 10, 10)
    assert net.params.dtype.name == "float32"


def test_train_help_lists_every_flag(runs):
    result = runs["help"]
    assert result.returncode == 0, result.stderr
    for flag in TRAIN_FLAGS:
        assert flag in result.stdout, flag


@pytest.mark.parametrize("args", list(BAD_TRAIN))
def test_train_bad_arguments(runs, args):
    assert_usage_error(runs[f"train {args}"], BAD_TRAIN[args])


def test_bad_train_arguments_save_nothing(runs):
    assert not (runs["bad dir"] / "m.npz").exists()


@pytest.mark.parametrize("args", ARGPARSE_ERRORS, ids=lambda v: v or "no-args")
def test_argparse_errors(runs, args):
    result = runs[f"argparse {args}"]
    assert_no_crash(result)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "error:" in result.stderr


# ---------------------------------------------------------------- evaluate


@needs_jit
@pytest.mark.parametrize("split", list(SPLITS))
def test_evaluate(trained, evaluations, split):
    result = evaluations[split]
    assert_no_crash(result)
    assert result.returncode == 0, result.stderr
    match = re.search(rf"{split} accuracy (\d+\.\d+)% \((\d+) / 10000\)", result.stdout)
    assert match, result.stdout
    assert 50 < float(match.group(1)) <= 100
    assert float(match.group(1)) == pytest.approx(int(match.group(2)) / 100, abs=0.005)
    if split == "validation":
        # What training reported for the validation set is what evaluate finds.
        line = next(x for x in trained[0].stdout.splitlines() if x.startswith("epoch"))
        assert match.group(1) == re.search(r"val acc\s+([\d.]+)%", line).group(1)


@pytest.mark.parametrize(("case", "name"), [("missing", "nope.npz"), ("garbage", "garbage.npz")])
def test_evaluate_bad_file(runs, case, name):
    assert_usage_error(runs[case], name)


@needs_jit
def test_evaluate_truncated_model(evaluations):
    assert_usage_error(evaluations["half"], "half.npz")


def test_evaluate_directory(runs):
    assert_usage_error(runs["directory"])


# -------------------------------------------------------------------- data


def test_data_where(runs, mnist_dir):
    result = runs["where"]
    assert_no_crash(result)
    assert result.returncode == 0, result.stderr
    assert "mnist" in result.stdout.lower()
    found = Path(result.stdout.strip()).resolve()
    assert found.is_relative_to(Path(mnist_dir).resolve())


def test_data_where_not_found(runs):
    if fastnet_data._dataset_in(fastnet_data.REPO_DATA_DIR) is not None:
        pytest.skip("the repository's data/ holds MNIST, so it is always found")
    result = runs["where-lost"]
    empty, cache = runs["lost dirs"]
    assert_no_crash(result)
    assert result.returncode == 1
    out = result.stdout
    assert "not found" in out
    assert str(empty) in out
    assert str(cache / "fastnet") in out
    assert str(fastnet_data.REPO_DATA_DIR) in out


def test_console_main_exits_with_mains_status_after_freezing_the_gc(monkeypatch):
    from fastnet import cli

    calls = []
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 3)
    # Recorded, not done: freezing this test process would keep its garbage.
    monkeypatch.setattr(cli.gc, "freeze", lambda: calls.append("freeze"))
    with pytest.raises(SystemExit) as exit_info:
        cli.console_main()
    assert exit_info.value.code == 3
    assert calls == ["main", "freeze"]
