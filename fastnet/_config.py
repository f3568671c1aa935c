"""Numeric defaults and tuning constants: the one home for every such number.

Anything that changes results (chunk sizes fix the summation order) or speed
(JIT flags, the serial/parallel crossover) is defined here and imported
everywhere else.
"""

from __future__ import annotations

import numba
import numpy as np

#: Options shared by every ``@njit`` kernel. ``fastmath`` stays off: the float64
#: kernels must match :mod:`fastnet.reference` to ``REFERENCE_RTOL`` and give the
#: same bits whatever the thread count; the input-major layout (see
#: fastnet.layout) vectorizes without reassociating any sum. ``nogil`` lets two networks train from
#: two Python threads at once.
JIT_OPTIONS = {"cache": True, "fastmath": False, "nogil": True, "error_model": "numpy"}

#: Options of the small per-sample helpers (a row's activation, one sample's
#: output error and backward pass, the later layers' update...): JIT_OPTIONS,
#: and inlined into each caller in Numba's IR. Called, each paid the call
#: itself (array arguments passed as structs, slices built for it) and kept
#: LLVM from optimizing across it: scaling 30 float32 errors by the
#: sigmoid's derivative took 37 ns as a call and 11 ns inlined
#: (/work/exp/s22/sd.py). Measured one
#: thread, cache hot, the fused step's forward and backward passes from the
#: block sums (``sample_errors_``, /work/exp/s22/errs.py, 11 alternating
#: rounds, 2026-12-02): [784, 30, 10] 662 -> 511 ns per sample in float32,
#: 760 -> 583 in float64; [784, 100, 10] 1133 -> 994 and 1602 -> 1407. The
#: whole mini-batch-10 driver (/work/exp/s22/ab.py, 9 rounds): 2 threads
#: 1.06x / 0.96x (float32 / float64), 1 thread 1.05x / 0.96x. A cold compile
#: of the training kernels took 29.6 s against 28.0 s.
INLINE_OPTIONS = {**JIT_OPTIONS, "inline": "always"}

#: Outputs summed at once by fastnet.kernels.rows.batch_sums_ (the fused
#: step's later layers, a vector of samples at a time): each load of a
#: vector of inputs feeds this many outputs' sums. In the prototype (one
#: thread, [784, 30, 10] / [784, 100, 10], ns per sample float32):
#: 2 -> 259 / 499, 4 -> 280 / 479, 8 -> 289 / 479 (/work/exp/s23/batched2.py,
#: 2026-12-02, one run each; differences within the noise).
BATCH_OUTPUTS = 4

#: Columns per group in fastnet.kernels.mlp.nonzero_index_: a group of
#: zeros costs one test (16 float32 is one AVX-512 vector; other group
#: sizes were not measured).
NONZERO_GROUP = 16

#: Fixed runs of a data set's non-zero index counted in parallel when its
#: input blocks are cut (fastnet.kernels.dense.balance_inputs_).
COUNT_CHUNKS = 8

#: Non-zero indexes kept between calls (fastnet.workspace.data_index): a
#: training set and an evaluation set, for two networks or two data sets at
#: once. Each costs about 40% of its data's memory on MNIST in float32
#: (non-zeros' columns and values), for as long as the data lives.
INDEX_CACHE_ENTRIES = 4

#: Fixed runs of rows checked in parallel when a kept index is compared with
#: its data (fastnet.kernels.mlp.index_mismatches): a zeroed row of scratch
#: each, enough runs for the cores to share the pass.
INDEX_CHECK_CHUNKS = 16

#: Samples per gradient chunk. A mini-batch is split into fixed chunks of this
#: many samples; each chunk sums its own gradient and the chunk sums are added in
#: chunk order. The split does not depend on the thread count, so neither do the
#: results, and the serial and parallel paths give identical bits. A mini-batch
#: that fits in one chunk takes the fused step (no gradient buffer).
GRAD_CHUNK = 16

#: Upper bound on the chunks of one mini-batch (bounds the per-chunk gradient
#: buffers for very large mini-batches; chunks then hold more than GRAD_CHUNK
#: samples, processed GRAD_CHUNK at a time). Like GRAD_CHUNK it depends on the
#: mini-batch size only, never on the thread count.
MAX_GRAD_CHUNKS = 32

