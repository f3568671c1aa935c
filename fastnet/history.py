"""Per-epoch monitoring: the History object and its JSON lines file.

A metrics file is JSON lines: a header record (``"type": "header"``) with the
configuration, seed, versions, threading layer and thread count, then one
``"type": "epoch"`` record per epoch, written and flushed as the epoch ends so
a crash loses at most the epoch in progress.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numba
import numpy as np

from fastnet._atomic import atomic_write

#: Keys a per-epoch record may hold besides ``epoch`` and ``seconds``: the
#: network2 monitor names without the ``monitor_`` prefix.
MONITORS = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")


def versions() -> dict:
    """Versions of fastnet and what it runs on, for metrics headers."""
    from fastnet import __version__

    return {
        "fastnet": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
    }


class History:
    """What happened during training, epoch by epoch.

    Parameters
    ----------
    header : dict
        Configuration, seed, versions, threading layer and thread count.

    Attributes
    ----------
    header : dict
    records : list of dict
        One per epoch: ``epoch``, ``seconds`` (training time of the epoch) and
        whichever of :data:`MONITORS` were switched on. Accuracies are
        fractions in [0, 1]; costs include the L2 term.

    Examples
    --------
    >>> h = History({"seed": 1})
    >>> h.append({"epoch": 1, "seconds": 0.1, "evaluation_accuracy": 0.93})
    >>> h.evaluation_accuracy
    [0.93]
    """

    def __init__(self, header: dict | None = None, records=None):
        self.header = dict(header or {})
        self.records = list(records or [])

    def append(self, record: dict) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"History({len(self)} epochs)"

    def _series(self, key):
        return [r[key] for r in self.records if key in r]

    # network2's SGD returns these four lists.
    training_cost = property(lambda self: self._series("training_cost"))
    training_accuracy = property(lambda self: self._series("training_accuracy"))
    evaluation_cost = property(lambda self: self._series("evaluation_cost"))
    evaluation_accuracy = property(lambda self: self._series("evaluation_accuracy"))

    def to_jsonl(self, path) -> None:
        """Write the header and every record to `path`, atomically."""
        with atomic_write(path, "w") as f:
            f.write(json.dumps({"type": "header", **self.header}) + "\n")
            for r in self.records:
                f.write(json.dumps({"type": "epoch", **r}) + "\n")

    @classmethod
    def from_jsonl(cls, path) -> History:
        """Read a metrics file written by :meth:`to_jsonl` or :class:`MetricsWriter`.

        Raises
        ------
        ValueError
            If a line is not JSON or the header is missing; names the file and line.
        """
        header, records = None, []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not a JSON record ({e.msg})") from None
                kind = rec.pop("type", None)
                if kind == "header":
                    header = rec
                elif kind == "epoch":
                    records.append(rec)
        if header is None:
            raise ValueError(f"{path}: no header record; not a fastnet metrics file")
        return cls(header, records)


class MetricsWriter:
    """Append-as-you-go JSON lines writer for a training run.

    Writes the header when opened and one line per :meth:`write`, flushed and
    fsynced so each finished epoch is on disk.
    """

    def __init__(self, path, header: dict):
        self.path = Path(path)
        self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.write(header, kind="header")

    def write(self, record: dict, kind: str = "epoch") -> None:
        self._f.write(json.dumps({"type": kind, **record}) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
