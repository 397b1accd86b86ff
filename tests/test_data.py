"""Offline datasets: shapes, dtypes, standardization, splits, seeds, caching, errors."""

import socket

import numpy as np
import pytest
import torch

from firstorder import data


def assert_standardized_on_train(d: data.Dataset) -> None:
    x = d.x_train.double()
    std = x.std(0, unbiased=False)
    assert torch.allclose(x.mean(0), torch.zeros(d.n_features, dtype=torch.float64), atol=1e-5)
    nonconstant = std > 0
    assert torch.allclose(std[nonconstant], torch.ones(int(nonconstant.sum()), dtype=x.dtype))


def test_names():
    assert data.names() == ["digits", "mnist1d", "xor", "spirals", "teacher"]


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="name must be one of digits, mnist1d, xor"):
        data.load("cifar10")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "xor", "n_train": 0}, "n_train must be a positive integer"),
        ({"name": "xor", "seed": -1}, "seed must be an integer >= 0"),
        ({"name": "spirals", "noise": -0.1}, "noise must be a number >= 0"),
        ({"name": "spirals", "turns": 0}, "turns must be a number > 0"),
        ({"name": "digits", "noise": 0.1}, "options for digits"),
        ({"name": "digits", "n_train": 1790}, "n_train \\+ n_test must be at most 1797"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


def test_digits_stratified_split_and_standardization():
    d = data.load("digits", seed=0)
    assert (d.task, d.n_classes, d.n_features, d.n_outputs) == ("classification", 10, 64, 10)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert len(d.y_train) + len(d.y_test) == 1797 and len(d.y_test) == 359
    # stratified: every class has (almost exactly) its overall share in the test set
    overall = np.bincount(data._digits_arrays()[1], minlength=10) / 1797
    test_share = np.bincount(d.y_test.numpy(), minlength=10) / len(d.y_test)
    assert np.abs(test_share - overall).max() < 1.5 / len(d.y_test)
    assert_standardized_on_train(d)
    assert not torch.allclose(d.x_test.mean(0), torch.zeros(64), atol=1e-5)  # test stats unused
    again, other = data.load("digits", seed=0), data.load("digits", seed=1)
    assert torch.equal(d.x_train, again.x_train)
    assert not torch.equal(d.y_train, other.y_train)


def test_xor_is_the_four_corners():
    d = data.load("xor")
    assert d.x_train.tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]  # {0,1}² standardized
    assert d.y_train.tolist() == [0, 1, 1, 0]
    assert torch.equal(d.x_test, d.x_train)
    noisy = data.load("xor", n_train=100, noise=0.1, seed=3)
    assert noisy.x_train.shape == (100, 2) and noisy.x_test.shape == (100, 2)
    # the label is still the XOR of which side of the centre each coordinate lies on
    side = (noisy.x_train > 0).long()
    assert ((side[:, 0] ^ side[:, 1]) == noisy.y_train).float().mean() > 0.95


def test_spirals():
    d = data.load("spirals", seed=0, n_train=300, n_test=100)
    assert d.x_train.shape == (300, 2) and d.x_test.shape == (100, 2)
    assert d.y_train.bincount().tolist() == [150, 150]
    assert_standardized_on_train(d)
    assert torch.equal(d.x_train, data.load("spirals", seed=0, n_train=300).x_train)
    assert not torch.equal(d.x_train, data.load("spirals", seed=1, n_train=300).x_train)


def test_teacher_is_a_nonlinear_regression():
    d = data.load("teacher", seed=0, n_train=500)
    assert d.task == "regression" and d.n_classes is None and d.n_outputs == 1
    assert d.y_train.dtype == torch.float32 and d.y_train.shape == (500, 1)
    assert_standardized_on_train(d)
    assert abs(d.y_train.double().std(unbiased=False).item() - 1) < 1e-5
    # the best linear model (least squares in float64) leaves much of the variance unexplained
    X = np.hstack([d.x_train.double().numpy(), np.ones((500, 1))])
    y = d.y_train.double().numpy()
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    assert np.mean((X @ coef - y) ** 2) > 0.1
    assert d.to(torch.float64).y_test.dtype == torch.float64


@pytest.fixture(scope="module")
def mnist1d_offline(tmp_path_factory):
    """mnist1d generated in a fresh cache directory with every network connection refused."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIRSTORDER_CACHE", str(cache))

        def no_network(*args, **kwargs):
            raise AssertionError("firstorder.data tried to open a network connection")

        mp.setattr(socket, "create_connection", no_network)
        mp.setattr(socket.socket, "connect", no_network)
        data._mnist1d_arrays.cache_clear()
        np_state = np.random.get_state()  # noqa: NPY002 (mnist1d seeds the legacy generator)
        d = data.load("mnist1d", seed=0)
        np_state_after = np.random.get_state()  # noqa: NPY002
        yield d, cache, np_state, np_state_after
        data._mnist1d_arrays.cache_clear()


def test_mnist1d_generated_offline_and_cached_on_disk(mnist1d_offline, monkeypatch):
    d, cache, np_state, np_state_after = mnist1d_offline
    assert d.x_train.shape == (4000, 40) and d.x_test.shape == (1000, 40)
    assert d.n_classes == 10 and set(d.y_train.tolist()) == set(range(10))
    assert_standardized_on_train(d)
    assert np_state[0] == np_state_after[0] and np.array_equal(np_state[1], np_state_after[1])
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("mnist1d-") and "seed0" in files[0].name
    # from disk (memory cache cleared), without generating: make_dataset would fail here
    monkeypatch.setenv("FIRSTORDER_CACHE", str(cache))
    monkeypatch.setattr("mnist1d.data.make_dataset", lambda *a, **k: 1 / 0)
    data._mnist1d_arrays.cache_clear()
    again = data.load("mnist1d", seed=0, n_train=100)
    assert torch.equal(again.y_train, d.y_train[:100])
    data._mnist1d_arrays.cache_clear()


def test_mnist1d_generation_failure_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FIRSTORDER_CACHE", str(tmp_path))
    monkeypatch.setattr("mnist1d.data.make_dataset", lambda *a, **k: 1 / 0)
    data._mnist1d_arrays.cache_clear()
    with pytest.raises(RuntimeError, match="could not generate mnist1d locally.*never downloads"):
        data.load("mnist1d", seed=7)
    data._mnist1d_arrays.cache_clear()
    assert list(tmp_path.iterdir()) == []
