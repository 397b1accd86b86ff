"""Offline datasets for training the network of E8. Nothing here downloads anything.

``load(name)`` returns a :class:`Dataset` whose inputs are standardized with the *training*
statistics (mean 0, standard deviation 1 per feature on the training set; a constant feature is
only centred), so no information from the test set leaks into training.

- ``digits``: scikit-learn's 8×8 handwritten digits (shipped with scikit-learn), 10 classes,
  1797 images, stratified train/test split.
- ``mnist1d``: Greydanus' MNIST-1D, *generated locally* by ``mnist1d.data.make_dataset`` (its
  download path is never used), 40 features, 10 classes, 4000 + 1000 examples. Generating takes
  a few seconds, so the arrays are cached in memory per seed and on disk under
  ``$FIRSTORDER_CACHE`` (default ``~/.cache/firstorder``).
- ``xor``: the four points of XOR (``noise=0``), or noisy clouds around them.
- ``spirals``: two interleaved spirals, 2 classes.
- ``teacher``: regression on the outputs of a random teacher :class:`~firstorder.nn.MLP`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from firstorder.errors import UserValueError
from firstorder.files import atomic

__all__ = ["Dataset", "load", "names"]


@dataclass(frozen=True, eq=False)  # tensors have no single truth value for ==
class Dataset:
    """A train/test split. x: float32 ``[n, n₀]``; y: int64 labels ``[n]`` (classification) or
    float32 targets ``[n, n_L]`` (regression)."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    task: str  # "classification" | "regression"
    n_classes: int | None = None  # None for regression

    @property
    def n_features(self) -> int:
        """n₀, the width of the network's input."""
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        """n_L, the width of the network's output: classes (logits) or regression targets."""
        return self.n_classes if self.task == "classification" else self.y_train.shape[1]

    def to(self, dtype: torch.dtype) -> Dataset:
        """The same data with inputs (and regression targets) in ``dtype``, e.g. float64."""
        cast = dict(x_train=self.x_train.to(dtype), x_test=self.x_test.to(dtype))
        if self.task == "regression":
            cast.update(y_train=self.y_train.to(dtype), y_test=self.y_test.to(dtype))
        return replace(self, **cast)


def _standardized(x_train: np.ndarray, x_test: np.ndarray) -> tuple[Tensor, Tensor]:
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # digits has pixels that are 0 in every training image
    return (
        torch.tensor((x_train - mean) / std, dtype=torch.float32),
        torch.tensor((x_test - mean) / std, dtype=torch.float32),
    )


def _classification(name: str, x_tr, y_tr, x_te, y_te, n_classes: int) -> Dataset:
    x_train, x_test = _standardized(x_tr, x_te)
    return Dataset(
        name,
        x_train,
        torch.tensor(y_tr, dtype=torch.int64),
        x_test,
        torch.tensor(y_te, dtype=torch.int64),
        "classification",
        n_classes,
    )


def _check_count(name: str, value: object, allowed: str = "a positive integer or None") -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserValueError(f"{name} must be {allowed}; got {value!r}.")


def _check_noise(noise: object) -> float:
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not noise >= 0:
        raise UserValueError(f"noise must be a number >= 0; got {noise!r}.")
    return float(noise)


# --- digits -----------------------------------------------------------------------------------


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # shipped inside scikit-learn: no download

    bunch = load_digits()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def digits(seed: int = 0, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """scikit-learn's 8×8 digits: 64 features, 10 classes; default split 80 % / 20 %,
    stratified by class and shuffled with ``seed``."""
    from sklearn.model_selection import train_test_split

    x, y = _digits_arrays()
    n_train = n_train if n_train is not None else round(0.8 * len(y))
    n_test = n_test if n_test is not None else len(y) - n_train
    if n_train + n_test > len(y) or n_train < 10 or n_test < 10:
        raise UserValueError(
            f"n_train + n_test must be at most {len(y)} for digits with at least 10 each (one "
            f"per class); got n_train={n_train}, n_test={n_test}."
        )
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, train_size=n_train, test_size=n_test, stratify=y, random_state=seed
    )
    return _classification("digits", x_tr, y_tr, x_te, y_te, 10)


# --- mnist1d ----------------------------------------------------------------------------------


def _cache_dir() -> Path:
    return Path(os.environ.get("FIRSTORDER_CACHE", Path.home() / ".cache" / "firstorder"))


def _generate_mnist1d(seed: int) -> dict[str, np.ndarray]:
    try:
        import random

        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.seed = seed
        # make_dataset seeds Python's and NumPy's global generators; put them back afterwards,
        # so loading data does not change anyone else's random numbers.
        py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
        try:
            d = make_dataset(args)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002
    except Exception as error:
        raise RuntimeError(
            f"could not generate mnist1d locally with mnist1d.data.make_dataset (seed {seed}): "
            f"{error!r}; firstorder never downloads it, so check that the mnist1d package is "
            f"installed and importable."
        ) from error
    return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


@functools.cache
def _mnist1d_arrays(seed: int) -> dict[str, np.ndarray]:
    """The generated arrays for one seed: from memory, else the disk cache, else generated."""
    # The file name carries mnist1d's version, so an upgrade that changes the generator never
    # reads an old file. (Reading the version, unlike importing mnist1d, takes no time.)
    version = importlib.metadata.version("mnist1d")
    path = _cache_dir() / f"mnist1d-{version}-seed{seed}.npz"
    try:
        with np.load(path) as f:
            return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except (OSError, KeyError, ValueError):
        pass  # no usable cache file: generate
    arrays = _generate_mnist1d(seed)
    # the disk cache is an optimization only: a read-only home must not break loading
    with contextlib.suppress(OSError), atomic(path, "wb") as f:
        np.savez(f, **arrays)  # readers see the old file or the whole new one
    return arrays


