"""No function in src/ is longer than 60 lines (issue 17: long functions split at their ideas).

Length is ``end_lineno − lineno + 1`` of each ``def`` (its decorators aside, its docstring in),
methods and functions nested in functions included, each counted on its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "firstorder"
LIMIT = 60

# Functions allowed over the limit, as "path:qualified name" relative to SRC: none today. Never
# add to it; split the function at its ideas instead. An entry that is no longer too long fails
# the test, so that the list only shrinks.
EXCEPTIONS: set[str] = set()


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, length in lines) of every function under ``tree``, nested ones too."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            yield name, node.end_lineno - node.lineno + 1
            yield from functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, prefix + node.name + ".")
        else:  # e.g. a def inside an if or a with: same scope, same prefix
            yield from functions(node, prefix)


def lengths() -> dict[str, int]:
    return {
        f"{path.relative_to(SRC).as_posix()}:{name}": n
        for path in sorted(SRC.rglob("*.py"))
        for name, n in functions(ast.parse(path.read_text(encoding="utf-8")))
    }


def test_functions_are_counted_nested_and_in_classes():
    # an independent count: the lines of the snippet, written out
    src = "class A:\n    def m(self):\n        def inner():\n            pass\n        return 1\n"
    src += "if True:\n    def g():\n        x = 1\n        return x\n"
    assert dict(functions(ast.parse(src))) == {"A.m": 4, "A.m.inner": 2, "g": 3}


def test_the_source_tree_was_found():
    found = lengths()
    assert "rules.py:get" in found and len(found) > 100


def test_no_function_is_longer_than_the_limit():
    too_long = {name: n for name, n in lengths().items() if n > LIMIT}
    new = sorted(f"{name} ({n} lines)" for name, n in too_long.items() if name not in EXCEPTIONS)
    assert not new, f"functions over {LIMIT} lines (split them at their ideas): {new}"


def test_exceptions_only_shrink():
    found = lengths()
    fixed = sorted(name for name in EXCEPTIONS if found.get(name, 0) <= LIMIT)
    assert not fixed, f"no longer over {LIMIT} lines (or gone): remove from EXCEPTIONS: {fixed}"
