"""The training loop: what it records, exact resume, divergence as a result, and accuracy."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from firstorder import data, optim
from firstorder.errors import UserValueError
from firstorder.nn import MLP
from firstorder.train import History, compare, train


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks: one thread per test process (pytest -n 2 fills the cores) is faster,
    and far faster on a busy machine, than OpenMP threads competing for them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def spirals():
    return data.load("spirals", seed=0, n_train=200, n_test=100)


def params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def without_wall_time(history: History) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in history.to_records()]


def test_records_gd_step_against_a_hand_computed_gradient(spirals):
    """For GD, ‖Δθ‖ = α‖g‖ with g the full-batch gradient, computed here with autograd."""
    model = MLP([2, 16, 2], "tanh", seed=0)
    twin = copy.deepcopy(model)
    lr = 0.3
    history = train(model, optim.GD(model.parameters(), lr=lr), spirals, steps=1)
    r0, r1 = history.records
    assert (r0.step, r0.epoch, r0.grad_norm, r0.update_ratio) == (0, 0.0, None, None)
    risk = F.cross_entropy(twin(spirals.x_train), spirals.y_train)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(risk, list(twin.parameters()))])
    theta = torch.cat([p.detach().reshape(-1) for p in twin.parameters()])
    assert r0.train_risk == pytest.approx(risk.item(), rel=1e-6)
    assert r1.batch_loss == pytest.approx(risk.item(), rel=1e-6)
    assert r1.grad_norm == pytest.approx(g.norm().item(), rel=1e-5)
    assert r1.update_ratio == pytest.approx(lr * g.norm().item() / theta.norm().item(), rel=1e-5)
    assert r1.effective_step is None  # GD has no per-coordinate step
    test_risk = F.cross_entropy(model(spirals.x_test), spirals.y_test).item()
    assert r1.test_risk == pytest.approx(test_risk, rel=1e-6)
    accuracy = (model(spirals.x_test).argmax(1) == spirals.y_test).float().mean().item()
    assert r1.test_accuracy == pytest.approx(accuracy)


def test_effective_step_quantiles_ours_and_torch_adam_agree(spirals):
    """After one step both Adams have r̂ = g⊙g, so α/(√r̂+ε) = α/(|g|+ε) (C1) for both."""
    make = lambda: MLP([2, 16, 2], "tanh", seed=0)  # noqa: E731
    histories = compare(
        make,
        {
            "ours": lambda p: optim.Adam(p, lr=0.01),
            "torch": lambda p: torch.optim.Adam(p, lr=0.01),
        },
        spirals,
        steps=1,
    )
    model = make()
    risk = F.cross_entropy(model(spirals.x_train), spirals.y_train)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(risk, list(model.parameters()))])
    expected = (0.01 / (g.double().abs() + 1e-8)).quantile(torch.tensor([0.0, 0.5, 1.0]).double())
    for name in ("ours", "torch"):
        q = histories[name].final.effective_step
        assert set(q) == {"q0", "q10", "q50", "q90", "q100"}
        got = torch.tensor([q["q0"], q["q50"], q["q100"]], dtype=torch.float64)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)


def test_compare_starts_all_optimizers_from_the_same_point(spirals):
    histories = compare(
        lambda: MLP([2, 16, 2], "relu"),  # unseeded: compare itself must share one init
        {"gd": lambda p: optim.GD(p, lr=0.1), "momentum": lambda p: optim.Momentum(p, lr=0.1)},
        spirals,
        steps=5,
        batch_size=50,
    )
    first = [h.records[0].train_risk for h in histories.values()]
    assert first[0] == first[1]
    # GD and Momentum take the same first step (s = −αg), so they agree after step 1 too
    assert histories["gd"].records[1].train_risk == histories["momentum"].records[1].train_risk
    assert histories["gd"].final.train_risk != histories["momentum"].final.train_risk


class Killed(Exception):
    pass


@pytest.mark.parametrize("which", ["ours", "torch"])
def test_resume_from_checkpoint_reproduces_the_run_bitwise(spirals, tmp_path, which):
    """A run killed after step 15 (last checkpoint: step 12), resumed, equals the run that was
    never interrupted: parameters bitwise, every record except the wall time."""
    ckpt = tmp_path / "run.pt"

    def run(model, kill_after=None, **kwargs):
        opt = (
            optim.Adam(model.parameters(), lr=0.01)
            if which == "ours"
            else torch.optim.Adam(model.parameters(), lr=0.01)
        )
        if kill_after is not None:
            calls = iter(range(kill_after + 1))

            def kill(*_):
                if next(calls) == kill_after:
                    raise Killed

            opt.register_step_pre_hook(kill)
        # 200 examples in batches of 32: 7 steps per epoch, so step 12 is inside epoch 2
        kw = dict(steps=30, batch_size=32, seed=3, log_every=4, sharpness_every=10)
        return train(model, opt, spirals, **kw, **kwargs)

    full_model = MLP([2, 16, 16, 2], "tanh", seed=0)
    full = run(full_model)
    with pytest.raises(Killed):
        run(MLP([2, 16, 16, 2], "tanh", seed=0), kill_after=15, checkpoint=ckpt, checkpoint_every=6)
    # a different initialization: everything must come from the checkpoint
    resumed_model = MLP([2, 16, 16, 2], "tanh", seed=99)
    resumed = run(resumed_model, resume=ckpt)
    for p, q in zip(params(full_model), params(resumed_model), strict=True):
        assert torch.equal(p, q)
    assert without_wall_time(resumed) == without_wall_time(full)
    assert [r.step for r in full.records if r.sharpness is not None] == [0, 10, 20, 30]


def test_ctrl_c_keeps_what_was_computed_in_the_checkpoint(spirals, tmp_path):
    """Ctrl-C in the middle of training writes the checkpoint before it propagates; resuming
    it gives the run that was never interrupted, bitwise."""
    ckpt = tmp_path / "run.pt"
    kw = dict(steps=20, batch_size=32, seed=3, log_every=4)
    full_model = MLP([2, 16, 2], "tanh", seed=0)
    full = train(full_model, optim.Adam(full_model.parameters(), lr=0.01), spirals, **kw)

    calls = iter(range(1000))

    def loss(out, y):  # Ctrl-C during the 27th loss evaluation: the batch loss of step 17
        if next(calls) == 26:
            raise KeyboardInterrupt
        return F.cross_entropy(out, y)

    model = MLP([2, 16, 2], "tanh", seed=0)
    with pytest.raises(KeyboardInterrupt):
        train(
            model,
            optim.Adam(model.parameters(), lr=0.01),
            spirals,
            loss=loss,
            checkpoint=ckpt,
            **kw,
        )
    assert 0 < torch.load(ckpt, weights_only=True)["step"] < 20

    resumed_model = MLP([2, 16, 2], "tanh", seed=99)
    opt = optim.Adam(resumed_model.parameters(), lr=0.01)
    resumed = train(resumed_model, opt, spirals, resume=ckpt, **kw)
    for p, q in zip(params(full_model), params(resumed_model), strict=True):
        assert torch.equal(p, q)
    assert without_wall_time(resumed) == without_wall_time(full)


def test_resume_refuses_a_different_data_order(spirals, tmp_path):
    model = MLP([2, 4, 2], "tanh", seed=0)
    train(model, optim.GD(model.parameters(), lr=0.1), spirals, steps=2, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="seed must match the checkpoint .* got 1"):
        opt = optim.GD(model.parameters(), lr=0.1)
        train(model, opt, spirals, steps=4, seed=1, resume=tmp_path / "c")


def test_divergence_is_reported_not_raised():
    teacher = data.load("teacher", seed=0, n_train=200, n_test=50)
    model = MLP([10, 32, 1], "relu", seed=0)
    history = train(model, optim.GD(model.parameters(), lr=50.0), teacher, steps=200)
    k = history.diverged_at
    assert k is not None and 1 < k < 200
    assert history.message == f"diverged at step {k}"
    assert [r.step for r in history.records] == list(range(k))  # everything before k is kept
    assert all(math.isfinite(r.batch_loss) for r in history.records[1:])
    json.loads(history.to_json())  # strict JSON even with an overflowing risk in the records


def test_history_json_round_trip(spirals):
    model = MLP([2, 8, 2], "tanh", seed=0)
    history = train(model, optim.Adam(model.parameters(), lr=0.01), spirals, steps=3)
    again = History.from_json(history.to_json())
    assert again == history
    assert history["step"] == [0, 1, 2, 3] and len(history) == 4
    with pytest.raises(ValueError, match="name must be one of step, epoch"):
        history["loss"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give exactly one of epochs or steps"),
        ({"epochs": 1, "steps": 1}, "give exactly one of epochs or steps"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"steps": 1, "batch_size": 201}, "batch_size must be at most n_train = 200"),
        ({"steps": 1, "loss": "mse"}, "loss must be 'cross_entropy'"),
        ({"steps": 1, "log_every": 0}, "log_every must be an integer >= 1"),
    ],
)
def test_bad_arguments(spirals, kwargs, match):
    model = MLP([2, 4, 2], "tanh", seed=0)
    with pytest.raises(ValueError, match=match):
        train(model, optim.GD(model.parameters(), lr=0.1), spirals, **kwargs)


def test_progress_bar_runs(spirals, capsys):
    model = MLP([2, 4, 2], "tanh", seed=0)
    train(model, optim.GD(model.parameters(), lr=0.1), spirals, steps=3, progress=True)


def test_adam_reaches_95_percent_on_digits_within_30_epochs():
    digits = data.load("digits", seed=0)
    model = MLP([64, 128, 10], "relu", seed=0)
    history = train(
        model, optim.Adam(model.parameters(), lr=1e-3), digits, epochs=30, batch_size=64,
        log_every=23,
    )  # fmt: skip
    assert history.diverged_at is None
    assert max(history["test_accuracy"]) >= 0.95
    assert history.final.test_accuracy >= 0.95


def test_mlp_on_mnist1d_reaches_55_percent():
    mnist1d = data.load("mnist1d", seed=0)
    model = MLP([40, 256, 256, 10], "relu", seed=0)
    history = train(
        model, optim.Adam(model.parameters(), lr=1e-3), mnist1d, epochs=20, batch_size=128,
        log_every=160,
    )  # fmt: skip
    assert history.final.test_accuracy >= 0.55


NET = MLP([2, 4, 2], "tanh")


@pytest.mark.parametrize(
    "mistake",
    [
        lambda d: train(NET, optim.GD(NET.parameters(), lr=0.1), d),
        lambda d: train(NET, optim.GD(NET.parameters(), lr=0.1), d, steps=0),
        lambda d: data.load("no such data"),
        lambda d: MLP([2, 4, 2], "softplus"),
        lambda d: History()["no such column"],
    ],
    ids=["no-length", "steps=0", "data-name", "activation", "column"],
)
def test_user_mistakes_are_user_errors(spirals, mistake):
    """The CLI prints a UserError in one line; anything else is a bug with its traceback."""
    with pytest.raises(UserValueError):
        mistake(spirals)
