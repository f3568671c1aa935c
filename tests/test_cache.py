"""The on-disk kernel cache is invalidated when ANY kernel source changes, not
only the file that defines the kernel (Numba's default)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastnet

SCRIPT = """
import numpy as np
from fastnet.kernels import mlp
from fastnet.layout import Layout
lay = Layout([2, 2]); p = np.ones(lay.n_params)
z = np.zeros(2); a = np.full(2, 0.5); delta = np.zeros(2)
mlp.backward_sample_(p, lay.table, 0, 0, 0, z, a, delta)  # cross-entropy, label 0
print(delta[0])
"""


@pytest.mark.needs_jit
def test_editing_an_inlined_module_recompiles_dependent_kernels(tmp_path):
    pkg = tmp_path / "fastnet"
    shutil.copytree(
        Path(fastnet.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)

    def run():
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        return float(out.stdout.split()[-1])

    # A small serial kernel that inlines activations.output_delta_ (the
    # parallel evaluate kernel did the same job at three times the compile).
    before = run()  # a - y = 0.5 - 1, compiled into the cache
    assert before == -0.5
    assert list((pkg / "kernels" / "__pycache__").glob("mlp.backward_sample_*.nbc"))
    src = pkg / "kernels" / "activations.py"
    text = src.read_text()
    assert "delta[label] = delta[label] - one\n" in text
    src.write_text(
        text.replace(
            "delta[label] = delta[label] - one\n", "delta[label] = delta[label] - one - one\n"
        )
    )
    assert run() == -1.5
