"""A scikit-learn classifier around :class:`fastnet.Network`.

:class:`FastNetClassifier` follows scikit-learn's estimator conventions
(hyperparameters in ``__init__`` only, learned attributes ending in ``_``,
``fit``/``partial_fit``/``predict``/``predict_proba``/``score``), so it can sit
in a :class:`sklearn.pipeline.Pipeline`, be cloned by
:class:`sklearn.model_selection.GridSearchCV`, pickled and deep-copied.

scikit-learn is an optional dependency (``pip install "fastnet[sklearn]"``);
``import fastnet`` never imports it, only ``fastnet.FastNetClassifier`` or
``fastnet.sklearn`` do.
"""

from __future__ import annotations

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        'fastnet.FastNetClassifier needs scikit-learn: pip install "fastnet[sklearn]"'
    ) from e

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


from fastnet._validation import check_choice, check_dtype, check_number
from fastnet.history import History
from fastnet.init import get_initializer
from fastnet.kernels import codes
from fastnet.network import Network
from fastnet.threads import check_threads

__all__ = ["FastNetClassifier"]

#: Seeds drawn from ``random_state`` for each new network are below this.
_SEED_BOUND = np.iinfo(np.int32).max


def _floats(dtype):
    """The float dtypes fastnet's kernels take as they are, the network's
    `dtype` first (what scikit-learn's validation converts anything else to)."""
    dtype = np.dtype(dtype)
    return [dtype, np.dtype(np.float64 if dtype == np.float32 else np.float32)]


