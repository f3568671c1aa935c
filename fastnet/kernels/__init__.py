"""Numba kernels: arrays and scalars in, results written into given buffers.

Nothing here validates input or allocates per mini-batch; the Python API in
:mod:`fastnet.network` owns the buffers and checks arguments before calling.
"""

# Before any kernel module is imported: cache entries are stamped with a digest
# of all kernel sources (see _cache).
from fastnet.kernels import _cache  # noqa: E402, F401
