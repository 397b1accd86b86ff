"""The experiments package's structure: experiments do not import each other (what they share
lives in base.py or a module named with a leading underscore), and no function is longer than
60 lines. Read from the source with ast, so nothing is imported or run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "firstorder" / "experiments"
MAX_LINES = 60
# _tuning.py belongs to the tuning protocol (owned beside the rule tables); its tune() is split
# there, not here
NOT_CHECKED = {"_tuning.py"}


def _experiment_modules() -> set[str]:
    """The experiment modules: every module but __init__, base and the shared _ modules."""
    return {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_") and p.stem != "base"}


def _imported(tree: ast.Module) -> set[str]:
    """The modules of this package a module imports, by their short name."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:  # from .x import y
                module = f"firstorder.experiments.{module}" if module else "firstorder.experiments"
            if module == "firstorder.experiments":  # from firstorder.experiments import x
                found |= {alias.name for alias in node.names}
            elif module.startswith("firstorder.experiments."):
                found.add(module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("firstorder.experiments."):
                    found.add(alias.name.split(".")[2])
    return found


def test_the_package_has_experiments() -> None:
    # guards the tests below against passing on an empty or moved package
    assert len(_experiment_modules()) >= 20


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_experiments_do_not_import_each_other(path: Path) -> None:
    others = _experiment_modules() - {path.stem}
    imported = _imported(ast.parse(path.read_text(encoding="utf-8")))
    assert not imported & others, f"{path.name} imports the experiment(s) {imported & others}"


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_functions_are_at_most_60_lines(path: Path) -> None:
    if path.name in NOT_CHECKED:
        pytest.skip(f"{path.name} is checked by its owner")
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, f"{path.name}: " + ", ".join(long)


def test_the_import_check_sees_an_import_between_experiments() -> None:
    # the check itself can fail: both spellings of an import between experiments are found
    tree = ast.parse(
        "from firstorder.experiments.c08_canyons import ring\n"
        "from firstorder.experiments import c08_saddles as s\n"
        "from .r1_goh import goh\n"
    )
    assert _imported(tree) >= {"c08_canyons", "c08_saddles", "r1_goh"}
