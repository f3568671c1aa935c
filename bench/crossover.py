"""Serial vs parallel epoch kernel, samples/s, for choosing the crossover in
fastnet._config (PARALLEL_MIN_WORK...). Run: python bench/crossover.py"""

import time

import numpy as np

from fastnet import Network
from fastnet.data import load_mnist
from fastnet.kernels import mlp
from fastnet.workspace import TrainWorkspace, nonzero_index

d = load_mnist()
y = d.training.y
for dt in ("float32",):
    X = d.training.X.astype(dt)
    idx = nonzero_index(X)
    for sizes in ([784, 30, 10], [784, 100, 10], [784, 256, 128, 10]):
        for mb in (17, 32, 64, 100, 200):
            net = Network(sizes, dtype=dt, seed=0)
            ws = TrainWorkspace(net.layout, net.dtype, mb)
            order = np.arange(len(X))
            nb = 10000 // mb
            res = {}
            for name, k in (("serial", mlp.sgd_serial_), ("parallel", mlp.sgd_parallel_)):
                k(
                    net.params,
                    net.layout.table,
                    *net._codes,
                    X,
                    y,
                    *idx,
                    order,
                    mb,
                    0,
                    1,
                    0.1,
                    5.0,
                    50000,
                    *ws.buffers,
                )
                b = 1e9
                for _ in range(3):
                    t = time.perf_counter()
                    k(
                        net.params,
                        net.layout.table,
                        *net._codes,
                        X,
                        y,
                        *idx,
                        order,
                        mb,
                        0,
                        nb,
                        0.1,
                        5.0,
                        50000,
                        *ws.buffers,
                    )
                    b = min(b, time.perf_counter() - t)
                res[name] = nb * mb / b
            work = mb * net.layout.n_weights
            ratio = res["parallel"] / res["serial"]
            print(
                f"{dt} {sizes} mb{mb} work {work / 1e6:.2f}M: serial {res['serial']:,.0f}/s "
                f"parallel {res['parallel']:,.0f}/s ratio {ratio:.2f}",
                flush=True,
            )
