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
from fastnet.workspace import EvalWorkspace
lay = Layout([2, 2]); p = np.ones(lay.n_params); X = np.ones((1, 2)); y = np.array([0])
ws = EvalWorkspace(lay, float)
# X's non-zero index by hand: nonzero_index would compile two more kernels.
index = (np.array([0, 2]), np.array([0, 1], np.int32), X[0].copy())
print(mlp.evaluate(p, lay.table, 0, 0, 1, X, y, *index, ws.zs, ws.acts,
                   ws.cost_parts, ws.correct_parts)[0])
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

    before = run()  # quadratic cost of one sample, compiled into the cache
    assert list((pkg / "kernels" / "__pycache__").glob("mlp.evaluate*.nbc"))
    src = pkg / "kernels" / "activations.py"
    text = src.read_text()
    assert "c += 0.5 * d * d" in text
    src.write_text(text.replace("c += 0.5 * d * d", "c += 5.0 * d * d"))
    assert run() == pytest.approx(10 * before)