class FastNetClassifier(ClassifierMixin, BaseEstimator):
    """Fully-connected network classifier trained by fastnet's compiled SGD.

    The network is ``[n_features, *hidden_layer_sizes, n_classes]``: one output
    neuron per class, trained with L2-regularized mini-batch SGD exactly as
    :meth:`fastnet.Network.train` does (the book's chapter 3 network with the
    defaults). Class labels may be anything :func:`numpy.unique` can sort
    (strings, non-contiguous integers); they are encoded as ``0..n_classes-1``.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(30,)
        Neurons per hidden layer; ``()`` means no hidden layer.
    init : str, default="default"
        Weight initializer (see :data:`fastnet.INITIALIZERS`); ``"default"`` is
        the book's N(0, 1/n_in).
    bias_init : str, optional
        Bias initializer; by default the one that goes with `init`.
    activation : {"sigmoid", "tanh", "relu"}, default="sigmoid"
        Hidden-layer activation.
    cost : {"cross_entropy", "quadratic", "log_likelihood"}, default="cross_entropy"
        Cross-entropy and quadratic train sigmoid outputs (``predict_proba``
        normalizes them to sum to 1); log-likelihood a softmax output layer.
    eta : float, default=0.1
        Learning rate.
    lmbda : float, default=5.0
        L2 regularization parameter: each step scales the weights by
        ``1 - eta * lmbda / n`` for a training set of ``n`` samples (so its
        effect depends on ``n``, as in the book).
    batch_size : int, default=10
        Mini-batch size.
    epochs : int, default=30
        Epochs per :meth:`fit` call (:meth:`partial_fit` runs one).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the parameters and of the arithmetic.
    random_state : int, RandomState instance or None, default=None
        Draws the seed of each new network (initialization and shuffling).
        An int gives the same bits on every fit, whatever ``n_threads``.
    warm_start : bool, default=False
        If True, :meth:`fit` continues from the weights of the previous fit
        (and the network's generator continues too, so ``fit`` for ``a``
        epochs then ``b`` more equals one fit of ``a + b`` epochs).
    n_threads : int, optional
        Threads for fastnet's parallel kernels; default: all of them, i.e.
        ``NUMBA_NUM_THREADS`` or every core (set ``NUMBA_NUM_THREADS=1`` in
        process-pool workers).
    verbose : bool, default=False
        Also monitor the training cost and accuracy after each epoch (one
        extra forward pass over the training data) and print them.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` had string column names.
    network_ : fastnet.Network
        The trained network (its ``sizes``, ``weights``, ``biases``...).
    history_ : fastnet.History
        One record per epoch trained so far (``epoch`` counts across
        ``warm_start`` fits and ``partial_fit`` calls); the header is that of
        the first training call.
    n_iter_ : int
        Epochs trained so far.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((60, 4))
    >>> y = np.where(X[:, 0] > 0.5, "big", "small")
    >>> clf = FastNetClassifier(hidden_layer_sizes=(8,), eta=1.0, lmbda=0.0,
    ...                         epochs=20, random_state=0).fit(X, y)
    >>> clf.classes_
    array(['big', 'small'], dtype='<U5')
    >>> clf.predict_proba(X[:2]).sum(axis=1)
    array([1., 1.])
    """

    def __init__(
        self,
        hidden_layer_sizes=(30,),
        *,
        init="default",
        bias_init=None,
        activation="sigmoid",
        cost="cross_entropy",
        eta=0.1,
        lmbda=5.0,
        batch_size=10,
        epochs=30,
        dtype="float64",
        random_state=None,
        warm_start=False,
        n_threads=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.init = init
        self.bias_init = bias_init
        self.activation = activation
        self.cost = cost
        self.eta = eta
        self.lmbda = lmbda
        self.batch_size = batch_size
        self.epochs = epochs
        self.dtype = dtype
        self.random_state = random_state
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.verbose = verbose

    # -- scikit-learn plumbing ---------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Dense real-valued input only (the kernels index a dense row-major
        # array); NaN and infinity are rejected. These are the defaults,
        # stated here so the contract is visible.
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags

    def __getstate__(self):
        # A pickled or deep-copied Network keeps its arrays but loses the link
        # between `params` and the `weights`/`biases` views (each is copied on
        # its own), so training the copy would leave `weights` stale. Store the
        # network as plain arrays instead and rebuild it on load.
        state = dict(super().__getstate__())
        net = state.get("network_")
        if isinstance(net, Network):
            state["network_"] = _network_state(net)
        return state

    def __setstate__(self, state):
        state = dict(state)
        net = state.get("network_")
        if isinstance(net, dict):
            state["network_"] = _network_from_state(net)
        super().__setstate__(state)

    # -- parameter checks --------------------------------------------------
    def _hidden_sizes(self) -> tuple[int, ...]:
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, int | np.integer) and not isinstance(hidden, bool):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise TypeError(
                f"hidden_layer_sizes must be an int or a sequence of ints, got {hidden!r}"
            ) from None
        for h in hidden:
            check_number(h, "hidden_layer_sizes", low=1, integer=True)
        return tuple(int(h) for h in hidden)

    def _check_params(self):
        """Validate every hyperparameter before any data is touched."""
        hidden = self._hidden_sizes()
        check_choice(self.cost, codes.COSTS, "cost", "cost")
        check_choice(self.activation, codes.HIDDEN_ACTIVATIONS, "activation", "activation")
        get_initializer(self.init, "init")
        if self.bias_init is not None:
            get_initializer(self.bias_init, "bias_init")
        dtype = check_dtype(self.dtype)
        check_number(self.eta, "eta", low=0, low_open=True)
        check_number(self.lmbda, "lmbda", low=0)
        check_number(self.batch_size, "batch_size", low=1, integer=True)
        check_number(self.epochs, "epochs", low=0, integer=True)
        n_threads = None if self.n_threads is None else check_threads(self.n_threads)
        return hidden, dtype, n_threads

    # -- training ----------------------------------------------------------
    def fit(self, X, y):
        """Train for ``epochs`` epochs on ``(X, y)``.

        A fresh network is built unless ``warm_start`` is set and the
        estimator was fitted before, in which case training continues from
        the current weights (``y`` must then hold only known classes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        hidden, dtype, n_threads = self._check_params()
        fresh = not (self.warm_start and hasattr(self, "network_"))
        return self._train(X, y, None, self.epochs, fresh, hidden, dtype, n_threads)

    def partial_fit(self, X, y, classes=None):
        """Train for one epoch on ``(X, y)``, continuing from the current weights.

        Each call is one epoch of :meth:`fastnet.Network.train` on this
        ``(X, y)``: shuffled, in mini-batches of ``batch_size``, with the L2
        decay ``1 - eta * lmbda / n`` computed from ``n = len(X)`` of the call
        (so many small calls regularize more strongly than one large one).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            Every class label; required on the first call (``y`` of one call
            need not contain all of them), then optional (it must then equal
            ``classes_``).

        Returns
        -------
        self
        """
        hidden, dtype, n_threads = self._check_params()
        fresh = not hasattr(self, "network_")
        if fresh and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit "
                "(every class label, e.g. classes=np.unique(y_all))"
            )
        if (
            not fresh
            and classes is not None
            and not np.array_equal(np.unique(classes), self.classes_)
        ):
            raise ValueError(
                f"classes={classes!r} differs from the classes of the first partial_fit "
                f"call, {self.classes_!r}"
            )
        return self._train(X, y, classes, 1, fresh, hidden, dtype, n_threads)

    def _train(self, X, y, classes, epochs, fresh, hidden, dtype, n_threads):
        # Either float dtype passes unconverted (others become `dtype`): training
        # indexes it into the network's dtype itself, and a partial_fit loop
        # on one array then reuses its index instead of converting it per call.
        X, y = _validate_data(self, X, y, reset=fresh, dtype=_floats(dtype))
        check_classification_targets(y)
        if fresh:
            labels = np.unique(y if classes is None else classes)
            if len(labels) < 2:
                raise ValueError(
                    f"FastNetClassifier needs at least 2 classes to train, got only one "
                    f"class: {labels[0]!r}. Pass samples of every class (or, for "
                    "partial_fit, every class label in classes=)."
                )
        else:
            labels = self.classes_
        unknown = ~np.isin(y, labels)
        if unknown.any():
            raise ValueError(
                f"y contains labels not in classes: {np.unique(y[unknown])[:5]!r}; "
                f"the classes are {labels!r}"
            )
        sizes = (X.shape[1], *hidden, len(labels))
        if fresh:
            seed = int(check_random_state(self.random_state).randint(_SEED_BOUND))
            net = Network(
                sizes,
                cost=self.cost,
                activation=self.activation,
                dtype=dtype,
                init=self.init,
                bias_init=self.bias_init,
                seed=seed,
                n_threads=n_threads,
            )
        else:
            net = self.network_
            now = (net.sizes, net.cost, net.activation, net.dtype)
            wanted = (sizes, self.cost, self.activation, dtype)
            if now != wanted:
                raise ValueError(
                    "cannot continue training: the network is "
                    f"{_describe(*now)} but the parameters now ask for {_describe(*wanted)}; "
                    "set warm_start=False (or start partial_fit on a fresh estimator)"
                )
            net.n_threads = n_threads
        y_code = np.searchsorted(labels, y)
        history = net.train(
            (X, y_code),
            epochs,
            self.batch_size,
            self.eta,
            self.lmbda,
            monitor_training_cost=bool(self.verbose),
            monitor_training_accuracy=bool(self.verbose),
            callback=_print_epoch if self.verbose else None,
        )
        if fresh:
            self.classes_ = labels
            self.network_ = net
            self.history_ = History(history.header)
            self.n_iter_ = 0
        for record in history.records:
            self.n_iter_ += 1
            self.history_.append({**record, "epoch": self.n_iter_})
        return self

    # -- prediction --------------------------------------------------------
    def _fitted_network(self) -> Network:
        check_is_fitted(self, "network_")
        net = self.network_
        net.n_threads = None if self.n_threads is None else check_threads(self.n_threads)
        return net

    def predict_proba(self, X):
        """Class probabilities, shaped (n_samples, n_classes), in the order of
        ``classes_``.

        Softmax outputs (``cost="log_likelihood"``) are probabilities already;
        sigmoid outputs are divided by their sum (all-zero rows, possible only
        through float32 underflow, give equal probabilities).
        """
        net = self._fitted_network()
        # Either float dtype passes unconverted: feedforward converts blocks
        # of rows where it reads them (the bits of converting first).
        X = _validate_data(self, X, reset=False, dtype=_floats(net.dtype))
        out = net.feedforward(X).astype(np.float64)
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1.0 / out.shape[1])
        return np.divide(out, total, out=uniform, where=total > 0)

    def predict_log_proba(self, X):
        """Natural logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class label for each row of `X` (the most probable class)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def _describe(sizes, cost, activation, dtype) -> str:
    return f"{list(sizes)} {cost}/{activation} {np.dtype(dtype).name}"


