"""Numba kernels: arrays and scalars in, results written into given buffers.

Nothing here validates input or allocates per mini-batch; the Python API in
:mod:`fastnet.network` owns the buffers and checks arguments before calling.
"""
