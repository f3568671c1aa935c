"""Software prefetch: ask the CPU to start loading memory a kernel reads next.

Training visits samples in a shuffled order, so each sample's non-zero inputs
and their columns sit at a random place in arrays of tens of MB: the first
touch misses every cache and the hardware prefetchers cannot guess the address.
:func:`prefetch_sample` names those lines one sample ahead, while the current
sample is computed, so the loads overlap the arithmetic.

A prefetch is a hint: it changes no value and cannot fault, so results are
bit-for-bit those of the kernels without it (the kernel tests compare against
:mod:`fastnet.reference` either way). Without JIT (``NUMBA_DISABLE_JIT=1``)
both functions do nothing.

Measured (first-layer forward pass alone, [784, 30, 10], float32, one
thread, 20,000 shuffled training images, us per sample, three runs, reading
rows of X as the kernels then did): 1.61 / 2.63 / 1.92 without, 1.20 / 2.32 /
1.53 with the next sample prefetched; reading the images in stored order took
1.13 / 1.87 / 1.37. The whole fused step (sgd_serial_/sgd_parallel_, mini-batch
10, paired rounds against the kernels before the prefetch and the
``values`` index of :func:`fastnet.kernels.mlp.nonzero_index_`), with both:
float32 1.42x on one thread, 1.22x on two; float64 1.16x; [784, 100, 10]
1.09x. The dense driver (:mod:`fastnet.kernels.dense`) sums each input
block's part of the first layer a sample at a time and asks for the next
sample's run in the block (:func:`fastnet.kernels.mlp.first_block_sums_`).
Until 2026-12-01 it summed whole rows and asked for the next row's index;
paired A/B of the whole driver then (12 rounds each), [784, 30, 10]
mini-batch 100: float32 1.10x-1.11x on two threads, 1.15x on one; float64
1.01x on two, 1.21x on one; mini-batch 17 1.05x; [784, 100, 10] 1.05x on one
thread; [784, 256, 128, 10] mini-batch 64 0.98x-1.01x. In the per-block
prototype (4 blocks, float32, against that driver in the same runs) the
hints took the ratio from 0.74x to 0.88x on one thread and from 0.89x to
1.02x on two (``/work/exp/s20/ab_owner.py``).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from fastnet._config import JIT_OPTIONS

#: Bytes per cache line on x86-64 and AArch64 cores: the stride of the hints.
CACHE_LINE = 64


def prefetch(a, i):
    """Hint that ``a[i]`` (1-D `a`) will be read soon.

    Parameters
    ----------
    a : ndarray, 1-D
    i : int
        Index into `a`. Nothing is read or written.

    Notes
    -----
    Compiled as LLVM's ``llvm.prefetch`` (read, keep in all cache levels);
    this Python body, used without JIT, does nothing.
    """


@intrinsic
def _llvm_prefetch(typingctx, a, i):
    if not isinstance(a, types.Array) or a.ndim != 1 or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [index], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # (address, 0 = read, 3 = keep in every cache level, 1 = data cache)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(a, i), codegen


@overload(prefetch, jit_options=JIT_OPTIONS)
def _prefetch(a, i):
    def impl(a, i):
        _llvm_prefetch(a, i)

    return impl


@njit(**JIT_OPTIONS)
def prefetch_sample(indptr, indices, values, i):
    """Hint that sample ``i``'s non-zero inputs and their columns are next.

    Parameters
    ----------
    indptr, indices, values : ndarray
        Non-zero index of the data (:func:`fastnet.kernels.mlp.nonzero_index_`).
    i : int
        Sample, ``0 <= i < len(indptr) - 1``.

    Examples
    --------
    Inside a kernel's loop over ``batch``::

        if s + 1 < hi:
            prefetch_sample(indptr, indices, values, batch[s + 1])
    """
    prefetch_range(indices, indptr[i], indptr[i + 1])
    prefetch_range(values, indptr[i], indptr[i + 1])


@njit(**JIT_OPTIONS)
def prefetch_range(a, lo, hi):
    """Hint that ``a[lo:hi]`` (1-D `a`, ``0 <= lo <= hi <= len(a)``) will be
    read soon: one :func:`prefetch` per cache line."""
    step = max(1, CACHE_LINE // a.itemsize)
    for p in range(lo, hi, step):
        prefetch(a, p)
