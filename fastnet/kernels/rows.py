"""The row loops of training, generated as vector code with the sums (or
the error) held in registers across a sample's rows.

Training spends most of a mini-batch-10 step in four loops over the rows of
the input-major weights (row ``k`` holds the weights leaving input ``k``,
:mod:`fastnet.layout`):

* the first layer's forward sums over a sample's non-zero inputs
  ``x[cols[q]] = v[q]``, ``zw = sum_q v[q] * row(cols[q])``
  (:func:`first_layer_sums_`), and its update or gradient,
  ``row(cols[q]) += (scale * v[q]) * d`` (:func:`add_rows_`);
* the same two for a later layer, over every non-zero activation of the
  layer before (:func:`layer_sums_`, :func:`layer_add_`).

Written as Numba loops over a runtime row length, LLVM vectorizes each row
but keeps the sums in memory (a load, an add and a store of every entry per
row, one after the other) and redoes its trip-count and overlap checks at
every row. Here the same operations, in the same order and so with the same
bits, are emitted as LLVM vector instructions over blocks of 8, 4, 2 or 1
vectors of ``ROW_VECTOR_BYTES`` bytes, the sums or the error staying in
registers for all the rows; a later layer's last partial vector is read and
written through a lane mask. First-layer rows that are not whole vectors, or
longer than ``ROW_BLOCK_VECTORS`` of them, keep the plain loops
(:func:`row_fits_registers`; why in ``fastnet._config``).

Measured (one thread, 20,000 shuffled MNIST images, next sample
prefetched, 2026-12-01): the first layer's forward sums on rows of 32,
600-610 -> 416-426 ns per image in float32, 1126-1130 -> 823-850 in float64
(/work/exp/vec/t2.py); with the index in cache 7.0 -> 3.5 cycles per
non-zero input. Paired A/B of the whole mini-batch-10 driver
(/work/exp/ab_fused.py, [784, 30, 10], 2 threads, same bits): the first
layer's kernels 1.17x (float32), 1.06x (float64); the later layer's two on
top of them 1.20x / 1.17x, [784, 100, 10] float32 1.27x.

Without JIT (``NUMBA_DISABLE_JIT=1``) the public functions run their plain
Python bodies, the obvious loops that the vector code must match bit for bit
(``tests/test_rows.py``).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from fastnet._config import BATCH_OUTPUTS, JIT_OPTIONS, ROW_BLOCK_VECTORS, ROW_VECTOR_BYTES


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


def layer_sums_(params, w_off, stride, b_off, a, z):
    """``z = b + sum_k a[k] * (row k of a later layer)``: a layer's weighted
    input from the previous layer's activations `a`, the sum over ``k`` in
    increasing order, zero activations skipped.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    w_off, stride, b_off : int
        The layer's ``table`` entries ``W_OFF``, ``STRIDE``, ``B_OFF``.
    a : ndarray, shape (n_in,)
    z : ndarray, shape (n_out,)
        Overwritten; ``n_out <= stride``. Must not overlap `params`.

    Examples
    --------
    >>> import numpy as np
    >>> params = np.array([1.0, 2.0, 3.0, 4.0, 0.5, -0.5])  # 2 rows of 2, then b
    >>> z = np.empty(2)
    >>> layer_sums_(params, 0, 2, 4, np.array([0.0, 2.0]), z)  # input 0 skipped
    >>> z.tolist()
    [6.5, 7.5]
    """
    layer_sums_loop_(params, w_off, stride, b_off, a, z)


@njit(**JIT_OPTIONS)
def layer_sums_loop_(params, w_off, stride, b_off, a, z):
    """:func:`layer_sums_` as plain loops (without JIT)."""
    n_out = z.shape[0]
    for j in range(n_out):
        z[j] = params[b_off + j]
    for k in range(a.shape[0]):
        ak = a[k]
        if ak != 0:
            w = params[w_off + k * stride : w_off + k * stride + n_out]
            for j in range(n_out):
                z[j] += ak * w[j]


def layer_add_(out, w_off, stride, a, scale, d):
    """``out[row k] += (scale * a[k]) * d`` for every non-zero ``a[k]``: one
    sample's term of a later layer's weight update (or gradient).

    Parameters
    ----------
    out : ndarray, shape (n_params,)
        Modified in place: ``len(d)`` entries of rows ``0 .. len(a)-1``.
    w_off, stride : int
    a : ndarray, shape (n_in,)
    scale : float (dtype of `out`)
    d : ndarray, shape (n_out,)
        Must not overlap `out`.

    Examples
    --------
    >>> import numpy as np
    >>> out = np.zeros(4)                             # 2 rows of 2
    >>> layer_add_(out, 0, 2, np.array([2.0, 0.0]), -0.5, np.array([1.0, 3.0]))
    >>> out.tolist()
    [-1.0, -3.0, 0.0, 0.0]
    """
    layer_add_loop_(out, w_off, stride, a, out.dtype.type(scale), d)


@njit(**JIT_OPTIONS)
def layer_add_loop_(out, w_off, stride, a, scale, d):
    """:func:`layer_add_` as plain loops (without JIT)."""
    n_out = d.shape[0]
    for k in range(a.shape[0]):
        ak = a[k]
        if ak != 0:
            c = scale * ak
            g = out[w_off + k * stride : w_off + k * stride + n_out]
            for j in range(n_out):
                g[j] += c * d[j]


def batch_sums_(params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward):
    """Weighted sums of a batch of samples held as columns, every sample's
    arithmetic that of :func:`layer_sums_` (`forward`) or of the backward
    pass's dot products (not `forward`), a vector of samples at a time.

    For ``o < n_out`` and sample columns ``r < n_cols``, with the
    coefficients ``c[q, o] = params[w_off + q*q_stride + o*o_stride]``:

    * `forward`: ``out[o, r] = params[b_off + o] + sum_q xt[q, r] * c[q, o]``,
      ``q`` in increasing order, zero ``xt[q, r]`` skipped (a layer's
      weighted inputs from the activations before it: ``q_stride`` is the
      layer's stride, ``o_stride`` 1);
    * not `forward`: ``out[o, r] = 0 + sum_q c[q, o] * xt[q, r]``, ``q`` in
      increasing order, nothing skipped (the errors ``w^T delta``: ``q_stride``
      1, ``o_stride`` the layer's stride; `b_off` unused).

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    w_off, q_stride, o_stride, b_off : int
    xt : ndarray, shape (>= n_q, ld), C-contiguous
        One row per summed index, one column per sample.
    n_q, n_out, n_cols : int
        ``0 <= n_cols <= ld``.
    out : ndarray, shape (>= n_out, ld), C-contiguous
        Rows ``0:n_out`` overwritten in columns ``0:n_cols``; the vector
        code also writes the columns up to the next whole vector (sums over
        whatever `xt` holds there). Must not overlap `params` or `xt`.
    forward : bool

    Notes
    -----
    Replaced, in the fused step (:func:`fastnet.kernels.mlp.sample_errors_`),
    one call of :func:`layer_sums_` and one loop of dot products per sample:
    those sums ran one after the other, each addition waiting on the one
    before; here the samples of a vector run side by side and
    BATCH_OUTPUTS outputs share each load of `xt` (the figures are in
    ``sample_errors_``). Same bits.

    Examples
    --------
    >>> import numpy as np
    >>> params = np.array([1.0, 2.0, 3.0, 4.0, 0.5, -0.5])  # 2 rows of 2, then b
    >>> xt = np.array([[0.0, 1.0], [2.0, 1.0]])            # 2 inputs, 2 samples
    >>> out = np.zeros((2, 2))
    >>> batch_sums_(params, 0, 2, 1, 4, xt, 2, 2, 2, out, True)
    >>> out.tolist()                                     # column r is layer_sums_
    [[6.5, 4.5], [7.5, 5.5]]
    """
    batch_sums_loop_(params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward)


@njit(**JIT_OPTIONS)
def padded_columns(a, n_cols):
    """`n_cols` rounded up to whole vectors of `a`'s dtype: the row length
    :func:`batch_sums_` computes in (give it arrays with rows this long)."""
    width = ROW_VECTOR_BYTES // a.itemsize
    return (n_cols + width - 1) // width * width


@njit(**JIT_OPTIONS)
def batch_sums_loop_(
    params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward
):
    """:func:`batch_sums_` as plain loops: for columns that are not whole
    vectors."""
    zero = params.dtype.type(0)
    for o in range(n_out):
        for r in range(n_cols):
            s = params[b_off + o] if forward else zero
            for q in range(n_q):
                x = xt[q, r]
                c = params[w_off + q * q_stride + o * o_stride]
                if forward:
                    if x != 0:
                        s = s + x * c
                else:
                    s = s + c * x
            out[o, r] = s


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
    """LLVM IR helpers shared by the block kernels: element pointers of 1-D
    arrays, int64 casts, vector splats, lane masks and masked loads/stores."""

    def __init__(self, context, builder, dtype):
        self.context = context
        self.builder = builder
        self.fty = context.get_value_type(dtype)
        self.width = ROW_VECTOR_BYTES // (dtype.bitwidth // 8)
        self.vec = ir.VectorType(self.fty, self.width)
        self.align = context.get_abi_alignment(self.fty)
        self.i64 = ir.IntType(64)
        self.zero = ir.Constant(self.fty, 0.0)
        self.zero_vector = ir.Constant(self.vec, [self.zero] * self.width)

    def unpack(self, sig, args):
        """The intrinsic's arguments: arrays as ``(type, struct)`` pairs,
        integers as int64 values, floats as they are."""
        out = []
        for ty, value in zip(sig.args, args, strict=True):
            if isinstance(ty, types.Array):
                out.append((ty, self.context.make_array(ty)(self.context, self.builder, value)))
            elif isinstance(ty, types.Integer):
                out.append(self.context.cast(self.builder, value, ty, types.int64))
            else:
                out.append(value)
        return out

    def length(self, array):
        return self.builder.extract_value(array[1].shape, 0)

    def item(self, array, index):
        aryty, ary = array
        return cgutils.get_item_pointer(
            self.context, self.builder, aryty, ary, [index], wraparound=False
        )

    def load(self, array, index):
        return self.builder.load(self.item(array, index))

    def load_index(self, array, index):
        value = self.load(array, index)
        return self.context.cast(self.builder, value, array[0].dtype, types.int64)

    def vector_ptr(self, array, index):
        return self.builder.bitcast(self.item(array, index), self.vec.as_pointer())

    def load_vectors(self, array, start, n):
        b = self.builder
        return [
            b.load(
                self.vector_ptr(array, b.add(start, self.const(i * self.width))),
                align=self.align,
            )
            for i in range(n)
        ]

    def store_vectors(self, values, array, start):
        b = self.builder
        for i, value in enumerate(values):
            ptr = self.vector_ptr(array, b.add(start, self.const(i * self.width)))
            b.store(value, ptr, align=self.align)

    def const(self, n):
        return ir.Constant(self.i64, n)

    def lane_mask(self, n_lanes):
        """``<i < n_lanes for each lane i>`` for a runtime int64 `n_lanes`."""
        lanes = ir.Constant(ir.VectorType(self.i64, self.width), list(range(self.width)))
        return self.builder.icmp_signed(
            "<", lanes, self.splat(n_lanes, ir.VectorType(self.i64, self.width))
        )

    def masked_load(self, ptr, mask):
        """The lanes of ``*ptr`` where `mask` holds, zero elsewhere; the
        other lanes' memory is not touched."""
        i32 = ir.IntType(32)
        fn = self._intrinsic("load", self.vec, (self.vec.as_pointer(), i32, mask.type, self.vec))
        return self.builder.call(fn, [ptr, ir.Constant(i32, self.align), mask, self.zero_vector])

    def masked_store(self, value, ptr, mask):
        """Store the lanes of `value` where `mask` holds."""
        i32 = ir.IntType(32)
        args = (self.vec, self.vec.as_pointer(), i32, mask.type)
        fn = self._intrinsic("store", ir.VoidType(), args)
        self.builder.call(fn, [value, ptr, ir.Constant(i32, self.align), mask])

    def _intrinsic(self, op, result, args):
        bits = 32 if isinstance(self.fty, ir.FloatType) else 64
        name = f"llvm.masked.{op}.v{self.width}f{bits}.p0"
        fnty = ir.FunctionType(result, args)
        return cgutils.get_or_insert_function(self.builder.module, fnty, name)

    def splat(self, x, vec=None):
        """`x` in every lane of a `vec` (default: the float vector)."""
        vec = self.vec if vec is None else vec
        b = self.builder
        undef = ir.Constant(vec, ir.Undefined)
        i32 = ir.IntType(32)
        first = b.insert_element(undef, x, ir.Constant(i32, 0))
        return b.shuffle_vector(
            first, undef, ir.Constant(ir.VectorType(i32, vec.count), [0] * vec.count)
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
            e = _Emitter(context, builder, sig.args[0].dtype)
            b = builder
            p_arr, base_v, stride_v, c_arr, v_arr, z_arr = e.unpack(sig, args)
            n = e.length(c_arr)
            zero = e.zero_vector

            def row(q):
                k = e.load_index(c_arr, q)
                return e.load_vectors(p_arr, b.add(base_v, b.mul(k, stride_v)), n_vec)

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
            x0 = e.splat(e.load(v_arr, q0))
            x1 = e.splat(e.load(v_arr, q1))
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
                x = e.splat(e.load(v_arr, last))
                with_last = [b.fadd(s, b.fmul(x, r)) for s, r in zip(sums, row(last), strict=True)]
                odd_end = b.block
            result = [b.phi(e.vec) for _ in range(n_vec)]
            for r, s, t in zip(result, sums, with_last, strict=True):
                r.add_incoming(s, before)
                r.add_incoming(t, odd_end)
            e.store_vectors(result, z_arr, e.const(0))
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
            e = _Emitter(context, builder, sig.args[0].dtype)
            b = builder
            o_arr, base_v, stride_v, c_arr, v_arr, lo, hi, scale_v, d_arr = e.unpack(sig, args)
            dv = e.load_vectors(d_arr, e.const(0), n_vec)

            entry = b.block
            loop = b.append_basic_block("rows")
            done = b.append_basic_block("rows_end")
            b.cbranch(b.icmp_signed("<", lo, hi), loop, done)
            b.position_at_end(loop)
            q = b.phi(e.i64)
            c = e.splat(b.fmul(scale_v, e.load(v_arr, q)))
            start = b.add(base_v, b.mul(e.load_index(c_arr, q), stride_v))
            old = e.load_vectors(o_arr, start, n_vec)
            e.store_vectors(
                [b.fadd(w, b.fmul(c, x)) for w, x in zip(old, dv, strict=True)], o_arr, start
            )
            q_next = b.add(q, e.const(1))
            b.cbranch(b.icmp_signed("<", q_next, hi), loop, done)
            q.add_incoming(lo, entry)
            q.add_incoming(q_next, b.block)
            b.position_at_end(done)
            return context.get_dummy_value()

        return types.void(out, base, stride, cols, v, q_lo, q_hi, scale, d), codegen

    return block


def _make_layer_block(n_vec, masked):
    """An intrinsic ``block(params, w_base, stride, b_base, a, z, n_lanes)``:
    ``z[j] = params[b_base + j] + sum_k a[k] * params[w_base + k*stride + j]``
    for the block's lanes, the sum over ``k`` in increasing order skipping
    zero ``a[k]``, kept in `n_vec` vector registers. With `masked`, one
    vector of which only the first `n_lanes` lanes are read and written."""

    @intrinsic
    def block(typingctx, params, w_base, stride, b_base, a, z, n_lanes):
        if not (
            _row_arrays_ok(params, a, z)
            and all(isinstance(t, types.Integer) for t in (w_base, stride, b_base, n_lanes))
        ):
            return None

        def codegen(context, builder, sig, args):
            e = _Emitter(context, builder, sig.args[0].dtype)
            b = builder
            p_arr, w_base, stride_v, b_base, a_arr, z_arr, n_lanes = e.unpack(sig, args)
            mask = e.lane_mask(n_lanes) if masked else None
            n_in = e.length(a_arr)

            def vectors(array, start):
                if masked:
                    return [e.masked_load(e.vector_ptr(array, start), mask)]
                return e.load_vectors(array, start, n_vec)

            init = vectors(p_arr, b_base)
            entry = b.block
            loop = b.append_basic_block("inputs")
            done = b.append_basic_block("inputs_end")
            b.cbranch(b.icmp_signed(">", n_in, e.const(0)), loop, done)
            b.position_at_end(loop)
            k = b.phi(e.i64)
            acc = [b.phi(e.vec) for _ in range(len(init))]
            x = e.load(a_arr, k)
            xs = e.splat(x)
            row = vectors(p_arr, b.add(w_base, b.mul(k, stride_v)))
            keep = b.fcmp_unordered("!=", x, e.zero)
            new = [
                b.select(keep, b.fadd(s_, b.fmul(xs, w)), s_)
                for s_, w in zip(acc, row, strict=True)
            ]
            k_next = b.add(k, e.const(1))
            b.cbranch(b.icmp_signed("<", k_next, n_in), loop, done)
            k.add_incoming(e.const(0), entry)
            k.add_incoming(k_next, loop)
            for s_, init_v, value in zip(acc, init, new, strict=True):
                s_.add_incoming(init_v, entry)
                s_.add_incoming(value, loop)
            b.position_at_end(done)
            out = []
            for init_v, value in zip(init, new, strict=True):
                phi = b.phi(e.vec)
                phi.add_incoming(init_v, entry)
                phi.add_incoming(value, loop)
                out.append(phi)
            if masked:
                e.masked_store(out[0], e.vector_ptr(z_arr, e.const(0)), mask)
            else:
                e.store_vectors(out, z_arr, e.const(0))
            return context.get_dummy_value()

        return types.void(params, w_base, stride, b_base, a, z, n_lanes), codegen

    return block


def _make_layer_add_block(n_vec, masked):
    """An intrinsic ``block(out, w_base, stride, a, scale, d, n_lanes)``:
    ``out[w_base + k*stride + j] += (scale * a[k]) * d[j]`` for every ``k``
    with a non-zero ``a[k]``, ``d`` held in `n_vec` vector registers. With
    `masked`, one vector of which only the first `n_lanes` lanes are read
    and written."""

    @intrinsic
    def block(typingctx, out, w_base, stride, a, scale, d, n_lanes):
        if not (
            _row_arrays_ok(out, a, d)
            and all(isinstance(t, types.Integer) for t in (w_base, stride, n_lanes))
            and scale == out.dtype
        ):
            return None

        def codegen(context, builder, sig, args):
            e = _Emitter(context, builder, sig.args[0].dtype)
            b = builder
            o_arr, w_base, stride_v, a_arr, scale_v, d_arr, n_lanes = e.unpack(sig, args)
            mask = e.lane_mask(n_lanes) if masked else None
            n_in = e.length(a_arr)
            if masked:
                dv = [e.masked_load(e.vector_ptr(d_arr, e.const(0)), mask)]
            else:
                dv = e.load_vectors(d_arr, e.const(0), n_vec)

            entry = b.block
            loop = b.append_basic_block("inputs")
            add = b.append_basic_block("add")
            latch = b.append_basic_block("next")
            done = b.append_basic_block("inputs_end")
            b.cbranch(b.icmp_signed(">", n_in, e.const(0)), loop, done)
            b.position_at_end(loop)
            k = b.phi(e.i64)
            x = e.load(a_arr, k)
            b.cbranch(b.fcmp_unordered("!=", x, e.zero), add, latch)
            b.position_at_end(add)
            c = e.splat(b.fmul(scale_v, x))
            start = b.add(w_base, b.mul(k, stride_v))
            if masked:
                ptr = e.vector_ptr(o_arr, start)
                old = e.masked_load(ptr, mask)
                e.masked_store(b.fadd(old, b.fmul(c, dv[0])), ptr, mask)
            else:
                old = e.load_vectors(o_arr, start, n_vec)
                new = [b.fadd(w, b.fmul(c, x_)) for w, x_ in zip(old, dv, strict=True)]
                e.store_vectors(new, o_arr, start)
            b.branch(latch)
            b.position_at_end(latch)
            k_next = b.add(k, e.const(1))
            b.cbranch(b.icmp_signed("<", k_next, n_in), loop, done)
            k.add_incoming(e.const(0), entry)
            k.add_incoming(k_next, latch)
            b.position_at_end(done)
            return context.get_dummy_value()

        return types.void(out, w_base, stride, a, scale, d, n_lanes), codegen

    return block


def _make_batch_block(n_vec, n_o, forward):
    """An intrinsic ``block(params, w_base, q_stride, o_stride, b_base, xt,
    ld, n_q, out)``: :func:`batch_sums_` for outputs ``0:n_o`` and columns
    ``0 : n_vec*width`` of the flat row-major `xt` and `out` (rows of `ld`
    entries), the sums of all of them kept in registers across ``q``."""

    @intrinsic
    def block(typingctx, params, w_base, q_stride, o_stride, b_base, xt, ld, n_q, out):
        if not (
            _row_arrays_ok(params, xt, out)
            and all(isinstance(t, types.Integer) for t in (w_base, q_stride, o_stride, b_base))
            and all(isinstance(t, types.Integer) for t in (ld, n_q))
        ):
            return None

        def codegen(context, builder, sig, args):
            e = _Emitter(context, builder, sig.args[0].dtype)
            b = builder
            p_arr, w_base, q_stride, o_stride, b_base, x_arr, ld, n_q, o_arr = e.unpack(sig, args)
            if forward:
                init = [
                    [e.splat(e.load(p_arr, b.add(b_base, e.const(o))))] * n_vec for o in range(n_o)
                ]
            else:
                init = [[e.zero_vector] * n_vec for _ in range(n_o)]
            entry = b.block
            loop = b.append_basic_block("summed")
            done = b.append_basic_block("summed_end")
            b.cbranch(b.icmp_signed(">", n_q, e.const(0)), loop, done)
            b.position_at_end(loop)
            q = b.phi(e.i64)
            acc = [[b.phi(e.vec) for _ in range(n_vec)] for _ in range(n_o)]
            xs = e.load_vectors(x_arr, b.mul(q, ld), n_vec)
            row = b.add(w_base, b.mul(q, q_stride))
            keep = [b.fcmp_unordered("!=", x, e.zero_vector) for x in xs]
            new = []
            for o in range(n_o):
                c = e.splat(e.load(p_arr, b.add(row, b.mul(o_stride, e.const(o)))))
                if forward:
                    new.append(
                        [
                            b.select(k, b.fadd(s, b.fmul(x, c)), s)
                            for s, x, k in zip(acc[o], xs, keep, strict=True)
                        ]
                    )
                else:
                    new.append([b.fadd(s, b.fmul(c, x)) for s, x in zip(acc[o], xs, strict=True)])
            q_next = b.add(q, e.const(1))
            b.cbranch(b.icmp_signed("<", q_next, n_q), loop, done)
            q.add_incoming(e.const(0), entry)
            q.add_incoming(q_next, loop)
            for o in range(n_o):
                for v in range(n_vec):
                    acc[o][v].add_incoming(init[o][v], entry)
                    acc[o][v].add_incoming(new[o][v], loop)
            b.position_at_end(done)
            # (Every phi first: LLVM wants them at the top of the block.)
            sums = []
            for o in range(n_o):
                sums.append([])
                for v in range(n_vec):
                    phi = b.phi(e.vec)
                    phi.add_incoming(init[o][v], entry)
                    phi.add_incoming(new[o][v], loop)
                    sums[o].append(phi)
            for o in range(n_o):
                e.store_vectors(sums[o], o_arr, b.mul(e.const(o), ld))
            return context.get_dummy_value()

        return types.void(params, w_base, q_stride, o_stride, b_base, xt, ld, n_q, out), codegen

    return block


# The dispatch below takes a row of up to 8 vectors as at most one block of
# each of these sizes.
if ROW_BLOCK_VECTORS != 8:
    raise ImportError("fastnet.kernels.rows dispatches blocks of 8, 4, 2 and 1 vectors")
_sums8, _sums4, _sums2, _sums1 = (_make_sums_block(n) for n in (8, 4, 2, 1))
_add8, _add4, _add2, _add1 = (_make_add_block(n) for n in (8, 4, 2, 1))
_layer8, _layer4, _layer2, _layer1 = (_make_layer_block(n, False) for n in (8, 4, 2, 1))
_layer_tail = _make_layer_block(1, True)
_ladd8, _ladd4, _ladd2, _ladd1 = (_make_layer_add_block(n, False) for n in (8, 4, 2, 1))
_ladd_tail = _make_layer_add_block(1, True)
# Batches of 1 or 2 vectors of columns, BATCH_OUTPUTS outputs or one (wider
# batches run as blocks of 2: a float64 block of 4 cost about 1 s more of
# cold compile and was 3% faster on [784, 30, 10], /work/exp/s23/errs3.py).
(_fwd1, _fwd2) = (_make_batch_block(n, BATCH_OUTPUTS, True) for n in (1, 2))
(_fwd1o, _fwd2o) = (_make_batch_block(n, 1, True) for n in (1, 2))
(_bwd1, _bwd2) = (_make_batch_block(n, BATCH_OUTPUTS, False) for n in (1, 2))
(_bwd1o, _bwd2o) = (_make_batch_block(n, 1, False) for n in (1, 2))


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


@overload(layer_sums_, jit_options=JIT_OPTIONS)
def _layer_sums(params, w_off, stride, b_off, a, z):
    width = _vector_width(params)

    def impl(params, w_off, stride, b_off, a, z):
        n_out = z.shape[0]
        j = 0
        while n_out - j >= 8 * width:
            _layer8(params, w_off + j, stride, b_off + j, a, z[j:], 0)
            j += 8 * width
        if n_out - j >= 4 * width:
            _layer4(params, w_off + j, stride, b_off + j, a, z[j:], 0)
            j += 4 * width
        if n_out - j >= 2 * width:
            _layer2(params, w_off + j, stride, b_off + j, a, z[j:], 0)
            j += 2 * width
        if n_out - j >= width:
            _layer1(params, w_off + j, stride, b_off + j, a, z[j:], 0)
            j += width
        if j < n_out:
            _layer_tail(params, w_off + j, stride, b_off + j, a, z[j:], n_out - j)

    return impl


@overload(layer_add_, jit_options=JIT_OPTIONS)
def _layer_add(out, w_off, stride, a, scale, d):
    width = _vector_width(out)

    def impl(out, w_off, stride, a, scale, d):
        c = out.dtype.type(scale)
        n_out = d.shape[0]
        j = 0
        while n_out - j >= 8 * width:
            _ladd8(out, w_off + j, stride, a, c, d[j:], 0)
            j += 8 * width
        if n_out - j >= 4 * width:
            _ladd4(out, w_off + j, stride, a, c, d[j:], 0)
            j += 4 * width
        if n_out - j >= 2 * width:
            _ladd2(out, w_off + j, stride, a, c, d[j:], 0)
            j += 2 * width
        if n_out - j >= width:
            _ladd1(out, w_off + j, stride, a, c, d[j:], 0)
            j += width
        if j < n_out:
            _ladd_tail(out, w_off + j, stride, a, c, d[j:], n_out - j)

    return impl


@overload(batch_sums_, jit_options=JIT_OPTIONS)
def _batch_sums(params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward):
    width = _vector_width(params)

    def impl(params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward):
        ld = xt.shape[1]
        if ld % width != 0 or out.shape[1] != ld:
            batch_sums_loop_(
                params, w_off, q_stride, o_stride, b_off, xt, n_q, n_out, n_cols, out, forward
            )
            return
        x_flat = xt.reshape(xt.shape[0] * ld)
        o_flat = out.reshape(out.shape[0] * ld)
        n_vec = (n_cols + width - 1) // width
        # Columns in blocks of at most 2 vectors; outputs BATCH_OUTPUTS at a
        # time, then one at a time.
        c = 0
        while c < n_vec:
            nv = min(2, n_vec - c)
            x = x_flat[c * width :]
            o = 0
            while o < n_out:
                many = n_out - o >= BATCH_OUTPUTS
                w = w_off + o * o_stride
                bb = b_off + o
                dst = o_flat[o * ld + c * width :]
                if forward:
                    if nv == 1:
                        if many:
                            _fwd1(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                        else:
                            _fwd1o(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                    elif many:
                        _fwd2(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                    else:
                        _fwd2o(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                elif nv == 1:
                    if many:
                        _bwd1(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                    else:
                        _bwd1o(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                elif many:
                    _bwd2(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                else:
                    _bwd2o(params, w, q_stride, o_stride, bb, x, ld, n_q, dst)
                o += BATCH_OUTPUTS if many else 1
            c += nv

    return impl
