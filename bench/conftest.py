"""Fixtures, markers and options of the benchmark suite (``python -m pytest bench``).

pyproject's ``testpaths`` is ``tests``, so a bare ``python -m pytest`` never
collects this folder; name it: ``python -m pytest bench ...`` (see
bench/README.md).

Options and markers defined here:

- ``--runslow``: also run the ``slow`` benchmarks (epochs-to-accuracy). The
  same flag exists in tests/conftest.py; when both folders are collected in
  one run the flag is registered once and means the same thing.
- ``--e2a-reference``: the epochs-to-accuracy runs also train the NumPy
  reference (a few times longer).
- ``startup``: the start-up benchmarks (fresh processes, cold and warm JIT
  cache). They run in the full suite; under ``--benchmark-disable`` (the smoke
  run) they are skipped unless selected with ``-m startup``, because each cold
  process compiles every kernel (~15 s).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


def pytest_addoption(parser):
    # tests/conftest.py registers --runslow too; registering it twice raises.
    try:
        parser.addoption("--runslow", action="store_true", help="also run tests marked slow")
    except ValueError:
        pass
    parser.addoption(
        "--e2a-reference",
        action="store_true",
        help="bench: epochs-to-accuracy also trains the NumPy reference (a few times longer)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long runs (many full MNIST epochs); skipped unless --runslow is given"
    )
    config.addinivalue_line(
        "markers",
        "startup: fresh-process start-up timings (cold and warm JIT cache); "
        "skipped under --benchmark-disable unless selected with -m startup",
    )
    # pytest-benchmark writes --benchmark-json at the very end and does not
    # create its folder (bench/results/ is not in git).
    json_path = config.getoption("benchmark_json", None)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)


def _in_bench(item) -> bool:
    return BENCH in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    smoke = config.getoption("benchmark_disable", False) and not config.getoption(
        "benchmark_enable", False
    )
    startup_selected = "startup" in (config.getoption("markexpr", "") or "")
    skip_startup = pytest.mark.skip(
        reason="startup under --benchmark-disable: select it with -m startup"
    )
    for item in items:
        if not _in_bench(item):
            continue
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "startup" in item.keywords and smoke and not startup_selected:
            item.add_marker(skip_startup)


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


def _missing(reason):
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder with MNIST: ``$FASTNET_DATA`` (relative paths are taken from the
    repository root), else ``/work/shared/data``-style ``../shared/data``."""
    env = os.environ.get("FASTNET_DATA", "")
    if env:
        path = Path(env).expanduser()
        if not path.is_absolute():
            path = REPO / path
    else:
        path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.exists():
        _missing(f"no MNIST data at {path} (set FASTNET_DATA)")
    return path.resolve()


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The real MNIST (50,000 / 10,000 / 10,000), float32, loaded once."""
    from fastnet.data import load_mnist

    return load_mnist(mnist_dir)


class _Splits:
    """One split in each dtype, converted once and cached: C-contiguous X of
    the dtype, int64 y (what the kernels take, so nothing is copied when the
    public API validates it)."""

    def __init__(self, split):
        self._split = split
        self._cache = {}

    @property
    def raw(self):
        """The split as loaded (float32)."""
        return self._split

    def __call__(self, dtype):
        key = np.dtype(dtype).name
        if key not in self._cache:
            X, y = self._split
            self._cache[key] = (
                np.ascontiguousarray(X, dtype=key),
                np.ascontiguousarray(y, dtype=np.int64),
            )
        return self._cache[key]

    def __len__(self):
        return len(self._split[1])


@pytest.fixture(scope="session")
def training(mnist):
    """``training(dtype) -> (X, y)``: the 50,000 training images."""
    return _Splits(mnist.training)


@pytest.fixture(scope="session")
def validation(mnist):
    """``validation(dtype) -> (X, y)``: the 10,000 validation images;
    ``validation.raw`` is the split as loaded."""
    return _Splits(mnist.validation)


@pytest.fixture(scope="session")
def order(training):
    """The one sample order every timed training slice walks."""
    from _workloads import sample_order

    return sample_order(len(training))


@pytest.fixture(scope="session")
def results_dir() -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS


# --------------------------------------------------------------------------- #
# What goes into --benchmark-json besides the timings
# --------------------------------------------------------------------------- #


def pytest_benchmark_update_machine_info(config, machine_info):
    import _machine
    import numba

    from fastnet.threads import max_threads, threading_layer

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        blas = "unknown"
    machine_info["fastnet_bench"] = {
        "cpu": _machine.cpu_facts(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "blas": blas,
        "numba_threading_layer": threading_layer(),
        "numba_num_threads": max_threads(),
        "load_average_at_end": _machine.load_average(),
        "env": {
            k: os.environ[k]
            for k in (
                "NUMBA_NUM_THREADS",
                "NUMBA_THREADING_LAYER",
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
            )
            if k in os.environ
        },
    }


def pytest_benchmark_update_json(config, benchmarks, output_json):
    args = " ".join(config.invocation_params.args)
    output_json["command"] = f"python -m pytest {args}".strip()
    output_json["cwd"] = str(config.invocation_params.dir)
    output_json["python"] = sys.version.split()[0]
