"""fastnet.layout: the table the kernels read stays one Numba type."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from fastnet import Network
from fastnet.layout import Layout


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
