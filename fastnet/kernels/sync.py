"""Atomic counters, and a team of threads that meets at barriers inside one
parallel region.

The parallel fused step (:func:`fastnet.kernels.mlp.sgd_parallel_`) needs two
meeting points per mini-batch: every sample's error before the update, every
row's update before the next forward pass. As two ``prange`` loops per
mini-batch they cost two parallel-region launches, about 1.6 us each with
Numba's OpenMP layer on this project's 2-core machine (an empty two-iteration
``prange`` timed 20,000 times), next to 20 us of work per mini-batch of 10.
One region per driver call, the lanes meeting at the spin barrier below,
made the real driver 1.16x-1.23x faster on [784, 30, 10] float32, mini-batch
10 (paired A/B against the two-region step, same bits; more in
fastnet._config beside TEAM_WAIT_SPINS).

A spin barrier deadlocks if its lanes are not all running at once, and a
``prange`` does not promise that (fewer threads than lanes, a chunk size set by
the caller, a task-based threading layer, a region nested in another). So a
team first checks that every lane has arrived (:func:`join_team`); if one has
not within TEAM_WAIT_SPINS polls, the first lane to give up does every lane's
work itself, in lane order, and the late lanes leave. Either way each
parameter sees the same operations in the same order, so the bits do not
depend on which happened.

Without JIT (``NUMBA_DISABLE_JIT=1``) the atomics are plain Python on the
array, a ``prange`` runs its lanes one after another, and the first lane
always works alone (TEAM_WAIT_SPINS is 0 there).

The counters live in an int64 array of SYNC_SIZE entries owned by the
workspace (:class:`fastnet.workspace.TrainWorkspace`), each on its own cache
line so polling one does not slow the writes to another.
"""

from __future__ import annotations

import sys
import time

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from fastnet._config import BARRIER_SPINS, JIT_OPTIONS, TEAM_WAIT_SPINS

#: Indices of the counters in a sync array (int64, one cache line apart).
ARRIVED = 0
MODE = 8
PASSED = 16
CLAIMS = 24
SYNC_SIZE = 32

#: Values of ``sync[MODE]``: not decided yet; every lane runs its own part;
#: lane ``SOLO + k`` works alone. :func:`join_team` returns TEAM, SOLO (this
#: lane works alone) or OUT (another lane does this lane's work).
UNDECIDED = 0
TEAM = 1
SOLO = 2
OUT = -1


def atomic_add(a, i, v):
    """``a[i] += v`` as one atomic step; returns the old ``a[i]``.

    Parameters
    ----------
    a : ndarray of int64, 1-D
    i : int
    v : int

    Notes
    -----
    Compiled as LLVM's ``atomicrmw add`` with sequentially consistent
    ordering, so every write made before it is visible to a thread that
    then reads the new value with :func:`atomic_load`.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.zeros(1, np.int64)
    >>> atomic_add(c, 0, 2), atomic_add(c, 0, 1), int(c[0])
    (0, 2, 3)
    """
    old = int(a[i])
    a[i] = old + v
    return old


def atomic_load(a, i):
    """``a[i]`` read atomically (acquire ordering): writes made before the
    matching :func:`atomic_add` or :func:`atomic_cas` are visible after it."""
    return int(a[i])


def atomic_cas(a, i, expected, new):
    """If ``a[i] == expected``, set it to `new`, as one atomic step. Returns
    whether it was set.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.zeros(1, np.int64)
    >>> atomic_cas(c, 0, 0, 5), atomic_cas(c, 0, 0, 7), int(c[0])
    (True, False, 5)
    """
    if a[i] == expected:
        a[i] = new
        return True
    return False


def yield_cpu():
    """Offer this thread's core to another runnable thread.

    Compiled as a call to the C library's ``sched_yield`` (``SwitchToThread``
    on Windows), which returns at once when nothing else is waiting (about
    0.6 us on this project's machine); ``time.sleep(0)`` without JIT.
    """
    time.sleep(0)


_SCHED_YIELD = types.ExternalFunction(
    "SwitchToThread" if sys.platform == "win32" else "sched_yield", types.int32()
)


def _int64_vector(a):
    return isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.int64


def _pointer(context, builder, aryty, ary, index, index_type):
    arr = context.make_array(aryty)(context, builder, ary)
    i = context.cast(builder, index, index_type, types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, arr, [i], wraparound=False)