def _print_epoch(record) -> None:
    print(
        f"epoch {record['epoch']}: training cost {record['training_cost']:.6f}, "
        f"training accuracy {100 * record['training_accuracy']:.2f}%, "
        f"{record['seconds']:.3f} s",
        flush=True,
    )


def _network_state(net: Network) -> dict:
    """Everything needed to rebuild `net` exactly, as plain values and arrays
    (the fields of :func:`fastnet.io.save` plus the initializer names, seed and
    generator state, so that training a rebuilt copy gives the same bits)."""
    return {
        "sizes": list(net.sizes),
        "cost": net.cost,
        "activation": net.activation,
        "dtype": net.dtype.name,
        "init": net.init,
        "bias_init": net.bias_init,
        "seed": net.seed,
        "params": net.layout.flat(net.params),
        "rng_state": net.rng.bit_generator.state,
    }


def _network_from_state(state: dict) -> Network:
    # n_threads is not stored: the estimator applies its own on every call, and
    # a count valid where the network was pickled may not be valid here.
    net = Network(
        state["sizes"],
        cost=state["cost"],
        activation=state["activation"],
        dtype=state["dtype"],
        init=state["init"],
        bias_init=state["bias_init"],
        seed=state["seed"],
    )
    net.layout.load_flat_(net.params, state["params"])
    net.rng.bit_generator.state = state["rng_state"]
    return net
