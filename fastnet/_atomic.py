"""Crash-safe file writing and checksums.

A reader must never see a half-written file at its final name: a download cut
off by Ctrl-C, or a checkpoint interrupted by a full disk, must leave either the
old file or no file, never a truncated one that later fails in a confusing way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "sha256_file"]

_CHUNK = 1 << 20


def _default_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give a new file."""
    # mkstemp creates 0600 files; without this a fetched dataset or a saved
    # network would be unreadable by other users, unlike any ordinary file.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Fallback reads the umask by setting it, which is briefly racy with other
    # threads creating files; only reached where /proc is unavailable.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; best effort, as not every OS/filesystem allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Write a file so that it appears at ``path`` complete or not at all.

    The block writes to a temporary file in the same directory (so the final
    rename cannot cross filesystems). On a clean exit the data is flushed and
    fsynced, the temporary file is renamed over ``path`` with :func:`os.replace`
    and the directory is fsynced (best effort). If the block raises, the
    temporary file is removed, ``path`` is left as it was and the exception
    propagates.

    Parameters
    ----------
    path : str or os.PathLike
        Final location of the file. Its directory must exist.
    mode : {"wb", "w"}, optional
        Binary (default) or text mode.
    encoding : str, optional
        Text encoding for ``mode="w"``; defaults to UTF-8. Must be None in
        binary mode.

    Yields
    ------
    file object
        Open on the temporary file; its ``name`` is the temporary path, which
        callers may re-read (after ``flush()``) to verify what they wrote.

    Raises
    ------
    ValueError
        If ``mode`` is not ``"wb"`` or ``"w"``.
    OSError
        If the temporary file cannot be created or renamed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_write(target, "w") as f:
    ...     _ = f.write("hello")
    >>> target.read_text()
    'hello'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write supports mode 'wb' or 'w', not {mode!r}")
    if mode == "wb" and encoding is not None:
        raise ValueError("atomic_write: encoding is only allowed in text mode")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    target = Path(path)
    directory = target.parent
    try:
        # Keep the permissions of a file being replaced (e.g. a shared dataset).
        perm = target.stat().st_mode & 0o777
    except FileNotFoundError:
        perm = _default_mode()
    tmp = tempfile.NamedTemporaryFile(
        mode=mode,
        encoding=encoding,
        dir=directory,
        prefix=f".{target.name}.",
        suffix=".tmp",
        delete=False,
    )
    tmp_path = Path(tmp.name)
    try:
        with tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_path, perm)
        os.replace(tmp_path, target)
    except BaseException:
        # BaseException too: a KeyboardInterrupt mid-download must not leave
        # a stray temporary file behind either.
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    _fsync_dir(directory)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file, read in chunks.

    Parameters
    ----------
    path : str or os.PathLike
        File to hash.

    Returns
    -------
    str
        Lower-case hexadecimal digest (64 characters).

    Raises
    ------
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> p.write_bytes(b"")
    0
    >>> sha256_file(p)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