#: Blocks of the first layer's inputs (fastnet.workspace.input_blocks) in
#: the dense driver (fastnet.kernels.dense.sgd_dense_) and, since 2026-12-02,
#: the fused step (fastnet.kernels.mlp.fused_lane_), whatever the thread
#: count: each block's rows are summed forward and updated by the lane that
#: owns it, and the
#: blocks set the order of the first layer's sums, so their number cannot
#: follow the thread count without changing the bits. Each costs a pass over
#: the mini-batch's samples in both directions. Prototype of the owned blocks
#: against the driver before them, [784, 30, 10] mini-batch 100 float32, 2
#: threads / 1 thread, paired rounds (/work/exp/s20/ab_owner.py,
#: 2026-12-01): 2 blocks 1.28x-1.34x / 1.04x-1.10x, 3 blocks 1.17x / 1.14x,
#: 4 blocks 1.02x / 0.88x, 8 blocks 0.82x / 0.69x. With 2, phase 2 has three
#: units (two blocks and the later layers), so lanes past three only share
#: phase 1 (not measured: this machine has two cores); in the fused step
#: lanes past the second only share the samples' passes. The fused step's
#: measurements (2026-12-02) are in the README ("How it is built").
INPUT_BLOCKS = 2

#: Share of the data's non-zeros in the fused step's first input block (the
#: others share the rest evenly; fastnet.network.block_share,
#: fastnet.workspace.input_blocks). Its owner, lane 0, also updates the
#: later layers and biases, so a smaller block lets both lanes reach the
#: barrier together. Measured on 2 threads, mini-batch 10
#: (/work/exp/s21/bias.py, 11-15 alternating rounds, 2026-12-02, against an
#: even cut; a second even cut read 0.98x-1.01x): 0.42 [784,30,10] 1.06x
#: float32 / 1.03x float64, 0.45 1.03x / 1.02x; [784,100,10] 0.42 1.03x /
#: 1.02x. Through the whole driver against the even cut (/work/exp/s21/ab.py,
#: 11 rounds, three runs): [784,30,10] float32 1.08x, 1.08x (and the 1.06x
#: above), float64 1.03x, 0.92x; [784,100,10] 1.03x and 1.06x / 0.95x and
#: 1.18x. The dense driver, whose lanes take the blocks and the later
#: layers from a counter, keeps even blocks: [784,30,10] mini-batch 100 with
#: this share read 0.94x-0.96x float32, 0.97x-1.03x float64.
FIRST_BLOCK_SHARE = 0.42

#: The same share for the dense driver (fastnet.kernels.dense.sgd_dense_),
#: whose first block goes to lane 0 while lane 1 takes the later layers'
#: unit and then the last block: there the first block is the larger one.
#: Cycle counts per lane and phase ([784,30,10] mini-batch 100 float32, 2
#: threads, /work/exp/s22/dense_phase.py, 2026-12-02): with even blocks
#: lane 0 waited 17,000-27,000 cycles per mini-batch at the second barrier
#: (9-13% of the step) while lane 1 did the later layers and its block;
#: with 0.53 it waited 4,600, with 0.56 still 7,500 (one run each). With
#: DENSE_ROW_BLOCK 50, against even blocks and 32 (/work/exp/s22/ab.py, 11
#: paired rounds): mini-batch 100 2 threads 1.08x / 1.08x (float32 /
#: float64), 1 thread 0.99x / 0.99x; [784,100,10] mini-batch 100 1.02x /
#: 0.99x; [784,256,128,10] mini-batch 64 1.03x / 1.05x.
DENSE_FIRST_BLOCK_SHARE = 0.53

#: Most rows per unit of the dense driver's first phase
#: (fastnet.workspace.dense_row_block splits a mini-batch into an even number
#: of units of at most this many rows). BLAS products over fewer rows of the
#: wide layers cost more: [784, 256, 128, 10] mini-batch 64, 2 threads,
#: paired against fixed halves of 32 rows: units of 32 rows 1.09x, of 25
#: rows 1.07x, of 16 rows 0.93x (2026-12-01). Units of 32, 32, 32 and 4 rows
#: on mini-batch 100 left one lane 64 rows against 36: [784, 30, 10] float32
#: 0.93x; four units of 25: 1.00x. Two units of 50 (2026-12-02): each
#: unit costs its own BLAS calls, and the first phase of a mini-batch of
#: 100 took 58,000 instead of 65,000 cycles on one thread, 38,000 instead
#: of 43,000-46,000 per lane on two (/work/exp/s22/dense_phase.py; the
#: paired figures beside DENSE_FIRST_BLOCK_SHARE). Fewer units leave less
#: to rebalance when the host slows one vCPU.
DENSE_ROW_BLOCK = 50

