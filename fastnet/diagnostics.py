"""Saturation diagnostics: what the weighted inputs ``z`` of each layer look like.

Nielsen (ch. 3) explains why the ``large`` N(0, 1) initialization learns
slowly: a hidden neuron's weighted input ``z = sum_j w_j x_j + b`` is broad
(``std(z) = sqrt(501) ~ 22.4`` for 1,000 inputs of which 500 are on), so
``sigmoid(z)`` sits at 0 or 1 where its derivative is tiny. The ``default``
N(0, 1/n_in) initialization keeps ``std(z)`` near ``sqrt(3/2) ~ 1.22``.

This module measures that for a network and a batch of inputs, layer by layer:
the mean and standard deviation of ``z``, the fraction of saturated neurons and
a histogram of ``z``. It is plain NumPy in float64 on the public
``net.weights`` / ``net.biases`` views, independent of the kernels (it is not
hot code: one forward pass over about a thousand inputs).

It also provides the per-epoch measurements recorded by
:func:`fastnet.study.train_tracked` (``track=("saturation", "weights")``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastnet.kernels.codes import COST_OUTPUT

__all__ = [
    "DEFAULT_THRESHOLD",
    "LayerStats",
    "activate",
    "render_histogram",
    "render_saturation",
    "saturation",
    "saturation_summary",
    "weight_rms",
    "weighted_inputs",
]

#: An activation within this distance of its limits counts as saturated: for a
#: sigmoid, ``a < 0.01`` or ``a > 0.99``, i.e. ``|z| > log(99) ~ 4.6`` and
#: ``sigma'(z) < 0.0099``.
DEFAULT_THRESHOLD = 0.01

#: Default number of histogram bins.
DEFAULT_BINS = 30


@dataclass
class LayerStats:
    """Statistics of one layer's weighted inputs over a batch of inputs.

    Attributes
    ----------
    layer : int
        1 for the first hidden layer, ``len(sizes) - 1`` for the output layer.
    activation : str
        ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"softmax"``.
    n_neurons : int
    z_mean, z_std : float
        Mean and (population) standard deviation of ``z`` over every
        (input, neuron) pair.
    saturated : float
        Fraction of (input, neuron) pairs whose neuron is saturated, that is the
        fraction of the layer's neurons saturated on an input, averaged over the
        inputs. Sigmoid and softmax: activation within `threshold` of 0 or 1;
        tanh: within `threshold` of -1 or 1; relu: ``z <= 0`` (a "dead" unit,
        whose derivative is 0; `threshold` is not used).
    threshold : float
    counts, edges : ndarray
        Histogram of ``z`` (as :func:`numpy.histogram` returns them).
    """

    layer: int
    activation: str
    n_neurons: int
    z_mean: float
    z_std: float
    saturated: float
    threshold: float
    counts: np.ndarray = field(repr=False)
    edges: np.ndarray = field(repr=False)

    def to_dict(self, histogram: bool = True) -> dict:
        """Plain JSON-able values (the histogram as lists, unless `histogram` is false)."""
        d = {
            "layer": self.layer,
            "activation": self.activation,
            "n_neurons": self.n_neurons,
            "z_mean": self.z_mean,
            "z_std": self.z_std,
            "saturated": self.saturated,
            "threshold": self.threshold,
        }
        if histogram:
            d["counts"] = self.counts.tolist()
            d["edges"] = self.edges.tolist()
        return d


def _inputs(net, X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != net.sizes[0]:
        raise ValueError(f"X must be shaped (n, {net.sizes[0]}) for this network, got {X.shape}")
    if len(X) == 0:
        raise ValueError("X is empty: no inputs to diagnose")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    return X


def layer_activations(net) -> list[str]:
    """The activation of each layer of `net`: hidden ones, then the output's."""
    n_layers = len(net.sizes) - 1
    return [net.activation] * (n_layers - 1) + [COST_OUTPUT[net.cost]]


def activate(z: np.ndarray, activation: str) -> np.ndarray:
    """Apply an activation row-wise in float64 (softmax over the last axis)."""
    if activation == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1/(1+exp(-z)), without overflow
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.maximum(z, 0.0)
    if activation == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"unknown activation {activation!r}")


def weighted_inputs(net, X) -> list[np.ndarray]:
    """The weighted inputs ``z = a_prev @ W.T + b`` of every layer, in float64.

    Parameters
    ----------
    net : fastnet.Network
    X : array_like, shape (n, sizes[0]) or (sizes[0],)

    Returns
    -------
    list of ndarray
        One ``(n, sizes[l])`` array per layer after the input layer.
    """
    a = _inputs(net, X)
    zs = []
    for w, b, act in zip(net.weights, net.biases, layer_activations(net), strict=True):
        z = a @ np.asarray(w, np.float64).T + np.asarray(b, np.float64)
        zs.append(z)
        a = activate(z, act)
    return zs


def saturated_mask(z: np.ndarray, activation: str, threshold: float) -> np.ndarray:
    """Boolean array: which (input, neuron) pairs are saturated (see :class:`LayerStats`)."""
    if activation == "relu":
        return z <= 0.0
    a = activate(z, activation)
    low = -1.0 if activation == "tanh" else 0.0
    return (a <= low + threshold) | (a >= 1.0 - threshold)


