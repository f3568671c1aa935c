"""Tests for fastnet.sklearn.FastNetClassifier: scikit-learn's own estimator
checks, pipelines and grid search, partial_fit, labels, pickling, warm start
and threads."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnet  # noqa: E402
from fastnet.sklearn import FastNetClassifier  # noqa: E402
from fastnet.workspace import index_cache_info  # noqa: E402


def blobs(n=120, n_features=5, n_classes=3, seed=0):
    """Separable-ish clusters in [0, 1)^n_features, labels 0..n_classes-1."""
    rng = np.random.default_rng(seed)
    centers = rng.random((n_classes, n_features))
    y = np.arange(n) % n_classes
    X = centers[y] + 0.05 * rng.standard_normal((n, n_features))
    return X, y


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits, pixels scaled to [0, 1], split 3:1."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


# scikit-learn's estimator checks, on the default (the book's sigmoid /
# cross-entropy network) and on a float32 network with two tanh hidden layers
# and a softmax output. Every check passes; none needs an expected-failure entry or a tag
# (the estimator is deterministic for a fixed random_state, and reaches the
# accuracy check_classifiers_train demands).
@pytest.mark.needs_jit
@parametrize_with_checks(
    [
        FastNetClassifier(),
        FastNetClassifier(
            hidden_layer_sizes=(16, 8), activation="tanh", cost="log_likelihood", dtype="float32"
        ),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_import_fastnet_does_not_import_sklearn():
    code = (
        "import sys, fastnet; assert 'sklearn' not in sys.modules; "
        "fastnet.FastNetClassifier; assert 'sklearn' in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert fastnet.FastNetClassifier is FastNetClassifier


def test_hyperparameters_are_stored_unchanged():
    clf = FastNetClassifier(hidden_layer_sizes=[20], eta=0.5, random_state=3)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == [20]
    assert params["eta"] == 0.5
    assert params["random_state"] == 3
    clf.set_params(epochs=2, lmbda=0.0)
    assert (clf.epochs, clf.lmbda) == (2, 0.0)
    assert clone(clf).get_params() == clf.get_params()


def test_fit_attributes_and_network():
    X, y = blobs()
    clf = FastNetClassifier(hidden_layer_sizes=(7,), epochs=20, eta=1.0, lmbda=0.0, random_state=0)
    clf.fit(X, y)
    assert clf.n_features_in_ == 5
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert isinstance(clf.network_, fastnet.Network)
    assert clf.network_.sizes == (5, 7, 3)
    assert clf.n_iter_ == 20
    assert [r["epoch"] for r in clf.history_.records] == list(range(1, 21))
    assert clf.history_.header["config"]["mini_batch_size"] == 10
    assert clf.score(X, y) > 0.9
    # hidden_layer_sizes as an int, and no hidden layer at all
    assert FastNetClassifier(4, epochs=1).fit(X, y).network_.sizes == (5, 4, 3)
    assert FastNetClassifier((), epochs=1).fit(X, y).network_.sizes == (5, 3)


def test_random_state_gives_identical_fits():
    X, y = blobs()
    a = FastNetClassifier(epochs=3, random_state=7).fit(X, y)
    b = FastNetClassifier(epochs=3, random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.network_.params, b.network_.params)
    c = FastNetClassifier(epochs=3, random_state=8).fit(X, y)
    assert not np.array_equal(a.network_.params, c.network_.params)


@pytest.mark.parametrize("cost", ["cross_entropy", "quadratic", "log_likelihood"])
def test_predict_proba_is_normalized(cost):
    X, y = blobs()
    clf = FastNetClassifier(cost=cost, epochs=3, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    out = clf.network_.feedforward(X)
    np.testing.assert_allclose(proba, out / out.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(out, axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)


def test_string_and_noncontiguous_labels():
    X, y = blobs()
    names = np.array(["cat", "dog", "emu"])[y]
    codes = np.array([-5, 10, 1000])[y]
    base = FastNetClassifier(epochs=5, random_state=1).fit(X, y)
    for labels, classes in ((names, ["cat", "dog", "emu"]), (codes, [-5, 10, 1000])):
        clf = FastNetClassifier(epochs=5, random_state=1).fit(X, labels)
        np.testing.assert_array_equal(clf.classes_, classes)
        # The label encoding is the sorted order, so the network is the same.
        np.testing.assert_array_equal(clf.network_.params, base.network_.params)
        np.testing.assert_array_equal(clf.predict(X), np.asarray(classes)[base.predict(X)])
        assert clf.score(X, labels) == base.score(X, y)


def test_single_class_is_an_error():
    X, _ = blobs(n=20)
    with pytest.raises(ValueError, match="at least 2 classes"):
        FastNetClassifier(epochs=1).fit(X, np.zeros(20, int))


def test_unfitted_and_bad_parameters():
    X, y = blobs(n=20)
    with pytest.raises(NotFittedError):
        FastNetClassifier().predict(X)
    for bad, exc in (
        ({"eta": 0}, ValueError),
        ({"epochs": -1}, ValueError),
        ({"batch_size": 1.5}, TypeError),
        ({"hidden_layer_sizes": (0,)}, ValueError),
        ({"cost": "hinge"}, ValueError),
        ({"dtype": "float16"}, ValueError),
        ({"init": "nope"}, ValueError),
        ({"n_threads": 10_000}, ValueError),
    ):
        with pytest.raises(exc):
            FastNetClassifier(**bad).fit(X, y)


def test_partial_fit_equals_fit():
    X, y = blobs()
    clf = FastNetClassifier(random_state=4)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 3
    assert [r["epoch"] for r in clf.history_.records] == [1, 2, 3]
    ref = FastNetClassifier(epochs=3, random_state=4).fit(X, y)
    # One epoch per call, and the network's generator carries on: same bits.
    np.testing.assert_array_equal(clf.network_.params, ref.network_.params)


def test_float32_estimator_trains_on_float64_data_as_on_a_converted_copy():
    # float64 data reaches training unconverted (indexed into float32 there),
    # so a partial_fit loop on one array reuses its index: same bits as a
    # float32 copy.
    X, y = blobs()
    X[X < 0.3] = 0
    on64 = FastNetClassifier(dtype="float32", random_state=5)
    on32 = FastNetClassifier(dtype="float32", random_state=5)
    hits = index_cache_info()["hits"]
    for _ in range(3):
        on64.partial_fit(X, y, classes=[0, 1, 2])
        on32.partial_fit(X.astype(np.float32), y, classes=[0, 1, 2])
    assert on64.network_.params.tobytes() == on32.network_.params.tobytes()
    assert index_cache_info()["hits"] - hits >= 2
    np.testing.assert_array_equal(on64.predict_proba(X), on32.predict_proba(X))


def test_float32_estimator_predicts_float64_data_unconverted(monkeypatch):
    # The network's feedforward reads float64 rows as they are (converting
    # blocks of rows inside): the bits of predicting a float32 copy.
    X, y = blobs()
    clf = FastNetClassifier(dtype="float32", random_state=5).fit(X, y)
    want = clf.predict_proba(X.astype(np.float32))
    seen = []
    real = fastnet.Network.feedforward

    def spy(self, X):
        seen.append(X.dtype)
        return real(self, X)

    monkeypatch.setattr(fastnet.Network, "feedforward", spy)
    assert clf.predict_proba(X).tobytes() == want.tobytes()
    assert seen == [np.float64]


def test_partial_fit_batches_with_missing_classes():
    X, y = blobs(n=90)
    labels = np.array(["a", "b", "c"])[y]
    clf = FastNetClassifier(epochs=1, random_state=0)
    clf.partial_fit(X[labels != "c"], labels[labels != "c"], classes=["c", "b", "a"])
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    assert clf.network_.sizes[-1] == 3
    clf.partial_fit(X, labels)
    assert set(clf.predict(X)) <= {"a", "b", "c"}
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, np.where(labels == "a", "z", labels))
    with pytest.raises(ValueError, match="differs"):
        clf.partial_fit(X, labels, classes=["a", "b"])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], labels)


def test_pickle_and_deepcopy_round_trips():
    X, y = blobs()
    clf = FastNetClassifier(hidden_layer_sizes=(6, 4), epochs=3, random_state=2).fit(X, y)
    for twin in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
        np.testing.assert_array_equal(twin.predict(X), clf.predict(X))
        net = twin.network_
        assert net is not clf.network_
        # The per-layer views still look into the parameter buffer...
        assert all(np.shares_memory(w, net.params) for w in net.weights)
        assert all(np.shares_memory(b, net.params) for b in net.biases)
        # ...and the generator state came along: training on gives the same bits.
        net.train((X, y), 1, 10, 0.1, 5.0)
        np.testing.assert_array_equal(net.weights[0], net.params[: 5 * 6].reshape(5, 6).T)
    again = copy.deepcopy(clf)
    again.set_params(warm_start=True, epochs=1).fit(X, y)
    clf.set_params(warm_start=True, epochs=1).fit(X, y)
    np.testing.assert_array_equal(again.network_.params, clf.network_.params)


def test_warm_start_continues_from_previous_weights():
    X, y = blobs()
    clf = FastNetClassifier(epochs=2, warm_start=True, random_state=5).fit(X, y)
    after_two = clf.network_.params.copy()
    net = clf.network_
    clf.set_params(epochs=3).fit(X, y)
    assert clf.network_ is net  # same network, trained on
    assert not np.array_equal(clf.network_.params, after_two)
    assert clf.n_iter_ == 5
    assert [r["epoch"] for r in clf.history_.records] == [1, 2, 3, 4, 5]
    ref = FastNetClassifier(epochs=5, random_state=5).fit(X, y)
    np.testing.assert_array_equal(clf.network_.params, ref.network_.params)
    # Without warm_start, fit starts over.
    cold = clf.set_params(warm_start=False, epochs=2).fit(X, y)
    np.testing.assert_array_equal(cold.network_.params, after_two)
    assert cold.n_iter_ == 2
    # A different architecture cannot continue.
    clf.set_params(warm_start=True, hidden_layer_sizes=(9,))
    with pytest.raises(ValueError, match="cannot continue training"):
        clf.fit(X, y)


def test_n_threads_passes_through():
    X, y = blobs()
    clf = FastNetClassifier(epochs=1, n_threads=1, random_state=0).fit(X, y)
    assert clf.network_.n_threads == 1
    assert clf.history_.header["n_threads"] == 1
    clf.set_params(n_threads=None).predict(X)
    assert clf.network_.n_threads is None


def test_verbose_prints_epochs(capsys):
    X, y = blobs()
    clf = FastNetClassifier(epochs=2, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1: training cost")
    assert len(clf.history_.records[0]) == 4  # epoch, seconds, training cost, accuracy


@pytest.mark.needs_jit
def test_pipeline_with_standard_scaler(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("net", FastNetClassifier(hidden_layer_sizes=(40,), epochs=10, random_state=0)),
        ]
    ).fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.93
    assert pipe.predict_proba(X_test).shape == (len(X_test), 10)


@pytest.mark.needs_jit
def test_grid_search(digits):
    X_train, X_test, y_train, y_test = digits
    search = GridSearchCV(
        FastNetClassifier(epochs=5, random_state=0),
        {"hidden_layer_sizes": [(10,), (40,)], "eta": [0.05, 0.5]},
        cv=3,
    ).fit(X_train, y_train)
    assert set(search.cv_results_["params"][0]) == {"hidden_layer_sizes", "eta"}
    assert search.best_params_ == {"eta": 0.5, "hidden_layer_sizes": (40,)}
    assert search.best_score_ > 0.9
    assert search.score(X_test, y_test) > 0.9
    assert search.best_estimator_.n_iter_ == 5
