"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numba
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


#: Ways the input blocks can fail to fit (the cases of every driver's
#: refusal test): name -> (argument, how to spoil it).
BAD_BLOCKS = {
    "cuts": ("cuts", lambda c: c[:1]),
    # Blocks past the first layer's inputs would write past its rows.
    "cuts_end": ("cuts", lambda c: np.append(c[:-1], c[-1] + 1)),
    "bounds": ("bounds", lambda b: b[:-1]),
    # Bounds for another number of blocks than the cuts would be read past
    # their rows' ends.
    "bounds_blocks": ("bounds", lambda b: b[:, :-1]),
}


def train_data(X):
    """The training drivers' data arguments after ``X, labels``: the
    non-zero index of `X` and its input blocks, as ``Network.train`` builds
    them."""
    from fastnet.workspace import input_blocks, nonzero_index

    index = nonzero_index(X)
    return (*index, *input_blocks(*index[:2], X.shape[1]))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    # Full-MNIST runs take minutes as interpreted Python (coverage env).
    skip_jit = pytest.mark.skip(reason="needs compiled kernels (NUMBA_DISABLE_JIT is set)")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
        if "needs_jit" in item.keywords and JIT_DISABLED:
            item.add_marker(skip_jit)


def _missing(reason):
    # In CI the data must be there: a skip would hide a broken setup.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder with the real MNIST files: ``$FASTNET_DATA``, else ``../shared/data``."""
    env = os.environ.get("FASTNET_DATA", "")
    if env:
        path = Path(env).expanduser()
        # CI gives it relative to the repository, whatever pytest's cwd.
        if not path.is_absolute():
            path = REPO / path
        if not path.exists():
            _missing(f"FASTNET_DATA={env} does not exist ({path})")
        return path.resolve()
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        _missing(f"no MNIST data: FASTNET_DATA is unset and {path} does not exist")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The real MNIST, loaded once per session as float32."""
    from fastnet.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture
def numba_threads():
    """``numba_threads(n)`` sets Numba's thread count for the rest of the test.

    The count belongs to the calling thread and outlives the test, so the
    fixture puts back the count the test started with.
    """
    previous = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(previous)


@pytest.fixture
def notices(monkeypatch):
    """The compile notices fastnet would log (:func:`fastnet.network.notice_if_slow`),
    recorded as a list of messages instead, with no evaluation seen yet."""
    import fastnet.network

    said = []

    @contextlib.contextmanager
    def record(message, after=None):
        said.append(message)
        yield

    monkeypatch.setattr(fastnet.network, "notice_if_slow", record)
    monkeypatch.setattr(fastnet.network, "_EVALUATED", set())
    return said
