"""Tests for fastnet.history: History, its JSON lines file, MetricsWriter, and
the metrics file written by Network.train."""

from __future__ import annotations

import json
import platform

import numba
import numpy as np
import pytest

import fastnet
from fastnet import History, Network
from fastnet.history import MONITORS, MetricsWriter, versions
from fastnet.threads import max_threads

HEADER = {"config": {"sizes": [6, 5, 3], "eta": 0.5}, "seed": 7, "n_threads": 2}
RECORDS = [
    {"epoch": 1, "seconds": 0.25, "evaluation_accuracy": 0.5, "training_cost": 1.5},
    {"epoch": 2, "seconds": 0.125, "evaluation_accuracy": 0.75, "training_cost": 1.25},
    {"epoch": 3, "seconds": 0.5, "evaluation_accuracy": 0.625},
]


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_append_and_series():
    h = History(HEADER)
    assert len(h) == 0 and h.records == []
    for r in RECORDS:
        h.append(r)
    assert len(h) == 3
    assert repr(h) == "History(3 epochs)"
    assert h.evaluation_accuracy == [0.5, 0.75, 0.625]
    assert h.training_cost == [1.5, 1.25]  # only the records that have it
    assert h.training_accuracy == [] and h.evaluation_cost == []
    assert h.header == HEADER and h.header is not HEADER


def test_series_names_are_the_network2_monitors():
    assert MONITORS == (
        "training_cost",
        "training_accuracy",
        "evaluation_cost",
        "evaluation_accuracy",
    )
    h = History({}, [{"epoch": 1, "seconds": 0.0, **{m: float(i) for i, m in enumerate(MONITORS)}}])
    assert [getattr(h, m) for m in MONITORS] == [[0.0], [1.0], [2.0], [3.0]]


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "run.jsonl"
    History(HEADER, RECORDS).to_jsonl(path)
    raw = lines(path)
    assert raw[0] == {"type": "header", **HEADER}
    assert raw[1:] == [{"type": "epoch", **r} for r in RECORDS]
    back = History.from_jsonl(path)
    assert back.header == HEADER
    assert back.records == RECORDS
    assert back.evaluation_accuracy == [0.5, 0.75, 0.625]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]  # no temp files


def test_to_jsonl_replaces_an_existing_file(tmp_path):
    path = tmp_path / "run.jsonl"
    History(HEADER, RECORDS).to_jsonl(path)
    History({"seed": 1}, RECORDS[:1]).to_jsonl(path)
    back = History.from_jsonl(path)
    assert back.header == {"seed": 1} and len(back) == 1


def test_from_jsonl_skips_blank_lines_and_accepts_str(tmp_path):
    path = tmp_path / "run.jsonl"
    History(HEADER, RECORDS).to_jsonl(path)
    path.write_text(path.read_text().replace("\n", "\n\n"))
    back = History.from_jsonl(str(path))
    assert back.records == RECORDS


def test_metrics_writer_writes_as_it_goes(tmp_path):
    path = tmp_path / "live.jsonl"
    writer = MetricsWriter(path, HEADER)
    try:
        # The header is on disk before any epoch ends.
        assert lines(path) == [{"type": "header", **HEADER}]
        assert History.from_jsonl(path).records == []
        for i, record in enumerate(RECORDS, 1):
            writer.write(record)
            assert len(lines(path)) == i + 1
            assert History.from_jsonl(path).records == RECORDS[:i]
    finally:
        writer.close()
    assert History.from_jsonl(path).records == RECORDS


def test_metrics_writer_context_manager(tmp_path):
    path = tmp_path / "ctx.jsonl"
    with MetricsWriter(path, HEADER) as writer:
        writer.write(RECORDS[0])
    assert writer._f.closed
    assert History.from_jsonl(path).records == RECORDS[:1]


def test_garbage_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    History(HEADER, RECORDS[:1]).to_jsonl(path)
    with open(path, "a") as f:
        f.write("this is not json\n")
    with pytest.raises(ValueError) as info:
        History.from_jsonl(path)
    assert f"{path}:3" in str(info.value)


