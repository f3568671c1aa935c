"""Work buffers, allocated once per (layout, dtype, mini-batch size) and reused
by every mini-batch and every epoch."""

from __future__ import annotations

import numpy as np

from fastnet._config import EVAL_CHUNKS, GRAD_CHUNK
from fastnet.kernels.mlp import n_chunks
from fastnet.layout import Layout


class TrainWorkspace:
    """Per-chunk scratch rows and gradient sums for SGD with mini-batches of
    up to `mini_batch` samples.

    Attributes
    ----------
    zs, deltas : ndarray, shape (n_chunks, GRAD_CHUNK, layout.n_z)
    acts : ndarray, shape (n_chunks, GRAD_CHUNK, layout.n_units)
    grads : ndarray, shape (n_chunks, layout.n_params)
    """

    def __init__(self, layout: Layout, dtype, mini_batch: int):
        nc = int(n_chunks(mini_batch))
        self.key = (layout.sizes, np.dtype(dtype), mini_batch)
        self.zs = np.zeros((nc, GRAD_CHUNK, layout.n_z), dtype)
        self.acts = np.zeros((nc, GRAD_CHUNK, layout.n_units), dtype)
        self.deltas = np.zeros((nc, GRAD_CHUNK, layout.n_z), dtype)
        self.grads = np.zeros((nc, layout.n_params), dtype)

    @property
    def buffers(self):
        """The buffers in the order the SGD kernels take them."""
        return self.zs, self.acts, self.deltas, self.grads


class EvalWorkspace:
    """Per-chunk scratch rows and partial sums for evaluation and prediction.

    Attributes
    ----------
    zs : ndarray, shape (EVAL_CHUNKS, layout.n_z)
    acts : ndarray, shape (EVAL_CHUNKS, layout.n_units)
    cost_parts : ndarray of float64, shape (EVAL_CHUNKS,)
    correct_parts : ndarray of int64, shape (EVAL_CHUNKS,)
    """

    def __init__(self, layout: Layout, dtype):
        self.zs = np.zeros((EVAL_CHUNKS, layout.n_z), dtype)
        self.acts = np.zeros((EVAL_CHUNKS, layout.n_units), dtype)
        self.cost_parts = np.zeros(EVAL_CHUNKS, np.float64)
        self.correct_parts = np.zeros(EVAL_CHUNKS, np.int64)
