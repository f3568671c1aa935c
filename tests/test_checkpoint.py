"""Checkpoints and exact resume (API and CLI, including SIGKILL mid-epoch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastnet
from fastnet.checkpoint import FILENAME, data_fingerprint, load_checkpoint
from fastnet.history import History


class Stop(Exception):
    pass


def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8)), rng.integers(0, 3, n)


def interrupted_run(tmp_path, stop_after, epochs=5, **kw):
    X, y = data()

    def stop(record):
        if record["epoch"] == stop_after:
            raise Stop

    net = fastnet.Network([8, 6, 3], seed=3)
    with pytest.raises(Stop):
        net.train(
            (X, y),
            epochs,
            7,
            0.5,
            1.0,
            evaluation_data=(X, y),
            monitor_evaluation_accuracy=True,
            checkpoint_dir=tmp_path,
            callback=stop,
            **kw,
        )
    return X, y


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path, stop_after):
    X, y = data()
    full = fastnet.Network([8, 6, 3], seed=3)
    h_full = full.train(
        (X, y), 5, 7, 0.5, 1.0, evaluation_data=(X, y), monitor_evaluation_accuracy=True
    )
    # The callback raises before epoch `stop_after` is stored: the checkpoint
    # holds epoch stop_after - 1 (or nothing yet for epoch 1).
    interrupted_run(tmp_path, stop_after + 1)
    assert load_checkpoint(tmp_path)[1]["epoch"] == stop_after
    metrics = tmp_path / "resumed.jsonl"
    net, history = fastnet.resume(tmp_path, (X, y), (X, y), metrics=metrics)
    assert net.params.tobytes() == full.params.tobytes()
    assert history.evaluation_accuracy == h_full.evaluation_accuracy
    assert len(History.from_jsonl(metrics)) == 5
    assert load_checkpoint(tmp_path)[1]["epoch"] == 5


def test_resume_refuses_different_data(tmp_path):
    interrupted_run(tmp_path, 3)
    X2, y2 = data(seed=1)
    with pytest.raises(ValueError, match="fingerprint"):
        fastnet.resume(tmp_path, (X2, y2), (X2, y2))


def test_fingerprint_is_of_the_data_as_the_network_sees_it():
    # A float64 network trains on float32 data unconverted; its checkpoint
    # digest must not depend on whether the caller converted first, and must
    # still tell different data apart. 10,000 rows: several streamed blocks.
    rng = np.random.default_rng(0)
    X32 = rng.random((10_000, 8)).astype(np.float32)
    y = rng.integers(0, 3, 10_000)
    as_f64 = data_fingerprint(X32.astype(np.float64), y)
    assert data_fingerprint(X32, y, np.float64) == as_f64
    assert data_fingerprint(X32, y) != as_f64
    X32[9_999, 7] += 0.5
    assert data_fingerprint(X32, y, np.float64) != as_f64


def test_resume_accepts_the_same_data_converted_or_not(tmp_path):
    X, y = data()
    X32 = X.astype(np.float32)
    net = fastnet.Network([8, 6, 3], seed=3)
    with pytest.raises(Stop):
        net.train((X32, y), 4, 7, 0.5, 1.0, checkpoint_dir=tmp_path, callback=_stop_at(3))
    a, _ = fastnet.resume(tmp_path, (X32.astype(np.float64), y))
    b = fastnet.Network([8, 6, 3], seed=3)
    b.train((X32, y), 4, 7, 0.5, 1.0)
    assert a.params.tobytes() == b.params.tobytes()


def _stop_at(epoch):
    def stop(record):
        if record["epoch"] == epoch:
            raise Stop

    return stop


def test_resume_needs_evaluation_data_if_it_was_monitored(tmp_path):
    X, y = interrupted_run(tmp_path, 3)
    with pytest.raises(ValueError, match="evaluation_data"):
        fastnet.resume(tmp_path, (X, y))


def test_missing_truncated_and_foreign_checkpoints_fail_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    interrupted_run(tmp_path, 3)
    path = tmp_path / FILENAME
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=str(path)):
        load_checkpoint(tmp_path)
    np.savez(path, format=np.array("something-else"))
    with pytest.raises(ValueError, match="not a fastnet checkpoint"):
        load_checkpoint(path)


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    X, y = data()
    net = fastnet.Network([8, 6, 3], seed=3)
    net.train((X, y), 2, 7, 0.5, checkpoint_dir=tmp_path)
    before = (tmp_path / FILENAME).read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        net.train((X, y), 1, 7, 0.5, checkpoint_dir=tmp_path)
    assert (tmp_path / FILENAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILENAME]


@pytest.mark.needs_jit
def test_cli_resume_after_sigkill_mid_epoch_matches_uninterrupted(tmp_path, mnist_dir):
    env = {**os.environ, "FASTNET_DATA": str(mnist_dir)}
    common = [
        "--epochs",
        "4",
        "--dtype",
        "float32",
        "--monitor",
        "evaluation_accuracy",
        "--no-progress",
        "--quiet",
    ]
    cmd = [sys.executable, "-m", "fastnet", "train", *common]
    full = tmp_path / "full.npz"
    subprocess.run([*cmd, "--save", str(full)], env=env, check=True, timeout=300)

    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen([*cmd, "--checkpoint", str(ckpt)], env=env)
    deadline = time.monotonic() + 240
    while not (ckpt / FILENAME).exists():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.15)  # well inside epoch 2 (an epoch takes several tenths of a second)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    done = load_checkpoint(ckpt)[1]["epoch"]
    assert 1 <= done < 4, "the kill did not interrupt training"

    resumed = tmp_path / "resumed.npz"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastnet",
            "train",
            "--resume",
            str(ckpt),
            "--save",
            str(resumed),
            "--metrics",
            str(tmp_path / "m.jsonl"),
            "--no-progress",
        ],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert out.stdout.count("val acc") == 4 - done
    a, b = fastnet.load(full), fastnet.load(resumed)
    assert a.params.dtype == np.float32
    assert a.params.tobytes() == b.params.tobytes()
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [1, 2, 3, 4]
