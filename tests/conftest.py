"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
            pytest.skip(f"FASTNET_DATA={env} does not exist ({path})")
        return path.resolve()
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"no MNIST data: FASTNET_DATA is unset and {path} does not exist")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The real MNIST, loaded once per session as float32."""
    from fastnet.data import load_mnist

    return load_mnist(mnist_dir)