def mnist1d(seed: int = 0, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """MNIST-1D generated locally with generator seed ``seed``: 40 features, 10 classes, 4000
    training and 1000 test examples (the first ``n_train`` / ``n_test`` of them if given)."""
    d = _mnist1d_arrays(seed)
    for name, value, n in (("n_train", n_train, len(d["y"])), ("n_test", n_test, len(d["y_test"]))):
        if value is not None and value > n:
            raise UserValueError(f"{name} must be at most {n} for mnist1d; got {value}.")
    x_tr, y_tr = d["x"][:n_train], d["y"][:n_train]
    x_te, y_te = d["x_test"][:n_test], d["y_test"][:n_test]
    return _classification("mnist1d", x_tr, y_tr, x_te, y_te, 10)


# --- synthetic --------------------------------------------------------------------------------


def xor(
    seed: int = 0, n_train: int | None = None, n_test: int | None = None, noise: float = 0.0
) -> Dataset:
    """XOR: label = x₁ XOR x₂ for the corners x ∈ {0, 1}².

    With ``n_train=None`` the training set is the four corners and so is the test set (the
    classic problem a linear model cannot solve). Otherwise ``n_train`` (and ``n_test``, default
    ``n_train``) points are drawn at random corners plus Gaussian noise of standard deviation
    ``noise``.
    """
    noise = _check_noise(noise)
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    labels = np.array([0, 1, 1, 0])
    if n_train is None:
        return _classification("xor", corners, labels, corners, labels, 2)
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        i = rng.integers(0, 4, size=n)
        return corners[i] + noise * rng.standard_normal((n, 2)), labels[i]

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test if n_test is not None else n_train)
    return _classification("xor", x_tr, y_tr, x_te, y_te, 2)


def spirals(
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    noise: float = 0.1,
    turns: float = 1.5,
) -> Dataset:
    """Two interleaved spirals (class 0 and class 1 rotated by π): radius grows with the angle
    t ∈ [0, 2π·turns]; Gaussian noise of std ``noise`` on each coordinate. Default 500 + 500
    points, balanced classes."""
    noise = _check_noise(noise)
    if isinstance(turns, bool) or not isinstance(turns, int | float) or not turns > 0:
        raise UserValueError(f"turns must be a number > 0; got {turns!r}.")
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 2
        # √u spreads points evenly along the arc instead of crowding the centre.
        t = 2 * math.pi * turns * np.sqrt(rng.uniform(0.02, 1.0, size=n))
        angle = t + math.pi * y
        x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) / (2 * math.pi * turns)
        return x + noise * rng.standard_normal((n, 2)), y

    n_train = n_train if n_train is not None else 500
    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test if n_test is not None else n_train)
    return _classification("spirals", x_tr, y_tr, x_te, y_te, 2)


def teacher(
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    noise: float = 0.1,
    widths: tuple[int, ...] = (10, 32, 1),
    activation: str = "tanh",
) -> Dataset:
    """Regression on a random teacher network: y = f_teacher(x) + noise·ξ with x, ξ ~ N(0, I)
    and f_teacher an :class:`~firstorder.nn.MLP` of ``widths`` initialized with ``seed``, its
    weights W⁽ⁱ⁾ scaled by 3.
    Targets are standardized with the training statistics too, so predicting the mean scores a
    risk (MSE) of about 1. Default 1000 + 1000 examples."""
    from firstorder.nn import MLP

    noise = _check_noise(noise)
    f = MLP(list(widths), activation, seed=seed)
    # At PyTorch's init tanh works near its linear part; with W scaled by 3, a least-squares
    # linear fit leaves about a fifth of the variance unexplained, which a network must learn.
    with torch.no_grad():
        for layer in f.layers:
            layer.W.mul_(3.0)
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((n, widths[0]))
        with torch.no_grad():
            y = f(torch.tensor(x, dtype=torch.float32)).double().numpy()
        return x, y + noise * rng.standard_normal(y.shape)

    n_train = n_train if n_train is not None else 1000
    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test if n_test is not None else n_train)
    x_train, x_test = _standardized(x_tr, x_te)
    y_train, y_test = _standardized(y_tr, y_te)
    return Dataset("teacher", x_train, y_train, x_test, y_test, "regression")


LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": digits,
    "mnist1d": mnist1d,
    "xor": xor,
    "spirals": spirals,
    "teacher": teacher,
}


def names() -> list[str]:
    """The names ``load`` accepts."""
    return list(LOADERS)


def load(
    name: str, seed: int = 0, n_train: int | None = None, n_test: int | None = None, **options
) -> Dataset:
    """The dataset ``name`` (see :func:`names`), split and standardized; ``seed`` fixes every
    random choice (split, generation, noise). ``options`` go to the dataset's own function
    (``noise`` for xor/spirals/teacher, ``turns`` for spirals, ``widths``/``activation`` for
    teacher)."""
    if not isinstance(name, str) or name.lower() not in LOADERS:
        raise UserValueError(f"name must be one of {', '.join(LOADERS)}; got {name!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserValueError(f"seed must be an integer >= 0; got {seed!r}.")
    _check_count("n_train", n_train)
    _check_count("n_test", n_test)
    loader = LOADERS[name.lower()]
    allowed = set(inspect.signature(loader).parameters) - {"seed", "n_train", "n_test"}
    for key in options:
        if key not in allowed:
            raise UserValueError(
                f"options for {name} must be among {sorted(allowed) or 'none'}; got {key!r}."
            )
    return loader(seed=seed, n_train=n_train, n_test=n_test, **options)