#: Later layers of at most this many stored weights keep a transposed copy
#: in the dense driver (fastnet.kernels.dense.transpose_later_), refreshed
#: after each update, so that the backward product ``delta @ w.T`` reads a
#: contiguous matrix. SciPy's OpenBLAS (0.3.30, SkylakeX kernels) takes its
#: small-matrix path for such a product and not for the transposed view:
#: 50 rows x 16 by 16 x 32 float32 took 814 ns on one thread and 1,579 ns on
#: each of two threads calling at once through the view, 449 and 501 ns from
#: the copy; 50 x 16 by 16 x 112: 2,354 / 4,389 against 1,512 / 1,529; 64 x 128
#: by 128 x 256 (a layer of 32,768 weights): 38,458 / 41,181 against 38,050 /
#: 43,128, no gain for the copy's cost (/work/exp/s23/blas3.py,
#: 2026-12-02). Copying every later layer each mini-batch had cost
#: [784, 256, 128, 10] 11-27% at stop 22.
DENSE_TRANSPOSE_MAX = 4096

#: Number of fixed chunks an evaluation pass (accuracy, cost) is split into
#: by the loop kernels, and the most the dense evaluation uses (it takes
#: fewer, larger ones for fewer rows: fastnet.kernels.dense.eval_chunks);
#: partial sums are combined in chunk order, independent of the thread count.
EVAL_CHUNKS = 64

#: The fused step keeps the first layer's L2 decay in one scale factor:
#: its weights are ``alpha * v`` for the stored ``v``; each step multiplies
#: ``alpha`` by the decay and adds ``(step / alpha) * gradient`` to ``v``,
#: instead of a pass over the whole layer per mini-batch (the issue's
#: "one scalar factor" lever, as scikit-learn's SGD does with ``wscale``).
#: ``alpha`` is folded back into ``v`` at the end of each driver call, after
#: every ALPHA_FOLD_EVERY-th mini-batch of an epoch (below) and
#: whenever it would fall below ALPHA_FOLD; a decay factor below
#: LAZY_DECAY_MIN (eta * lmbda / n above 0.5, far outside useful settings)
#: is applied to the weights each step instead. Measured in a throwaway
#: serial fused step (/work/exp/lazydecay.py, one thread, 20,000 shuffled
#: images, explicit / lazy time per sample): [784,30,10] float32 1.08x,
#: float64 1.11x, [784,100,10] float32 1.13x. In the real drivers (paired
#: A/B against explicit decay, mini-batch 10, 12-14 rounds per run, five /
#: three / three runs on one or two threads) less: [784,30,10] float32
#: 0.97x-1.05x, float64 1.06x-1.09x, [784,100,10] float32 1.04x-1.09x.
ALPHA_FOLD = 2.0**-10

#: The fused step also folds ``alpha`` into the weights after every
#: ALPHA_FOLD_EVERY-th mini-batch of an epoch, and Network.train ends its
#: calls (progress-bar slices) only there or at the epoch's end: folding at
#: the end of every call had made the bits depend on how the epoch was split
#: into calls (a terminal's progress bar split it into 50, a pipe did not;
#: found by tests/test_kernels.py at stop 21, present since the scale was
#: introduced). A fold is one pass over the first layer, about a
#: mini-batch's work, so 128 mini-batches between them cost under 1%.
ALPHA_FOLD_EVERY = 128
LAZY_DECAY_MIN = 0.5

