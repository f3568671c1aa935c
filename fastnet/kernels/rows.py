"""The first layer's two row loops, generated as vector code with the
sums (or the error) held in registers across a sample's rows.

Training spends most of its first layer in two loops over one sample's
non-zero inputs ``x[cols[q]] = v[q]``, each touching a whole stored row of
the first layer's input-major weights (``stride`` entries, see
:mod:`fastnet.layout`):

* the forward sums, ``zw = sum_q v[q] * row(cols[q])``
  (:func:`first_layer_sums_`);
* the update or gradient, ``row(cols[q]) += (scale * v[q]) * d``
  (:func:`add_rows_`).

Written as Numba loops over a runtime ``stride``, LLVM vectorizes each row
but keeps ``zw`` in memory (a load and a store of every entry per pair of
rows) and redoes its trip-count and overlap checks at every row. Here the
same operations, in the same order and so with the same bits, are emitted as
LLVM vector instructions over blocks of 8, 4, 2 or 1 vectors of
``ROW_VECTOR_BYTES`` bytes: a block's sums, or its slice of ``d``, stay
in registers for all of the sample's rows. Rows that are not whole vectors,
or longer than ``ROW_BLOCK_VECTORS`` of them, keep the plain loops
(:func:`row_fits_registers`; why in ``fastnet._config``). Measured
(/work/exp/vec/t2.py, 2026-12-01, one thread, 20,000 shuffled MNIST
images, next sample prefetched, stride 32):
the forward sums 600-610 -> 416-426 ns per image in float32, 1126-1130 ->
823-850 in float64; with the index in cache (200 images) 7.0 -> 3.5 (f32)
cycles per non-zero input.

Without JIT (``NUMBA_DISABLE_JIT=1``) the public functions run their plain
Python bodies, the obvious loops that the vector code must match bit for bit
(``tests/test_rows.py``).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from fastnet._config import JIT_OPTIONS, ROW_BLOCK_VECTORS, ROW_VECTOR_BYTES


def first_layer_sums_(params, w_off, stride, cols, v, zw):
    """``zw = sum_q v[q] * (row cols[q] of the first layer)``, over whole
    stored rows (padding included).

    Parameters
    ----------
    params : ndarray, shape (n_params,)
        Flat parameters; row ``k`` is ``params[w_off + k*stride :
        w_off + (k+1)*stride]``.
    w_off, stride : int
        The first layer's offset and stored row length (``table[0, W_OFF]``,
        ``table[0, STRIDE]``).
    cols, v : ndarray
        A sample's non-zero columns (increasing, each ``< W_ROWS``) and
        values, same dtype as `params` (:func:`fastnet.kernels.mlp.sample_inputs`).
    zw : ndarray, shape (>= stride,)
        Entries ``0:stride`` overwritten; must not overlap `params`.

    Notes
    -----
    Adds the non-zero inputs two at a time, ``zw += (x0 * row0 + x1 *
    row1)``, the last one alone when their number is odd: half the additions
    into ``zw`` (measured: the forward pass 17% faster on [784, 30, 10] when
    ``zw`` was in memory). The order is fixed, so the bits do not depend on
    the thread count or on the vector width. Used by the loop kernels and by
    the dense driver, where it replaced a BLAS product on gathered inputs.

    Examples
    --------
    >>> import numpy as np
    >>> params = np.arange(12.0)                      # 3 rows of stride 4
    >>> zw = np.empty(4)
    >>> first_layer_sums_(params, 0, 4, np.array([0, 2]), np.array([1.0, 0.5]), zw)
    >>> zw.tolist()
    [4.0, 5.5, 7.0, 8.5]
    """
    sum_rows_loop_(params, w_off, stride, cols, v, zw)


def add_rows_(out, w_off, stride, cols, v, q_lo, q_hi, scale, d):
    """``out[row cols[q]] += (scale * v[q]) * d`` for ``q_lo <= q < q_hi``,
    in that order, over whole stored rows.

    Parameters
    ----------
    out : ndarray, shape (n,)
        Flat parameters or gradient; row ``k`` is ``out[w_off + k*stride :
        w_off + (k+1)*stride]``. Modified in place.
    w_off, stride : int
    cols, v : ndarray
        A sample's non-zero columns (increasing, so no row is named twice)
        and values, same dtype as `out`.
    q_lo, q_hi : int
        The range of `cols` to apply.
    scale : float (dtype of `out`)
    d : ndarray, shape (>= stride,)
        The sample's error for this layer (padded entries zero); must not
        overlap `out`.

    Examples
    --------
    >>> import numpy as np
    >>> out = np.zeros(6)                             # 3 rows of stride 2
    >>> cols, v, d = np.array([1, 2]), np.array([1.0, 3.0]), np.array([2.0, 4.0])
    >>> add_rows_(out, 0, 2, cols, v, 0, 2, -0.5, d)
    >>> out.tolist()
    [0.0, 0.0, -1.0, -2.0, -3.0, -6.0]
    """
    add_rows_loop_(out, w_off, stride, cols, v, q_lo, q_hi, out.dtype.type(scale), d)


@njit(**JIT_OPTIONS)
def row_fits_registers(a, stride):
    """Whether rows of `stride` entries of `a`'s dtype take the vector code:
    whole vectors, at most ROW_BLOCK_VECTORS of them. Other rows run as
    plain loops (:mod:`fastnet.layout` pads the first layer's rows to a
    multiple of ROW_PAD entries where that is cheap)."""
    size = stride * a.itemsize
    return size <= ROW_BLOCK_VECTORS * ROW_VECTOR_BYTES and size % ROW_VECTOR_BYTES == 0


@njit(**JIT_OPTIONS)
def sum_rows_loop_(params, w_off, stride, cols, v, zw):
    """:func:`first_layer_sums_` as a plain loop, a row at a time (LLVM
    vectorizes the loop over a row but keeps ``zw`` in memory): for rows
    that do not fit the registers and, without JIT, for all."""
    for j in range(stride):
        zw[j] = 0
    nq = cols.shape[0]
    q = 0
    while q + 1 < nq:
        k0 = cols[q]
        k1 = cols[q + 1]
        x0 = v[q]
        x1 = v[q + 1]
        w0 = params[w_off + k0 * stride : w_off + (k0 + 1) * stride]
        w1 = params[w_off + k1 * stride : w_off + (k1 + 1) * stride]
        for j in range(stride):
            zw[j] += x0 * w0[j] + x1 * w1[j]
        q += 2
    if q < nq:
        k = cols[q]
        xk = v[q]
        w = params[w_off + k * stride : w_off + (k + 1) * stride]
        for j in range(stride):
            zw[j] += xk * w[j]


@njit(**JIT_OPTIONS)
def add_rows_loop_(out, w_off, stride, cols, v, q_lo, q_hi, scale, d):
    """:func:`add_rows_` as a plain loop, a row at a time (LLVM vectorizes
    the loop over a row): for rows that do not fit the registers and,
    without JIT, for all."""
    for q in range(q_lo, q_hi):
        k = cols[q]
        c = scale * v[q]
        g = out[w_off + k * stride : w_off + (k + 1) * stride]
        for j in range(stride):
            g[j] += c * d[j]


# --- vector code ------------------------------------------------------------


def _row_arrays_ok(*arrays):
    dtype = arrays[0].dtype
    return all(
        isinstance(a, types.Array) and a.ndim == 1 and a.dtype == dtype for a in arrays
    ) and isinstance(dtype, types.Float)


class _Emitter:
    """LLVM IR helpers shared by the two block kernels: element pointers of
    1-D arrays, int64 casts and vector splats."""

    def __init__(self, context, builder, dtype):
        self.context = context
        self.builder = builder
        self.fty = context.get_value_type(dtype)
        self.width = ROW_VECTOR_BYTES // (dtype.bitwidth // 8)
        self.vec = ir.VectorType(self.fty, self.width)
        self.align = context.get_abi_alignment(self.fty)
        self.i64 = ir.IntType(64)

    def array(self, aryty, value):
        return self.context.make_array(aryty)(self.context, self.builder, value)

    def int64(self, value, ty):
        return self.context.cast(self.builder, value, ty, types.int64)

    def item(self, aryty, ary, index):
        return cgutils.get_item_pointer(
            self.context, self.builder, aryty, ary, [index], wraparound=False
        )

    def load(self, aryty, ary, index):
        return self.builder.load(self.item(aryty, ary, index))

    def load_index(self, aryty, ary, index):
        return self.int64(self.load(aryty, ary, index), aryty.dtype)

    def vector_ptr(self, aryty, ary, index):
        return self.builder.bitcast(self.item(aryty, ary, index), self.vec.as_pointer())

    def load_vectors(self, aryty, ary, start, n):
        b = self.builder
        return [
            b.load(
                self.vector_ptr(aryty, ary, b.add(start, self.const(i * self.width))),
                align=self.align,
            )
            for i in range(n)
        ]

    def store_vectors(self, values, aryty, ary, start):
        b = self.builder
        for i, value in enumerate(values):
            ptr = self.vector_ptr(aryty, ary, b.add(start, self.const(i * self.width)))
            b.store(value, ptr, align=self.align)

    def const(self, n):
        return ir.Constant(self.i64, n)

    def splat(self, x):
        b = self.builder
        undef = ir.Constant(self.vec, ir.Undefined)
        i32 = ir.IntType(32)
        first = b.insert_element(undef, x, ir.Constant(i32, 0))
        return b.shuffle_vector(
            first, undef, ir.Constant(ir.VectorType(i32, self.width), [0] * self.width)
        )


def _make_sums_block(n_vec):
    """An intrinsic ``block(params, base, stride, cols, v, zw)``: columns
    ``0 : n_vec*width`` of :func:`first_layer_sums_` for rows starting at
    ``base + cols[q]*stride``, sums kept in `n_vec` vector registers and
    stored into ``zw[0 : n_vec*width]`` at the end."""

    @intrinsic
    def block(typingctx, params, base, stride, cols, v, zw):
        if not (
            _row_arrays_ok(params, v, zw)
            and isinstance(cols, types.Array)
            and cols.ndim == 1
            and isinstance(cols.dtype, types.Integer)
            and isinstance(base, types.Integer)
            and isinstance(stride, types.Integer)
        ):
            return None

        def codegen(context, builder, sig, args):
            pty, bty, sty, cty, vty, zty = sig.args
            e = _Emitter(context, builder, pty.dtype)
            b = builder
            p_arr = e.array(pty, args[0])
            base_v = e.int64(args[1], bty)
            stride_v = e.int64(args[2], sty)
            c_arr = e.array(cty, args[3])
            v_arr = e.array(vty, args[4])
            z_arr = e.array(zty, args[5])
            n = b.extract_value(c_arr.shape, 0)
            zero = ir.Constant(e.vec, [ir.Constant(e.fty, 0.0)] * e.width)

            def row(q):
                k = e.load_index(cty, c_arr, q)
                return e.load_vectors(pty, p_arr, b.add(base_v, b.mul(k, stride_v)), n_vec)

            entry = b.block
            pairs = b.append_basic_block("pairs")
            pairs_end = b.append_basic_block("pairs_end")
            n_pairs = b.sdiv(n, e.const(2))
            b.cbranch(b.icmp_signed(">", n_pairs, e.const(0)), pairs, pairs_end)

            b.position_at_end(pairs)
            p = b.phi(e.i64)
            acc = [b.phi(e.vec) for _ in range(n_vec)]
            q0 = b.mul(p, e.const(2))
            q1 = b.add(q0, e.const(1))
            x0 = e.splat(e.load(vty, v_arr, q0))
            x1 = e.splat(e.load(vty, v_arr, q1))
            w0 = row(q0)
            w1 = row(q1)
            # zw + (x0 * row0 + x1 * row1), rounded as sum_rows_loop_ does.
            new = [
                b.fadd(a, b.fadd(b.fmul(x0, r0), b.fmul(x1, r1)))
                for a, r0, r1 in zip(acc, w0, w1, strict=True)
            ]
            p_next = b.add(p, e.const(1))
            pairs_tail = b.block
            b.cbranch(b.icmp_signed("<", p_next, n_pairs), pairs, pairs_end)
            p.add_incoming(e.const(0), entry)
            p.add_incoming(p_next, pairs_tail)
            for a, value in zip(acc, new, strict=True):
                a.add_incoming(zero, entry)
                a.add_incoming(value, pairs_tail)

            b.position_at_end(pairs_end)
            sums = [b.phi(e.vec) for _ in range(n_vec)]
            for s, value in zip(sums, new, strict=True):
                s.add_incoming(zero, entry)
                s.add_incoming(value, pairs_tail)
            odd = b.icmp_signed("!=", b.mul(n_pairs, e.const(2)), n)
            before = b.block
            with b.if_then(odd):
                last = b.sub(n, e.const(1))
                x = e.splat(e.load(vty, v_arr, last))
                with_last = [b.fadd(s, b.fmul(x, r)) for s, r in zip(sums, row(last), strict=True)]
                odd_end = b.block
            result = [b.phi(e.vec) for _ in range(n_vec)]
            for r, s, t in zip(result, sums, with_last, strict=True):
                r.add_incoming(s, before)
                r.add_incoming(t, odd_end)
            e.store_vectors(result, zty, z_arr, e.const(0))
            return context.get_dummy_value()

        return types.void(params, base, stride, cols, v, zw), codegen

    return block


def _make_add_block(n_vec):
    """An intrinsic ``block(out, base, stride, cols, v, q_lo, q_hi, scale,
    d)``: columns ``0 : n_vec*width`` of :func:`add_rows_` for rows starting
    at ``base + cols[q]*stride``, with ``d[0 : n_vec*width]`` loaded once
    into registers."""

    @intrinsic
    def block(typingctx, out, base, stride, cols, v, q_lo, q_hi, scale, d):
        if not (
            _row_arrays_ok(out, v, d)
            and isinstance(cols, types.Array)
            and cols.ndim == 1
            and isinstance(cols.dtype, types.Integer)
            and all(isinstance(t, types.Integer) for t in (base, stride, q_lo, q_hi))
            and scale == out.dtype
        ):
            return None

        def codegen(context, builder, sig, args):
            oty, bty, sty, cty, vty, lty, hty, _, dty = sig.args
            e = _Emitter(context, builder, oty.dtype)
            b = builder
            o_arr = e.array(oty, args[0])
            base_v = e.int64(args[1], bty)
            stride_v = e.int64(args[2], sty)
            c_arr = e.array(cty, args[3])
            v_arr = e.array(vty, args[4])
            lo = e.int64(args[5], lty)
            hi = e.int64(args[6], hty)
            scale_v = args[7]
            dv = e.load_vectors(dty, e.array(dty, args[8]), e.const(0), n_vec)

            entry = b.block
            loop = b.append_basic_block("rows")
            done = b.append_basic_block("rows_end")
            b.cbranch(b.icmp_signed("<", lo, hi), loop, done)
            b.position_at_end(loop)
            q = b.phi(e.i64)
            c = e.splat(b.fmul(scale_v, e.load(vty, v_arr, q)))
            start = b.add(base_v, b.mul(e.load_index(cty, c_arr, q), stride_v))
            old = e.load_vectors(oty, o_arr, start, n_vec)
            e.store_vectors(
                [b.fadd(w, b.fmul(c, x)) for w, x in zip(old, dv, strict=True)], oty, o_arr, start
            )
            q_next = b.add(q, e.const(1))
            b.cbranch(b.icmp_signed("<", q_next, hi), loop, done)
            q.add_incoming(lo, entry)
            q.add_incoming(q_next, b.block)
            b.position_at_end(done)
            return context.get_dummy_value()

        return types.void(out, base, stride, cols, v, q_lo, q_hi, scale, d), codegen

    return block


# The dispatch below takes a row of up to 8 vectors as at most one block of
# each of these sizes.
if ROW_BLOCK_VECTORS != 8:
    raise ImportError("fastnet.kernels.rows dispatches blocks of 8, 4, 2 and 1 vectors")
_sums8, _sums4, _sums2, _sums1 = (_make_sums_block(n) for n in (8, 4, 2, 1))
_add8, _add4, _add2, _add1 = (_make_add_block(n) for n in (8, 4, 2, 1))


def _vector_width(array):
    return ROW_VECTOR_BYTES // (array.dtype.bitwidth // 8)


@overload(first_layer_sums_, jit_options=JIT_OPTIONS)
def _first_layer_sums(params, w_off, stride, cols, v, zw):
    width = _vector_width(params)

    def impl(params, w_off, stride, cols, v, zw):
        if not row_fits_registers(params, stride):
            sum_rows_loop_(params, w_off, stride, cols, v, zw)
            return
        # At most one block each of 8, 4, 2 and 1 vectors.
        j = 0
        if stride - j >= 8 * width:
            _sums8(params, w_off + j, stride, cols, v, zw[j:])
            j += 8 * width
        if stride - j >= 4 * width:
            _sums4(params, w_off + j, stride, cols, v, zw[j:])
            j += 4 * width
        if stride - j >= 2 * width:
            _sums2(params, w_off + j, stride, cols, v, zw[j:])
            j += 2 * width
        if stride - j >= width:
            _sums1(params, w_off + j, stride, cols, v, zw[j:])

    return impl


@overload(add_rows_, jit_options=JIT_OPTIONS)
def _add_rows(out, w_off, stride, cols, v, q_lo, q_hi, scale, d):
    width = _vector_width(out)

    def impl(out, w_off, stride, cols, v, q_lo, q_hi, scale, d):
        c = out.dtype.type(scale)
        if not row_fits_registers(out, stride):
            add_rows_loop_(out, w_off, stride, cols, v, q_lo, q_hi, c, d)
            return
        j = 0
        if stride - j >= 8 * width:
            _add8(out, w_off + j, stride, cols, v, q_lo, q_hi, c, d[j:])
            j += 8 * width
        if stride - j >= 4 * width:
            _add4(out, w_off + j, stride, cols, v, q_lo, q_hi, c, d[j:])
            j += 4 * width
        if stride - j >= 2 * width:
            _add2(out, w_off + j, stride, cols, v, q_lo, q_hi, c, d[j:])
            j += 2 * width
        if stride - j >= width:
            _add1(out, w_off + j, stride, cols, v, q_lo, q_hi, c, d[j:])

    return impl
