"""Every table around a rule is derived from rules.RULES and rules.HYPERPARAMETERS: each rule
and each of its hyperparameters appears in every one of them (CLI flags, figure symbols, the
playground's catalog, the tuning lists, the optimizer classes), and no driver keeps a table of
its own that a new rule would have to be added to."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from firstorder import cli_options, plots, rules
from firstorder.experiments import _tuning as tu
from firstorder.optim import OPTIMIZERS
from firstorder.serve import catalog, validate
from firstorder.train_cli import DEFAULT_LR

SRC = Path(__file__).resolve().parents[1] / "src" / "firstorder"
RULES = list(rules.RULES.values())


def _parser(sweep: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli_options.add_run_options(parser, sweep=sweep)
    return parser


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
@pytest.mark.parametrize("sweep", [False, True])
def test_every_hyperparameter_has_a_cli_flag(rule, sweep):
    flags = {s for a in _parser(sweep)._actions for s in a.option_strings}
    for name in rule.hyper:
        flag = "--" + name.replace("_", "-")
        assert flag in flags
        if rules.HYPERPARAMETERS[name].switch:
            assert "--no-" + flag[2:] in flags


def test_switch_flags_leave_the_default_unless_given():
    parser = _parser(False)
    assert "bias_correction" not in cli_options.hyper_values(
        parser.parse_args(["rosenbrock", "--optimizer", "adam"]), log_lr=False
    )
    for given, want in (("--no-bias-correction", False), ("--bias-correction", True)):
        args = parser.parse_args(["rosenbrock", "--optimizer", "adam", given])
        assert cli_options.hyper_values(args, log_lr=False)["bias_correction"] is want


def test_cli_help_names_every_rule_and_symbol():
    text = _parser(True).format_help()
    for rule in RULES:
        assert rule.name in text
        for name in rule.numbers:
            assert rules.HYPERPARAMETERS[name].symbol in text


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_number_has_its_symbol_in_figures(rule):
    for name in rule.numbers:
        assert plots.SYMBOLS[name] == rules.HYPERPARAMETERS[name].symbol
        if name != "lr":  # α is shown on its own in the tuning figures' titles
            assert tu.SYMBOLS[name] == rules.HYPERPARAMETERS[name].symbol
    for name in rule.switches:  # a switch is not a number to label an axis with
        assert name not in plots.SYMBOLS


def test_tuning_lists_follow_the_rules():
    # the notes' first-order rules E1–E5, in the notes' order: what the claims compare
    assert tu.FIRST_ORDER == ("gd", "momentum", "adagrad", "rmsprop", "adam")
    assert tu.ALL == (*tu.FIRST_ORDER, "newton")
    for rule in RULES:
        assert tu.COLORS[rule.name] == rule.color
        assert tu.LABELS[rule.name] == rule.label


def test_every_rule_has_its_optimizer_class():
    assert list(OPTIMIZERS) == list(rules.RULES)
    for name, cls in OPTIMIZERS.items():
        assert cls.rule is rules.RULES[name]


def test_training_defaults_come_from_the_rules():
    assert DEFAULT_LR == {r.name: r.train_lr for r in RULES if r.train_lr is not None}
    assert "newton" not in DEFAULT_LR  # its H has n² entries: not for a network


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_catalog_describes_every_rule(rule):
    entry = {o["name"]: o for o in catalog.optimizers()}[rule.name]
    assert entry["label"] == rule.label and entry["color"] == rule.color
    assert entry["adaptive"] == rule.adaptive
    assert entry["formula"] == rule.formula and entry["equation"] == rule.equation
    assert entry["hyper"] == dict(rule.hyper)
    assert None not in entry["start"].values()  # the page starts every slider somewhere
    specs = {h["name"]: h for h in entry["hyperparameters"]}
    assert list(specs) == list(rule.hyper)
    for name, h in specs.items():
        spec = rules.HYPERPARAMETERS[name]
        assert (h["symbol"], h["switch"], h["allowed"]) == (spec.symbol, spec.switch, spec.allowed)
        if not spec.switch:
            lo, hi = h["span"]
            assert lo < hi and h["scale"] in ("log", "decay", "linear")


def test_catalog_start_values_pass_the_server_checks():
    """The page's first request, every rule at its start values, is a valid request."""
    body = {
        "landscape": "rosenbrock",
        "optimizers": [{"name": o["name"], **o["start"]} for o in catalog.optimizers()],
        "starts": [[-1.2, 1.0]],
        "steps": 10,
    }
    req = validate.parse_run(json.dumps(body).encode())
    assert [name for name, _ in req["optimizers"]] == list(rules.RULES)
    assert validate.MAX_OPTIMIZERS == len(rules.RULES)


def test_switches_are_checked_from_the_spec():
    body = {
        "landscape": "rosenbrock",
        "optimizers": [{"name": "adam", "bias_correction": "no"}],
        "starts": [[0.0, 0.0]],
    }
    with pytest.raises(validate.RequestError, match="true or false"):
        validate.parse_run(json.dumps(body).encode())


def test_no_driver_keeps_a_table_of_rules():
    """No rule's name is a key of a table in the playground, and no hyperparameter switch is
    special-cased by name outside rules.py."""
    js = (SRC / "serve" / "static" / "playground.js").read_text()
    for rule in RULES:
        assert not re.search(rf"[{{,]\s*{rule.name}\s*:", js), rule.name  # {gd: ..., adam: ...}
    for name, h in rules.HYPERPARAMETERS.items():
        if not h.switch:
            continue
        assert name not in js
        quoted = rf"""(==|!=|\bin)\s*["']{name}["']|["']{name}["']\s*(==|!=|\bin\b)"""
        for path in SRC.rglob("*.py"):
            if path.name != "rules.py":
                assert not re.search(quoted, path.read_text()), f"{name} special-cased in {path}"