@intrinsic
def _llvm_atomic_add(typingctx, a, i, v):
    if not (_int64_vector(a) and isinstance(i, types.Integer) and isinstance(v, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty, ity, vty = signature.args
        ptr = _pointer(context, builder, aryty, args[0], args[1], ity)
        value = context.cast(builder, args[2], vty, types.int64)
        return builder.atomic_rmw("add", ptr, value, "seq_cst")

    return types.int64(a, i, v), codegen


@intrinsic
def _llvm_atomic_load(typingctx, a, i):
    if not (_int64_vector(a) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty, ity = signature.args
        ptr = _pointer(context, builder, aryty, args[0], args[1], ity)
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(a, i), codegen


@intrinsic
def _llvm_atomic_cas(typingctx, a, i, expected, new):
    if not (
        _int64_vector(a)
        and isinstance(i, types.Integer)
        and isinstance(expected, types.Integer)
        and isinstance(new, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        aryty, ity, ety, nty = signature.args
        ptr = _pointer(context, builder, aryty, args[0], args[1], ity)
        old = context.cast(builder, args[2], ety, types.int64)
        value = context.cast(builder, args[3], nty, types.int64)
        pair = builder.cmpxchg(ptr, old, value, "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return types.boolean(a, i, expected, new), codegen


@overload(atomic_add, jit_options=JIT_OPTIONS)
def _atomic_add(a, i, v):
    def impl(a, i, v):
        return _llvm_atomic_add(a, i, v)

    return impl


@overload(atomic_load, jit_options=JIT_OPTIONS)
def _atomic_load(a, i):
    def impl(a, i):
        return _llvm_atomic_load(a, i)

    return impl


@overload(atomic_cas, jit_options=JIT_OPTIONS)
def _atomic_cas(a, i, expected, new):
    def impl(a, i, expected, new):
        return _llvm_atomic_cas(a, i, expected, new)

    return impl


@overload(yield_cpu, jit_options=JIT_OPTIONS)
def _yield_cpu():
    def impl():
        _SCHED_YIELD()

    return impl


@njit(**JIT_OPTIONS)
def reset_team_(sync):
    """Zero the counters in `sync`, before the ``prange`` that runs a team.

    (The lanes cannot check ``numba.get_num_threads()`` themselves: reading
    it in a kernel makes Numba refuse to cache the kernel. With fewer
    threads than lanes, lane 0 works alone after TEAM_WAIT_SPINS polls.)
    """
    sync[ARRIVED] = 0
    sync[PASSED] = 0
    sync[CLAIMS] = 0
    sync[MODE] = UNDECIDED


@njit(**JIT_OPTIONS)
def join_team(sync, lane, n_lanes):
    """Lane `lane`'s entry into a team; call once, first thing in its
    ``prange`` body, after :func:`reset_team_`.

    Returns
    -------
    int
        TEAM: every lane arrived and runs its own part, meeting the others at
        :func:`barrier`. SOLO: a lane was missing after TEAM_WAIT_SPINS polls
        and this lane does every lane's work. OUT: another lane does it; leave.
    """
    if atomic_add(sync, ARRIVED, 1) + 1 == n_lanes:
        atomic_cas(sync, MODE, UNDECIDED, TEAM)
    polls = 0
    while atomic_load(sync, MODE) == UNDECIDED:
        polls += 1
        if polls >= TEAM_WAIT_SPINS:
            atomic_cas(sync, MODE, UNDECIDED, SOLO + lane)
    mode = atomic_load(sync, MODE)
    if mode == TEAM:
        return TEAM
    return SOLO if mode == SOLO + lane else OUT


@njit(**JIT_OPTIONS)
def barrier(sync, n_lanes, passed):
    """Wait until every lane of a team has called this `passed + 1` times.

    Parameters
    ----------
    sync : ndarray of int64, shape (SYNC_SIZE,)
    n_lanes : int
    passed : int
        Barriers this lane has passed so far in the region (0 at the start).

    Returns
    -------
    int
        ``passed + 1``, to pass to the next call.
    """
    atomic_add(sync, PASSED, 1)
    target = (passed + 1) * n_lanes
    polls = 0
    while atomic_load(sync, PASSED) < target:
        polls += 1
        # More threads than cores (two teams at once, a busy machine): the
        # lane waited for may be off its core; spinning on would keep it off.
        if polls > BARRIER_SPINS:
            yield_cpu()
    return passed + 1
