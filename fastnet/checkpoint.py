"""Checkpoints: everything needed to continue training bit for bit.

A checkpoint is one ``.npz`` file (no pickle) holding the parameters, the
network's generator state, the number of finished epochs, the history, the
network and training configuration, and a fingerprint of the training data.
It is rewritten atomically after every epoch (temporary file, fsync, rename),
so a crash at any instant leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from fastnet._atomic import atomic_write

FILENAME = "checkpoint.npz"
FORMAT = "fastnet-checkpoint"
FORMAT_VERSION = 1


def data_fingerprint(X, y, dtype=None) -> str:
    """A digest of the training data, so a resume refuses different data.

    `dtype`: digest `X` as if converted to it (the network's dtype), so
    float32 data given to a float64 network, which trains on it unconverted,
    has the digest of the same data converted to float64 (and of checkpoints
    written when it was converted first). The conversion streams through
    blocks of rows: no full copy.
    """
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((X.shape, dtype.str, y.shape)).encode())
    X = np.ascontiguousarray(X)
    if X.dtype == dtype:
        h.update(X.data)
    else:
        for lo in range(0, len(X), 4096):
            h.update(np.ascontiguousarray(X[lo : lo + 4096], dtype=dtype).data)
    h.update(np.ascontiguousarray(y, dtype=np.int64).data)
    return h.hexdigest()


def save_checkpoint(directory, net, epoch: int, train_config: dict, history) -> Path:
    """Write ``directory/checkpoint.npz`` atomically; returns its path.

    Parameters
    ----------
    directory : str or Path
        Created if missing.
    net : Network
    epoch : int
        Epochs finished.
    train_config : dict
        The arguments of :meth:`Network.train` that a resume must reuse
        (JSON-able), including the data fingerprint.
    history : History
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "network": net.config(),
        "seed": net.seed,
        "train": train_config,
        "epoch": epoch,
        "rng": net.rng.bit_generator.state,
        "history": {"header": history.header, "records": history.records},
    }
    path = directory / FILENAME
    with atomic_write(path, "wb") as f:
        np.savez(
            f,
            format=np.array(FORMAT),
            format_version=np.array(FORMAT_VERSION),
            state=np.array(json.dumps(state, default=_jsonable)),
            params=net.layout.flat(net.params),
        )
    return path


def _jsonable(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(f"not JSON-serializable: {type(x).__name__}")


def load_checkpoint(directory):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    directory : str or Path
        The checkpoint directory (or the ``checkpoint.npz`` file itself).

    Returns
    -------
    net : Network
        Parameters and generator state as they were after the last saved epoch.
    state : dict
        ``epoch``, ``train`` (training arguments), ``history`` (header and
        records).

    Raises
    ------
    FileNotFoundError
        If there is no checkpoint there.
    ValueError
        If the file is truncated, corrupted or not a fastnet checkpoint; the
        message names the file.
    """
    from fastnet.network import Network

    path = Path(directory)
    if path.is_dir():
        path = path / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise ValueError("not a fastnet checkpoint")
            if int(z["format_version"]) > FORMAT_VERSION:
                raise ValueError(f"written by a newer fastnet (format {int(z['format_version'])})")
            state = json.loads(str(z["state"]))
            params = z["params"]
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise ValueError(f"{path}: cannot read checkpoint ({e})") from None
    cfg = state["network"]
    net = Network(
        cfg["sizes"],
        cost=cfg["cost"],
        activation=cfg["activation"],
        dtype=cfg["dtype"],
        init=None,
        seed=state["seed"],
    )
    need = net.layout.n_weights + net.layout.n_biases
    if params.shape != (need,) or params.dtype != net.params.dtype:
        raise ValueError(f"{path}: parameters do not match sizes {cfg['sizes']}")
    net.layout.load_flat_(net.params, params)
    net.init, net.bias_init = cfg["init"], cfg["bias_init"]
    net.rng.bit_generator.state = state["rng"]
    return net, state
