"""Serial vs parallel vs dense (BLAS) epoch kernel, samples/s, for choosing
the crossovers in fastnet._config (PARALLEL_FUSED_MIN_WORK, DENSE_MIN_WORK,
...). The parallel driver takes mini-batches of one chunk only (at most
GRAD_CHUNK samples); the dense one any.

Run: python bench/crossover.py [float32|float64 ...]
"""

import sys
import time

import numpy as np

from fastnet import Network
from fastnet.data import load_mnist
from fastnet.kernels import dense, mlp
from fastnet.network import block_share
from fastnet.threads import blas_threads, max_threads
from fastnet.workspace import DenseWorkspace, TrainWorkspace, input_blocks, nonzero_index

SIZES = ([784, 10], [784, 30, 10], [784, 100, 10], [784, 256, 128, 10])
KERNELS = ("serial", "parallel", "dense")
MINI_BATCHES = (1, 2, 4, 6, 10, 16, 17, 32, 64, 100, 200)


def samples_per_second(kernel, net, ws, X, y, idx, order, mb, n_batches):
    args = (net.layout.table, *net._codes, X, y, *idx, order, mb)
    tail = (0.1, 5.0, 50000, *ws.buffers)
    kernel(net.params, *args, 0, 1, *tail)  # compile, warm the caches
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        kernel(net.params, *args, 0, n_batches, *tail)
        best = min(best, time.perf_counter() - t)
    return n_batches * mb / best


def main(dtypes):
    d = load_mnist()
    y = d.training.y
    n_threads = max_threads()
    for dt in dtypes:
        X = d.training.X.astype(dt)
        idx = nonzero_index(X)
        # Each driver's input blocks (network.block_share: the fused step's
        # first block is smaller).
        blocks = {k: input_blocks(idx[0], idx[1], X.shape[1], block_share(k)) for k in KERNELS}
        # A shuffled order, as in training (sequential order flatters both).
        order = np.random.default_rng(0).permutation(len(X))
        for sizes in SIZES:
            for mb in MINI_BATCHES:
                net = Network(sizes, dtype=dt, seed=0)
                n_batches = max(1, (10000 if len(sizes) == 3 else 3000) // mb)
                drivers = {
                    "serial": (mlp.sgd_serial_, TrainWorkspace(net.layout, dt, mb)),
                    "dense": (dense.sgd_dense_, DenseWorkspace(net.layout, dt, mb, n_threads)),
                }
                if mlp.n_chunks(mb) == 1:
                    drivers["parallel"] = (
                        mlp.sgd_parallel_,
                        TrainWorkspace(net.layout, dt, mb, n_threads),
                    )
                rate = {}
                # One-thread BLAS, as Network.train runs the dense driver.
                with blas_threads(1):
                    for name, (kernel, ws) in drivers.items():
                        data = (*idx, *blocks[name])
                        rate[name] = samples_per_second(
                            kernel, net, ws, X, y, data, order, mb, n_batches
                        )
                serial, dense_rate = rate["serial"], rate["dense"]
                parallel = rate.get("parallel", float("nan"))
                best_loop = max(serial, rate.get("parallel", serial))
                work = mb * net.layout.n_weights
                print(
                    f"{dt} {sizes} mb{mb} chunks {mlp.n_chunks(mb)} work {work / 1e6:.2f}M: "
                    f"serial {serial:,.0f}/s parallel {parallel:,.0f}/s "
                    f"dense {dense_rate:,.0f}/s parallel/serial {parallel / serial:.2f} "
                    f"dense/best {dense_rate / best_loop:.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main(sys.argv[1:] or ["float32"])