def saturation(
    net, X, threshold: float = DEFAULT_THRESHOLD, *, bins=DEFAULT_BINS, hist_range=None
) -> list[LayerStats]:
    """Per-layer statistics of the weighted inputs ``z`` of `net` on inputs `X`.

    Parameters
    ----------
    net : fastnet.Network
        Any network (fresh from an initializer, trained or loaded).
    X : array_like, shape (n, sizes[0])
        Inputs, e.g. MNIST validation images.
    threshold : float
        Saturation threshold, in (0, 0.5): a sigmoid activation within it of 0
        or 1 (tanh: of -1 or 1) counts as saturated.
    bins : int or sequence
        Histogram bins (passed to :func:`numpy.histogram`).
    hist_range : (float, float), optional
        Histogram range; default the range of each layer's ``z``.

    Returns
    -------
    list of LayerStats
        One per layer after the input layer.

    Examples
    --------
    >>> import fastnet
    >>> net = fastnet.Network([1000, 2000, 10], init="large", seed=0)
    >>> x = np.r_[np.ones(500), np.zeros(500)]          # the book's half-on input
    >>> round(saturation(net, x)[0].z_std)               # about sqrt(501) = 22.4
    22
    """
    if not (0.0 < float(threshold) < 0.5):
        raise ValueError(f"threshold must be in (0, 0.5), got {threshold!r}")
    stats = []
    zs = weighted_inputs(net, X)
    for layer, (z, act) in enumerate(zip(zs, layer_activations(net), strict=True), 1):
        counts, edges = np.histogram(z, bins=bins, range=hist_range)
        stats.append(
            LayerStats(
                layer=layer,
                activation=act,
                n_neurons=z.shape[1],
                z_mean=float(z.mean()),
                z_std=float(z.std()),
                saturated=float(saturated_mask(z, act, threshold).mean()),
                threshold=float(threshold),
                counts=counts,
                edges=edges,
            )
        )
    return stats


def saturation_summary(net, X, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Compact per-epoch record of :func:`saturation`: lists over the layers.

    Returns
    -------
    dict
        ``{"z_mean": [...], "z_std": [...], "saturated": [...]}``, one value
        per layer (first hidden layer first).
    """
    stats = saturation(net, X, threshold, bins=1)
    return {
        "z_mean": [s.z_mean for s in stats],
        "z_std": [s.z_std for s in stats],
        "saturated": [s.saturated for s in stats],
    }


def weight_rms(net) -> dict:
    """Root-mean-square of the weights, per layer and over all layers.

    Returns
    -------
    dict
        ``{"weight_rms": [per layer], "weight_rms_all": float}``; biases are
        not included (L2 regularization does not decay them).
    """
    per_layer = [float(np.sqrt(np.mean(np.square(w, dtype=np.float64)))) for w in net.weights]
    total = sum(float(np.sum(np.square(w, dtype=np.float64))) for w in net.weights)
    n = sum(w.size for w in net.weights)
    return {"weight_rms": per_layer, "weight_rms_all": float(np.sqrt(total / n))}


# ----------------------------------------------------------------- rendering


def render_histogram(counts, edges, *, width: int = 40, char: str = "#") -> str:
    """A text histogram: one line per bin, ``[lo, hi)  ####  count``.

    Bar lengths are proportional to the counts (the largest gets `width`
    characters); a non-empty bin always gets at least one character.
    """
    counts = np.asarray(counts)
    edges = np.asarray(edges, dtype=np.float64)
    if len(edges) != len(counts) + 1:
        raise ValueError(f"need len(edges) == len(counts) + 1, got {len(edges)} and {len(counts)}")
    peak = counts.max() if len(counts) else 0
    labels = [f"[{lo:8.3g}, {hi:8.3g})" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    digits = len(str(int(peak)))
    lines = []
    for label, c in zip(labels, counts, strict=True):
        n = 0 if peak == 0 else int(round(width * c / peak))
        if c > 0:
            n = max(n, 1)
        lines.append(f"{label}  {char * n:<{width}}  {int(c):>{digits}}")
    return "\n".join(lines)


def render_saturation(stats: list[LayerStats], *, histograms: bool = True, width: int = 40) -> str:
    """A per-layer table of :func:`saturation` results, with text histograms."""
    rows = [
        f"{'layer':>5}  {'activation':<10} {'neurons':>7}  {'mean z':>9}  {'std z':>9}  "
        f"{'saturated':>9}"
    ]
    for s in stats:
        rows.append(
            f"{s.layer:>5}  {s.activation:<10} {s.n_neurons:>7}  {s.z_mean:>9.3f}  "
            f"{s.z_std:>9.3f}  {100 * s.saturated:>8.1f}%"
        )
    thr = stats[0].threshold if stats else DEFAULT_THRESHOLD
    rows.append(
        f"(saturated: activation within {thr:g} of its limits, i.e. of 0 or 1 for sigmoid; "
        "relu counts z <= 0)"
    )
    if histograms:
        for s in stats:
            rows.append("")
            rows.append(f"layer {s.layer} ({s.activation}): histogram of z")
            rows.append(render_histogram(s.counts, s.edges, width=width))
    return "\n".join(rows)


def plot_saturation(results: dict[str, list[LayerStats]], path) -> None:
    """Write a PNG of the z histograms: one panel per layer, one series per network.

    Parameters
    ----------
    results : dict
        Label (e.g. an initializer name) -> :func:`saturation` result.
    path : str or Path

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install "fastnet[plot]"``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_layers = max(len(v) for v in results.values())
    fig = Figure(figsize=(5 * n_layers, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_layers, squeeze=False)[0]
    for label, stats in results.items():
        for ax, s in zip(axes, stats, strict=False):
            density = s.counts / max(1, s.counts.sum()) / np.diff(s.edges)
            ax.stairs(density, s.edges, label=f"{label} (std {s.z_std:.2f})", fill=False)
    for i, ax in enumerate(axes, 1):
        ax.set_title(f"layer {i}: weighted input z")
        ax.set_xlabel("z")
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