#: Until 2026-12-01 mini-batches of several chunks (more than GRAD_CHUNK
#: samples) could also run in parallel, a chunk per thread, from 1,500,000
#: multiply-adds (mini_batch * n_weights) in at least 4 chunks or 5,000,000
#: in any (measured on 2 cores, float32, parallel vs serial samples/s, python
#: bench/crossover.py: [784,30,10] mb 32 0.71x, mb 64 1.38x, mb 200 1.61x;
#: [784,100,10] mb 32 0.62x, mb 64 1.30x; [784,256,128,10] mb 17 1.07x, mb
#: 32 1.36x, mb 64 1.61x). Every such mini-batch has more than DENSE_MIN_WORK
#: multiply-adds and so takes the dense driver, which beat it; the path was
#: never chosen and is gone. Such mini-batches below DENSE_MIN_WORK run serially.

#: When a mini-batch of one chunk (at most GRAD_CHUNK samples: the fused step)
#: runs in parallel: the samples' passes split between threads, then the first
#: layer's rows (until 2026-12-01 two thread launches per mini-batch, about
#: 2 us each with the omp layer; now one per driver call, see
#: TEAM_WAIT_SPINS). Needs at least PARALLEL_FUSED_MIN_BATCH samples and
#: PARALLEL_FUSED_MIN_WORK multiply-adds. Measured on 2 cores, shuffled order,
#: parallel vs serial samples/s (python bench/crossover.py float32 float64):
#: [784,30,10] mb 1 0.59x/0.57x (float32/float64), mb 2 0.82x/0.91x,
#: mb 4 1.01x/0.98x, mb 6 1.20x/1.13x, mb 10 1.21x/1.14x, mb 16 1.62x/1.35x;
#: [784,100,10] mb 2 0.89x/0.98x, mb 4 1.02x/1.07x, mb 10 1.28x/1.14x;
#: [784,256,128,10] mb 4 1.50x/1.41x, mb 10 1.70x/1.43x. After the serial
#: step got faster (the values index and prefetch, 2026-12-01), paired rounds
#: (12 alternating, median [range]) on [784,30,10] float32: mb 6 0.89x
#: [0.62-1.32] and 0.51x [0.38-1.17], mb 8 1.06x, mb 10 1.17x, mb 16 1.30x;
#: float64 mb 6 1.00x, mb 10 1.25x; [784,100,10] float32 mb 4 0.83x, mb 10
#: 1.25x. The work floor moved from 120,000 to 180,000 so that [784,30,10]
#: mb 6 (143,000) stayed on one thread. With one parallel region per call
#: (12 paired rounds, /work/exp/ser_par.py, 2026-12-01): [784,30,10] float32
#: mb 1 0.75x, mb 2 0.83x (0.34x in an earlier run), mb 3 0.74x, mb 4 1.19x
#: and 1.26x, mb 6 1.22x and 1.18x, mb 8 1.14x; float64 mb 4 1.16x and
#: 1.06x, mb 6 1.38x; [784,100,10] float32 mb 2 1.05x, mb 4 1.25x. So the
#: floor is back down to 90,000: [784,30,10] mb 4 (95,000) runs in parallel.
#: Once the lanes owned the first layer's input blocks (2026-12-02, an
#: Intel AVX-512 host; python bench/crossover.py float32 float64, best of 5
#: each, parallel vs serial, float32/float64): [784,30,10] mb 1 0.90x/0.92x,
#: mb 2 1.16x/1.25x, mb 3 1.18x/1.30x, mb 4 1.54x/1.40x, mb 10 1.62x/1.86x;
#: [784,100,10] mb 1 1.04x/1.10x, mb 2 1.26x/1.34x, mb 3 1.42x/1.26x;
#: [784,256,128,10] mb 1 0.79x/0.77x, mb 2 0.90x/1.11x, mb 3 1.00x/1.23x,
#: mb 4 1.17x/1.23x. So from 2 samples and [784,30,10] mb 2 (47,640).
PARALLEL_FUSED_MIN_BATCH = 2
PARALLEL_FUSED_MIN_WORK = 45_000

#: The parallel fused step runs a whole driver call in one parallel region,
#: its lanes meeting at spin barriers (fastnet.kernels.sync), instead of two
#: region launches per mini-batch (1.6 us each, omp layer, 2 cores).
#: Prototype against the two-region step, same bits, 12 paired rounds of
#: 20,000 shuffled images (/work/exp/pers/persist.py): [784,30,10] float32
#: mb 10 1.17x and 1.19x, mb 8 1.26x; float64 mb 10 1.15x; [784,100,10]
#: float32 mb 10 1.10x. A lane polls the arrival of the others this many times
#: (a poll took 0.45 ns in a loop of a million, so about 2 ms) before it
#: decides they are not running at once and does every lane's work itself;
#: without JIT the lanes run one after another, so it does not wait at all.
TEAM_WAIT_SPINS = 0 if numba.config.DISABLE_JIT else 4_000_000

