"""Every rule of rules.RULES runs through every driver: the torch.optim class, compile=True on a
tiny model, the batched engine, the CLI and the playground's catalog. The parametrization is
rules.RULES itself, so a new rule is tested everywhere without editing this file."""

from __future__ import annotations

import json

import pytest
import torch

from firstorder import landscapes, rules
from firstorder.cli import main
from firstorder.kernels import step
from firstorder.optim import OPTIMIZERS
from firstorder.run import run
from firstorder.serve import catalog, validate

RULES = list(rules.RULES.values())
every_rule = pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)


def _lr(rule: rules.Rule) -> float:
    """A step size that behaves for the rule: its training α, else its playground α."""
    return rule.train_lr if rule.train_lr is not None else rule.landscape_lr


def _model_and_loss(seed: int = 0):
    """A linear least-squares model in float64: a quadratic loss with a unique minimum."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 3, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.1
    model = torch.nn.Linear(3, 1, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 3, generator=gen, dtype=torch.float64))
        model.bias.zero_()
    return model, lambda: (model(x).squeeze(-1) - y).pow(2).mean()


def _train(rule: rules.Rule, steps: int, **options) -> tuple[float, float, list[torch.Tensor]]:
    model, loss_fn = _model_and_loss()
    opt = OPTIMIZERS[rule.name](model.parameters(), lr=_lr(rule), **options)
    first = loss_fn().item()
    for _ in range(steps):
        if rule.needs_hessian:  # Newton differentiates the closure's loss itself
            opt.step(loss_fn)
            continue
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    return first, loss_fn().item(), [p.detach().clone() for p in model.parameters()]


@every_rule
def test_the_optimizer_class_lowers_the_loss(rule):
    first, last, _ = _train(rule, steps=30)
    assert last < first


@every_rule
@pytest.mark.filterwarnings("error::RuntimeWarning")  # a rule that fails to compile warns
def test_compile_true_runs_the_same_steps(rule, monkeypatch):
    if rule.needs_hessian:
        pytest.skip(f"{rule.name} solves with H: it has no flat-buffer compiled path")
    monkeypatch.setattr(step.CompiledRule, "min_numel", 0)  # compile even 4 numbers
    _, _, plain = _train(rule, steps=5)
    _, _, fast = _train(rule, steps=5, compile=True)
    built = [c for key, c in step._COMPILED.items() if key[0] == rule.name]
    assert built and all(c.deferred.ready for c in built)  # it did not fall back to eager
    # float64: the compiled kernel may order the few roundings of a step differently (each
    # ≤ 2⁻⁵³ relative); 5 steps on a well-conditioned quadratic cannot grow that past 1e-12
    for a, b in zip(plain, fast, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@every_rule
def test_the_batched_engine_runs_it(rule):
    f = landscapes.get("rosenbrock")
    result = run(f, rule.name, steps=100, lr=rule.landscape_lr)
    assert torch.isfinite(result.final_f).all()
    assert (result.final_f < result.f[0]).all()  # each start ends lower than it began


@every_rule
def test_the_compiled_engine_runs_it_as_the_eager_one(rule):
    f = landscapes.get("rosenbrock")
    kw = dict(starts=[[-1.2, 1.0], [1.5, -0.5]], steps=60, lr=rule.landscape_lr)
    eager, fast = run(f, rule.name, **kw), run(f, rule.name, **kw, compile=True)
    assert fast.meta["rule"] == ("eager" if rule.needs_hessian else "compiled")  # no H kernel
    # float64 both; the kernel may order a step's roundings (2⁻⁵³ relative each) differently,
    # and 60 steps on Rosenbrock's valley magnify that by far less than the 1e7 this allows
    torch.testing.assert_close(fast.f, eager.f, rtol=1e-9, atol=1e-11)


@every_rule
def test_the_cli_runs_it(rule, capsys):
    lr = f"{rule.landscape_lr:g}"
    code = main(
        ["run", "rosenbrock", "--optimizer", rule.name, "--lr", lr, "--steps", "30"] + ["--json"]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(landscapes.get("rosenbrock").starts)
    assert all(row["final_f"] == row["final_f"] for row in rows)  # not NaN


@every_rule
def test_firstorder_train_trains_with_it(rule, capsys):
    if rule.train_lr is None:
        pytest.skip(f"{rule.name} has no usual α for a network (Rule.train_lr): not offered")
    argv = ["train", "--data", "xor", "--layers", "2,8,2", "--optimizer", rule.name]
    assert main([*argv, "--epochs", "3", "--json", "--no-progress"]) == 0
    records = json.loads(capsys.readouterr().out)[rule.name]["records"]
    assert records[-1]["epoch"] == 3 and records[-1]["train_risk"] < float("inf")


@every_rule
def test_the_playground_offers_it(rule):
    entry = {o["name"]: o for o in catalog.optimizers()}[rule.name]
    body = {"landscape": "rosenbrock", "optimizers": [{"name": rule.name, **entry["start"]}]}
    req = validate.parse_run(json.dumps({**body, "starts": [[-1.2, 1.0]]}).encode())
    assert req["optimizers"][0][0] == rule.name