def test_truncated_last_line_names_the_line(tmp_path):
    """What a crash mid-write would leave: the last line cut short."""
    path = tmp_path / "cut.jsonl"
    History(HEADER, RECORDS).to_jsonl(path)
    text = path.read_text()
    path.write_text(text[: len(text) - 10])
    with pytest.raises(ValueError, match=f"{path}:4"):
        History.from_jsonl(path)


@pytest.mark.parametrize("content", ["", '{"type": "epoch", "epoch": 1, "seconds": 0.1}\n'])
def test_missing_header(tmp_path, content):
    path = tmp_path / "headless.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match="header") as info:
        History.from_jsonl(path)
    assert str(path) in str(info.value)


def test_versions():
    v = versions()
    assert v == {
        "fastnet": fastnet.__version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
    }


# ------------------------------------------------------- from Network.train


def synthetic(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6)), rng.integers(0, 3, n)


def test_train_writes_metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    data = synthetic()
    evaluation = synthetic(n=20, seed=1)
    on_disk = []

    def callback(record):
        # Every earlier epoch is on disk by the time this one ends (the
        # current record may or may not be written yet).
        on_disk.append([r["epoch"] for r in History.from_jsonl(path).records])

    net = Network([6, 5, 3], seed=21, dtype="float32")
    history = net.train(
        data,
        3,
        10,
        0.5,
        0.1,
        evaluation_data=evaluation,
        monitor_evaluation_accuracy=True,
        monitor_training_cost=True,
        metrics=path,
        callback=callback,
    )
    raw = lines(path)
    assert [r["type"] for r in raw] == ["header", "epoch", "epoch", "epoch"]
    header = raw[0]
    config = header["config"]
    assert config["sizes"] == [6, 5, 3]
    assert config["cost"] == "cross_entropy" and config["activation"] == "sigmoid"
    assert config["dtype"] == "float32" and config["init"] == "default"
    assert config["epochs"] == 3 and config["mini_batch_size"] == 10
    assert config["eta"] == 0.5 and config["lmbda"] == 0.1
    assert config["n_training"] == 40 and config["n_evaluation"] == 20
    assert header["seed"] == 21
    assert header["versions"] == versions()
    assert set(header["versions"]) == {"fastnet", "numpy", "numba", "python"}
    assert header["threading_layer"] in ("omp", "tbb", "workqueue")
    assert header["threading_layer"] == numba.threading_layer()
    assert isinstance(header["n_threads"], int) and 1 <= header["n_threads"] <= max_threads()
    assert header["kernel"] in ("serial", "parallel", "dense")

    back = History.from_jsonl(path)
    assert back.header == json.loads(json.dumps(history.header))
    assert back.records == history.records
    assert [r["epoch"] for r in back.records] == [1, 2, 3]
    assert set(back.records[0]) == {"epoch", "seconds", "evaluation_accuracy", "training_cost"}
    for epoch, epochs_on_disk in enumerate(on_disk, 1):
        assert epochs_on_disk in (list(range(1, epoch)), list(range(1, epoch + 1)))


def test_train_metrics_thread_count(tmp_path):
    path = tmp_path / "one.jsonl"
    Network([6, 5, 3], seed=0, n_threads=1).train(synthetic(), 1, 10, 0.5, metrics=path)
    header = History.from_jsonl(path).header
    assert header["n_threads"] == 1 and header["kernel"] == "serial"


def test_train_without_metrics_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Network([6, 5, 3], seed=0).train(synthetic(), 1, 10, 0.5)
    assert list(tmp_path.iterdir()) == []


def test_history_header_without_metrics_file():
    history = Network([6, 5, 3], seed=4).train(synthetic(), 2, 10, 0.5)
    assert history.header["seed"] == 4
    assert history.header["config"]["epochs"] == 2
    assert history.header["versions"] == versions()


@pytest.mark.parametrize("disable_jit", ["0", "1"])
def test_threading_layer_is_named_in_a_fresh_process(disable_jit):
    # The header's threading layer is read before any parallel kernel may
    # have run; without JIT no kernel ever starts the layer.
    import os
    import subprocess
    import sys

    code = "from fastnet.threads import threading_layer; print(threading_layer())"
    env = {**os.environ, "NUMBA_DISABLE_JIT": disable_jit}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("omp", "tbb", "workqueue")