#: Polls of a team's barrier (about 10 us) before a waiting lane starts to
#: yield its core between polls (fastnet.kernels.sync.barrier), so that with
#: more threads than cores the lane it waits for gets to run.
BARRIER_SPINS = 20_000

#: When a mini-batch takes the dense driver (fastnet.kernels.dense: each
#: layer as BLAS products per mini-batch): more than GRAD_CHUNK samples
#: (smaller ones take the fused step) and at least DENSE_MIN_WORK
#: multiply-adds (mini_batch * n_weights). Measured on 2 cores, real MNIST,
#: dense vs the better loop driver, samples/s (python bench/crossover.py
#: float32 float64, 2026-12-01, float32/float64): [784,30,10] mb 17
#: 1.26x/1.06x, mb 32 1.21x/1.03x, mb 64 0.99x/1.24x, mb 100 1.37x/1.52x,
#: mb 200 1.41x/1.16x; [784,100,10] mb 17 1.13x/1.14x, mb 100 1.20x/1.08x;
#: [784,256,128,10] mb 17 1.97x/1.90x, mb 64 2.07x/1.32x, mb 100
#: 2.25x/1.97x. At mb 10 (the fused step) dense was 0.53x/0.46x on
#: [784,30,10], 0.67x/0.68x on [784,256,128,10]. On [784,10] (7,850 weights)
#: dense loses at mb 32 and 64 (0.97x/0.77x, 0.87x/0.71x, above this floor)
#: and wins from mb 100 (1.76x/1.18x); a floor high enough to keep those on
#: the loops (600k) would also send [784,30,10] mb 17-25 back to them, so the
#: book's network decides.
DENSE_MIN_WORK = 200_000

#: Mini-batches of one chunk (at most GRAD_CHUNK samples) take the dense
#: driver too from DENSE_SMALL_MIN_BATCH samples and DENSE_SMALL_MIN_WORK
#: multiply-adds: on wide layers its BLAS products beat the fused step's
#: sample-by-sample loops. Measured on 2 cores (2026-12-02, Intel AVX-512
#: host; python bench/crossover.py, best of 5 each), dense vs the parallel
#: fused step on 2 threads / vs the serial one on 1 thread, float32 and
#: float64: [784,256,128,10] mb 3 1.25x/1.09x and 0.81x/0.69x, mb 4
#: 1.30x/1.13x and 1.03x/0.74x, mb 6 1.43x/1.64x and 1.16x/1.03x, mb 10
#: 1.70x/1.73x and 1.25x/1.15x, mb 16 2.16x/2.14x and 1.45x/1.42x;
#: [784,100,10] mb 10 0.90x/1.00x and 0.80x/0.85x, mb 16 0.96x/1.14x and
#: 0.93x/0.94x (stays on the fused step: 1,272,000). Single samples stay
#: on the loops whatever the layers ([784,256,128,10] mb 1: 1.17x on 2
#: threads but 0.62x on 1, float64 0.68x/0.30x).
DENSE_SMALL_MIN_BATCH = 6
DENSE_SMALL_MIN_WORK = 1_400_000

