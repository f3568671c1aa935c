"""Integer codes shared by the kernels and the Python API: the one home of the
activation and cost names.

Kernels branch on these small integers (Numba folds module-level ints into
constants), while the Python API and the reference look the names up here.
"""

from __future__ import annotations

# Activation functions. SOFTMAX is an output activation only.
SIGMOID = 0
TANH = 1
RELU = 2
SOFTMAX = 3

# Costs.
CROSS_ENTROPY = 0
QUADRATIC = 1
LOG_LIKELIHOOD = 2

#: Hidden-layer activations a user may choose, name -> code.
HIDDEN_ACTIVATIONS = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}

#: Costs a user may choose, name -> code.
COSTS = {"cross_entropy": CROSS_ENTROPY, "quadratic": QUADRATIC, "log_likelihood": LOG_LIKELIHOOD}

#: The output activation each cost is paired with, as in the book: sigmoid
#: outputs for cross-entropy and quadratic cost, softmax for log-likelihood.
COST_OUTPUT = {"cross_entropy": "sigmoid", "quadratic": "sigmoid", "log_likelihood": "softmax"}

#: Every activation code by name (hidden ones plus softmax).
ACTIVATIONS = {**HIDDEN_ACTIVATIONS, "softmax": SOFTMAX}

# Columns of the layer table built by fastnet.layout.Layout.table: one row per
# layer l. Weights are stored input-major: w[l].T in a row-major block of
# W_ROWS rows of STRIDE entries at W_OFF, so row k < N_IN holds every weight
# leaving input k in its first N_OUT entries. STRIDE >= N_OUT and W_ROWS >=
# N_IN leave room for zero padding (see fastnet.layout).
N_IN = 0  # inputs to the layer
N_OUT = 1  # neurons in the layer
W_OFF = 2  # offset of the layer's weights in params
B_OFF = 3  # offset of b[l] in params
Z_OFF = 4  # offset of the layer's z, activation and delta in a work row
STRIDE = 5  # entries per stored weight row, and the width of the layer's slot in a work row
W_ROWS = 6  # stored weight rows: N_IN, or the previous layer's STRIDE
N_COLUMNS = 7
