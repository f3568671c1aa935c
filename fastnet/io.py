"""Saving and loading networks: fastnet's ``.npz`` (never pickled) and the JSON
files written by the book's ``network2.py``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from fastnet._atomic import atomic_write

FORMAT = "fastnet-network"
FORMAT_VERSION = 1

#: network2's cost class names -> fastnet cost names.
NETWORK2_COSTS = {"CrossEntropyCost": "cross_entropy", "QuadraticCost": "quadratic"}


def save(net, path) -> Path:
    """Write `net` to `path` as ``.npz`` (atomically: temp file, fsync, rename).

    Stores the sizes, cost, activation, dtype (that of ``params``) and the
    parameters without padding (:meth:`fastnet.layout.Layout.flat`: each
    layer's ``w.T`` row-major, then the biases), so files do not depend on
    the buffer layout. Loads with ``allow_pickle=False``.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    with atomic_write(path, "wb") as f:
        np.savez(
            f,
            format=np.array(FORMAT),
            format_version=np.array(FORMAT_VERSION),
            sizes=np.array(net.sizes, dtype=np.int64),
            cost=np.array(net.cost),
            activation=np.array(net.activation),
            init=np.array(net.init or ""),
            bias_init=np.array(net.bias_init or ""),
            params=net.layout.flat(net.params),
        )
    return path


def load(path, *, n_threads=None):
    """Load a network saved by :func:`save` (``.npz``) or by network2 (JSON).

    Parameters
    ----------
    path : str or Path
    n_threads : int, optional
        Passed to the new :class:`~fastnet.network.Network`.

    Returns
    -------
    Network

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is truncated, corrupted or not a network; the message
        names the file and the problem.
    """
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"PK":
        return _load_npz(path, n_threads)
    return _load_network2(path, n_threads)


def _load_npz(path: Path, n_threads):
    from fastnet.network import Network

    try:
        # Open the file ourselves: np.load leaks the handle when the zip is bad.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            fields = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: cannot read as a fastnet .npz model ({e})") from None
    missing = {"format", "sizes", "cost", "activation", "params"} - set(fields)
    if missing or str(fields["format"]) != FORMAT:
        raise ValueError(f"{path}: not a fastnet model file (missing {sorted(missing)})")
    if int(fields.get("format_version", -1)) > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer fastnet (format {fields['format_version']})")
    params = fields["params"]
    try:
        net = Network(
            [int(s) for s in fields["sizes"]],
            cost=str(fields["cost"]),
            activation=str(fields["activation"]),
            dtype=params.dtype,
            init=None,
            n_threads=n_threads,
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    need = net.layout.n_weights + net.layout.n_biases
    if params.shape != (need,):
        raise ValueError(
            f"{path}: params has {params.size} values but sizes {net.sizes} need {need}"
        )
    if not np.isfinite(params).all():
        raise ValueError(f"{path}: params contain NaN or infinite values")
    net.layout.load_flat_(net.params, params)
    net.init = str(fields.get("init", "")) or None
    net.bias_init = str(fields.get("bias_init", "")) or None
    return net


def _load_network2(path: Path, n_threads):
    from fastnet.network import Network

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        sizes = [int(s) for s in data["sizes"]]
        weights = [np.asarray(w, dtype=np.float64) for w in data["weights"]]
        biases = [np.asarray(b, dtype=np.float64).reshape(-1) for b in data["biases"]]
        cost_name = data.get("cost", "CrossEntropyCost")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: neither a fastnet .npz nor a network2 JSON file ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a network2 JSON network ({e!r})") from None
    if cost_name not in NETWORK2_COSTS:
        raise ValueError(
            f"{path}: unknown network2 cost {cost_name!r}; expected one of {list(NETWORK2_COSTS)}"
        )
    try:
        net = Network(sizes, cost=NETWORK2_COSTS[cost_name], init=None, n_threads=n_threads)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    if len(weights) != net.layout.n_layers or len(biases) != net.layout.n_layers:
        raise ValueError(f"{path}: {len(weights)} weight matrices for sizes {sizes}")
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if w.shape != net.weights[layer].shape or b.shape != net.biases[layer].shape:
            raise ValueError(
                f"{path}: layer {layer} weights {w.shape} / biases {b.shape} do not match "
                f"sizes {sizes}"
            )
        net.weights[layer][...] = w
        net.biases[layer][...] = b
    if not np.isfinite(net.params).all():
        raise ValueError(f"{path}: weights or biases contain NaN or infinite values")
    return net