#: How the dense driver used two threads until it took units from shared
#: counters (2026-12-01; DENSE_ROW_BLOCK, INPUT_BLOCKS): its first layer's inputs were split into
#: two halves whose products run in parallel (since 2026-12-01 no products:
#: the first layer reads the non-zero index, its weight gradient split into
#: the same input halves, its forward sums into two halves of the rows), so
#: the bits do not depend on the thread count (BLAS's own threading gave
#: different bits on 1 and 2 threads, and is held to one thread). Measured on 2
#: threads, [784,256,128,10] mb 64: float32 64.0k-75.6k samples/s with the
#: split vs 40.4k-53.6k without, float64 32.7k-38.4k vs 26.4k-27.8k. Until
#: 2026-12-01, mini-batches of 96 and more were split into row blocks of 48+
#: samples instead (one gradient buffer per block, added in block order);
#: the input split was faster at every size tried (float32, samples/s, row
#: blocks vs input split, 1 thread / 2 threads, consecutive processes):
#: [784,30,10] mb 100 113k/213k vs 188k/273k, mb 128 122k/236k vs 193k/312k,
#: mb 200 129k/263k vs 267k/367k; [784,100,10] mb 100 60k-87k/109k-157k vs
#: 104k-135k/156k-225k, mb 200 62k-97k/129k-146k vs 100k-142k/159k-211k;
#: [784,256,128,10] mb 128 33k-36k/51k-64k vs 48k-49k/66k-69k, mb 200
#: 34k-35k/31k-64k vs 36k-51k/68k-78k (sgd_dense_ called directly on the
#: 50,000 training images as bench/crossover.py does, two rounds each).

#: Rows the dense evaluation (fastnet.kernels.dense.dense_evaluate) feeds
#: forward per BLAS product at most, and the rows per chunk it aims at
#: (dense.eval_chunks: 16 chunks of 625 rows for 10,000 images, at most
#: EVAL_CHUNKS); networks whose n_weights make
#: use_dense(DENSE_EVAL_ROWS, n_weights) true evaluate that way. Until stop 24
#: it was 256 rows in EVAL_CHUNKS chunks always (157 rows per product for
#: 10,000 images): the first layer's sgemm on 10,000 MNIST rows of 784 by 32,
#: one thread, ran 8.3 ms in products of 157 rows, 7.7 in 256, 6.4 in 512
#: and 5.7 in one product. Hot `accuracy()` on 2 threads, 10,000 validation
#: images, medians of 25 calls, three interleaved processes each, ms,
#: 157-row products / 625-row (/work/exp/s24/evk.py): [784,30,10] float32
#: 4.94 / 4.05, float64 9.14 / 9.29; [784,100,10] float32 10.17 / 8.96,
#: float64 21.42 / 21.42; [784,256,128,10] float32 25.01 / 22.66, float64
#: 53.16 / 52.94 (320-row chunks: between the two). Earlier (one product
#: per chunk of 157 rows, ms with rows 64 / 128 / 256): [784,30,10] float32
#: 29.9 / 23.9 / 15.0, [784,100,10] 29.9 / 24.9 / 22.5, [784,256,128,10]
#: 74.6 / 61.3 / 59.5 on the AMD host. Raising it also moved networks of
#: 313-780 weights from the loop evaluation to the dense one: `accuracy()` on
#: 10,000 random rows (half zeros), hot, ms, loop (256) / dense (640):
#: [20,25,10] float32 1.54-1.58 / 0.78-0.79, float64 2.20-2.38 / 1.43-1.50;
#: [40,10,10] 1.73-1.76 / 0.62-0.64, 2.12-2.17 / 1.03-1.05; [64,8,4]
#: 1.57 / 0.48-0.51, 1.76 / 0.74-0.78 (/work/exp/s24/toy_eval.py, two
#: processes each).
DENSE_EVAL_ROWS = 640

#: Rows per product of the dense evaluation when the data's dtype is not the
#: network's (float32 data for a float64 network, float64 data for a float32
#: one): each part is converted into a scratch block first, which BLAS then
#: reads back, and large blocks leave the cache (this host's L2 holds 2 MB
#: per core; 625 rows of 784 float64 inputs are 3.9 MB). Widening float32:
#: `accuracy()` of [784,30,10] float64 on 10,000 images, hot, ms, 157-row
#: parts before stop 24 against: 625-row parts 9.05 / 9.59, 313-row parts
#: 9.06 / 9.54, 156-row parts (this setting) 9.25 / 9.19; [784,256,128,10]
#: 53.08 / 54.53, 53.44 / 53.06, 53.71 / 54.57 (/work/exp/s24/evk.py, three
#: interleaved processes each). Narrowing float64 data for a float32 network
#: (stop 26, /work/exp/s26/evalparts.py, medians of 21 hot calls, two
#: processes per setting, ms, parts of 80 / 160 / 320 / 640 rows):
#: [784,30,10] 4.51-4.74 / 4.17-4.31 / 4.25-4.32 / 4.63-4.64, [784,100,10]
#: 9.11-9.57 / 8.26-8.42 / 8.03-8.30 / 8.14-8.25, [784,256,128,10]
#: 24.1-24.9 / 20.5-20.6 / 19.4-19.7 / 18.4-18.5; widening in the same runs
#: [784,30,10] 6.58-7.25 / 6.43-6.47 / 7.20-7.24 / 7.66-7.93. One setting
#: for both: 160 rows. (Converting the whole array first, before stop 26:
#: 9.0, 12.6 and 21.6 ms.)
DENSE_EVAL_CONVERT_ROWS = DENSE_EVAL_ROWS // 4

