"""fastnet.layout: the padding rule, the views and blocks over one buffer, the
unpadded order files use, and the table the kernels read staying one Numba
type."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from fastnet import Network
from fastnet._config import BUFFER_ALIGN, ROW_PAD, ROW_PAD_MAX_SHARE
from fastnet.kernels import codes
from fastnet.layout import Layout, aligned_copy, aligned_zeros, row_stride


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))]
)
def test_copies_keep_a_read_only_table(clone):
    lay = Layout([5, 4, 3])
    twin = clone(lay)
    assert twin == lay
    assert not twin.table.flags.writeable
    np.testing.assert_array_equal(twin.table, lay.table)


def test_an_unpickled_network_reads_a_read_only_table():
    """A writeable table is another Numba type: every driver would compile
    again for a network loaded from a pickle."""
    net = pickle.loads(pickle.dumps(Network([5, 4, 3], seed=0)))
    assert not net.layout.table.flags.writeable


@pytest.mark.parametrize("n_out", [1, 7, 28, 29, 30, 31, 32, 57, 60, 100, 112, 120, 256])
def test_row_stride_pads_only_the_first_layer_and_only_a_little(n_out):
    stride = row_stride(n_out, 0)
    padded = -(-n_out // ROW_PAD) * ROW_PAD
    assert stride in (n_out, padded)
    assert (stride == padded) == (padded - n_out <= ROW_PAD_MAX_SHARE * n_out)
    assert row_stride(n_out, 1) == n_out


@pytest.mark.parametrize("sizes", [[784, 30, 10], [12, 60, 30, 4], [12, 29], [5, 4, 3]])
def test_blocks_tile_the_weights_and_the_next_layer_stores_padded_rows(sizes):
    lay = Layout(sizes)
    table = lay.table
    ends = 0
    for layer, block in enumerate(lay.weight_blocks(np.zeros(lay.n_params))):
        assert table[layer, codes.W_OFF] == ends
        assert block.shape == (table[layer, codes.W_ROWS], table[layer, codes.STRIDE])
        assert table[layer, codes.W_ROWS] == (
            sizes[0] if layer == 0 else table[layer - 1, codes.STRIDE]
        )
        ends += block.size
    assert ends == lay.weight_end == table[0, codes.B_OFF]
    assert lay.n_params == lay.weight_end + lay.n_biases
    assert lay.n_z == sum(table[:, codes.STRIDE])


def test_flat_is_the_unpadded_order_and_load_flat_zeroes_the_padding():
    lay = Layout([3, 30, 2])
    assert lay.table[0, codes.STRIDE] == 32
    flat = np.arange(1.0, lay.n_weights + lay.n_biases + 1)
    params = np.full(lay.n_params, np.nan)
    assert lay.load_flat_(params, flat) is params
    np.testing.assert_array_equal(lay.flat(params), flat)
    w = lay.weight_views(params)
    np.testing.assert_array_equal(w[0].T.ravel(), flat[:90])  # input-major
    np.testing.assert_array_equal(w[1].T.ravel(), flat[90:150])
    np.testing.assert_array_equal(np.concatenate(lay.bias_views(params)), flat[150:])
    assert np.count_nonzero(params == 0) == lay.n_params - flat.size
    with pytest.raises(ValueError, match="must hold 182 values, got 181"):
        lay.load_flat_(params, flat[:-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [0, 1, 7, (3, 5), (2, 0, 4), (4, 3, 33)])
def test_aligned_zeros_are_zeros_on_an_aligned_address(dtype, shape):
    # Many allocations, so that some land where plain np.zeros would not be
    # aligned; every one must be.
    for _ in range(20):
        a = aligned_zeros(shape, dtype)
        assert a.shape == np.zeros(shape).shape and a.dtype == dtype
        assert a.ctypes.data % BUFFER_ALIGN == 0 or a.size == 0  # empty: no memory
        assert a.flags.c_contiguous and a.flags.writeable and not a.any()
    b = np.arange(np.prod(a.shape), dtype=dtype).reshape(a.shape)
    c = aligned_copy(b)
    assert c.ctypes.data % BUFFER_ALIGN == 0 or c.size == 0
    assert np.array_equal(c, b) and c.dtype == dtype


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
def test_network_and_workspace_buffers_are_aligned(copier):
    net = Network([784, 30, 10], seed=0)
    twin = pickle.loads(pickle.dumps(net)) if copier == "pickle" else copy.deepcopy(net)
    for n in (net, twin):
        assert n.params.ctypes.data % BUFFER_ALIGN == 0
        assert np.shares_memory(n.weights[0], n.params)
        # Every buffer the kernels read or write in vectors, and the counters.
        names = ("zs", "acts", "deltas", "grads", "partials", "columns", "transposed", "sync")
        names += ("dense_zs", "dense_acts", "dense_xs")
        workspaces = [n._eval_ws] + [n._driver(m, 2)[2] for m in (10, 100)]
        checked = 0
        for ws in workspaces:
            for name in names:
                a = getattr(ws, name, None)
                if a is not None and a.size:
                    assert a.ctypes.data % BUFFER_ALIGN == 0, name
                    checked += 1
        assert checked >= 15
    assert twin.params.tobytes() == net.params.tobytes()
