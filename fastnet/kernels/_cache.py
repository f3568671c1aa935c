"""Keep Numba's on-disk cache of fastnet's kernels honest.

Numba decides whether a cached kernel is stale from the file that defines it
alone. fastnet's kernels inline functions from other kernel modules and
constants from :mod:`fastnet._config`, so an edit there would otherwise leave
stale machine code in use (seen during development: wrong gradients from a
cached kernel). The locators below stamp every fastnet kernel's cache entry with
a digest of all those sources instead, so any change to any of them recompiles.

They wrap Numba's own locators (same cache locations, ``NUMBA_CACHE_DIR``
respected) and apply only to files in this package; if Numba's internals change
shape, fastnet falls back to Numba's default behaviour.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_KERNELS = Path(__file__).resolve().parent
_SOURCES = sorted(_KERNELS.glob("*.py")) + [_KERNELS.parent / "_config.py"]


def sources_digest() -> str:
    """SHA-256 of every source file the compiled kernels depend on."""
    h = hashlib.sha256()
    for path in _SOURCES:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


_DIGEST = sources_digest()


def _install():
    try:
        from numba.core import caching

        bases = (
            caching.UserProvidedCacheLocator,
            caching.InTreeCacheLocator,
            caching.UserWideCacheLocator,
        )
        registry = caching.CacheImpl._locator_classes
    except AttributeError:  # pragma: no cover - a Numba without these internals
        return False

    class _StampMixin:
        def get_source_stamp(self):
            return ("fastnet-kernel-sources", _DIGEST)

        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != _KERNELS:
                return None
            return super().from_function(py_func, py_file)

    ours = [type(f"Fastnet{base.__name__}", (_StampMixin, base), {}) for base in bases]
    if not any(getattr(c, "__name__", "").startswith("Fastnet") for c in registry):
        registry[:0] = ours
    return True


INSTALLED = _install()
