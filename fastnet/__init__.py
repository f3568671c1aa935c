"""fastnet: a fast, trustworthy CPU trainer for fully-connected networks.

The network of Nielsen's *Neural Networks and Deep Learning*, chapter 3
(sigmoid neurons, cross-entropy cost, L2-regularized mini-batch SGD, weights
initialized N(0, 1/n_in)), with the epoch loop compiled by Numba and a plain
NumPy reference (:mod:`fastnet.reference`) that every kernel is tested against.
"""

__version__ = "0.1.0"

from fastnet.history import History
from fastnet.init import INITIALIZERS, calculate_gain, register_initializer
from fastnet.network import DivergenceError, Network, SymmetryWarning, load, resume
from fastnet.threads import set_num_threads

__all__ = [
    "INITIALIZERS",
    "DivergenceError",
    "History",
    "Network",
    "SymmetryWarning",
    "calculate_gain",
    "load",
    "register_initializer",
    "resume",
    "set_num_threads",
]


def __getattr__(name):
    # FastNetClassifier is loaded on first use, so that `import fastnet` does
    # not import scikit-learn (an optional dependency: fastnet[sklearn]).
    if name == "FastNetClassifier":
        from fastnet.sklearn import FastNetClassifier

        return FastNetClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
