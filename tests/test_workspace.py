"""fastnet.workspace: buffer shapes and the first layer's row split."""

from __future__ import annotations

import numpy as np
import pytest

from fastnet.layout import Layout
from fastnet.workspace import TrainWorkspace, row_lanes


@pytest.mark.parametrize("n_in", [1, 5, 784])
@pytest.mark.parametrize("n_lanes", [1, 2, 3, 8])
def test_row_lanes_cover_every_row_once(n_in, n_lanes):
    lanes = row_lanes(n_in, n_lanes)
    assert lanes.dtype == np.int64
    assert len(lanes) == n_lanes + 1
    assert lanes[0] == 0 and lanes[-1] == n_in
    sizes = np.diff(lanes)
    assert (sizes >= 0).all() and sizes.max() - sizes.min() <= 1


def test_train_workspace_key_and_buffers():
    lay = Layout([6, 4, 3])
    ws = TrainWorkspace(lay, np.float32, 40, 2)
    assert ws.key == ((6, 4, 3), np.dtype(np.float32), 40, 2)
    zs, acts, deltas, grads, lanes = ws.buffers
    assert zs.shape == acts.shape == deltas.shape == (3, 16, 7)
    assert grads.shape == (3, lay.n_params) and grads.dtype == np.float32
    np.testing.assert_array_equal(lanes, [0, 3, 6])