#: Padding of the first layer's stored rows (fastnet.layout). LLVM
#: vectorizes the row loops of the first layer (forward sums and weight
#: update over its n_out neurons) 32 entries a turn (8 floats x 4) and leaves
#: the rest of a row to a short tail loop: a row of 30 runs one 4-wide
#: iteration after another. Rows padded with zeros to a multiple of
#: ROW_PAD, and the padding computed along (its weights stay zero), are
#: faster: one thread, 20,000 shuffled MNIST images, us per sample
#: (/work/exp/padtest2.py, throwaway, 2026-12-01), 30 -> 32: forward
#: float32 0.89 -> 0.67, update 1.32 -> 0.80; float64 1.33 -> 1.11 and
#: 1.53 -> 1.32. Padding more than ROW_PAD_MAX_SHARE of a row costs more
#: than it saves: 100 -> 104 / 112 / 128, forward float32 1.41 -> 1.55 /
#: 1.29 / 1.75, update 1.85 -> 2.15 / 1.94 / 2.43.
ROW_PAD = 32
ROW_PAD_MAX_SHARE = 0.125

#: Bytes every parameter and work buffer starts on (fastnet.layout.aligned_zeros):
#: a cache line, so the first layer's padded rows (32 float32 = 128 bytes)
#: are whole lines and the kernels' vector loads do not straddle two.
#: NumPy's allocator gives 16 bytes only, and the address a network's
#: buffers got was luck: `params` alone at 16, 32 or 48 bytes past a line
#: against 0, [784, 30, 10] one-epoch slices, paired rounds in random order
#: in one process (/work/exp/s26/align.py, 2026-12-02): mini-batch 10
#: float32 1 thread 0.92x / 1.01x / 0.93x, 2 threads 0.93x / 1.01x / 0.95x,
#: float64 1 thread 0.89x / 1.01x / 0.88x; mini-batch 100 float32 1 thread
#: 0.91x / 0.93x / 0.92x, 2 threads 0.97x / 0.96x / 0.92x, float64 2
#: threads 0.97x / 0.90x / 0.87x.
BUFFER_ALIGN = 64

#: Bytes per vector of the row kernels (fastnet.kernels.rows): one AVX2
#: register, 8 float32 or 4 float64. The first layer's kernels hold a whole
#: row in registers when it is at most ROW_BLOCK_VECTORS of them; a later
#: layer's run in blocks of them and a masked last vector.
ROW_VECTOR_BYTES = 32

#: Longest first-layer row, in vectors, that the row kernels keep in
#: registers (fastnet.kernels.rows): 8 of AVX2's 16. Longer rows run as
#: plain loops, a row at a time: in passes of 8 vectors over every row the
#: whole driver lost on [784, 100, 10] (rows of 104, paired A/B against the
#: loops on rows of 100, /work/exp/ab_fused.py, 2 threads, 2026-12-01):
#: float64 0.84x-0.90x, float32 0.99x-1.04x.
ROW_BLOCK_VECTORS = 8

#: Relative tolerance for the float64 kernel-vs-reference comparisons.
REFERENCE_RTOL = 1e-9

#: Data types a network may hold its parameters in.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
DEFAULT_DTYPE = np.dtype(np.float64)

#: The book's run (network2 with the chapter's hyper-parameters): the defaults
#: of ``python -m fastnet train``.
BOOK = {
    "sizes": (784, 30, 10),
    "epochs": 30,
    "mini_batch": 10,
    "eta": 0.1,
    "lmbda": 5.0,
    "cost": "cross_entropy",
    "activation": "sigmoid",
    "init": "default",
    "seed": 12345,
}
