"""The layering of DESIGN.md, checked on the source: a lower layer never imports a higher one.

Every module of ``src/firstorder`` is parsed (``ast``, so imports inside functions count too,
and nothing is imported or run) and each ``firstorder`` import is resolved to the module it
loads. The layers, low to high, and why each sits where it does:

0 base         the notes' equations and the objects they act on: rules, landscapes, curvature,
               nn, data, the compiled kernels, and the file/error plumbing everyone shares.
               Nothing here knows how a run is driven.
1 drivers      what runs the equations: the torch optimizers (optim), batched trajectories
               (run, stepping, memory, observe, trajectories), training (train, history,
               netcurvature), and plots, which draws runs and is drawn on by experiments (it
               imports trajectories, so it cannot be base; experiments import it, so it cannot
               be higher).
2 experiments  one module per claim; they use any driver and are used only by the tour.
3 top          what a person runs or reads: report, cards (turns findings into study cards;
               only the tour's CLI uses it), tour, the CLIs, the server.

A module missing from the table fails the test: a new module must be given a layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "firstorder"

BASE, DRIVERS, EXPERIMENTS, TOP = 0, 1, 2, 3
LAYERS: dict[str, int] = {
    "firstorder": BASE,  # the package's __init__ imports nothing of its own
    "firstorder.errors": BASE,
    "firstorder.files": BASE,
    "firstorder.flat": BASE,
    "firstorder.rules": BASE,
    "firstorder.landscapes.*": BASE,
    "firstorder.curvature": BASE,
    "firstorder.nn": BASE,
    "firstorder.data": BASE,
    "firstorder.kernels.*": BASE,
    "firstorder.observe": BASE,  # f and ∇f at a point (traced by the engine kernels)
    "firstorder.optim": DRIVERS,
    "firstorder.run": DRIVERS,
    "firstorder.stepping": DRIVERS,
    "firstorder.memory": DRIVERS,
    "firstorder.train": DRIVERS,
    "firstorder.history": DRIVERS,
    "firstorder.netcurvature": DRIVERS,
    "firstorder.trajectories": DRIVERS,
    "firstorder.plots": DRIVERS,
    "firstorder.experiments.*": EXPERIMENTS,
    "firstorder.report": TOP,
    "firstorder.cards": TOP,
    "firstorder.tour": TOP,
    "firstorder.tour_cli": TOP,
    "firstorder.cli": TOP,
    "firstorder.cli_options": TOP,
    "firstorder.landscapes_cli": TOP,
    "firstorder.train_cli": TOP,
    "firstorder.serve.*": TOP,
}
NAMES = {BASE: "base", DRIVERS: "drivers", EXPERIMENTS: "experiments", TOP: "top"}

# Imports that the layers allow but the design does not (issue 17).
FORBIDDEN = {
    # netcurvature asks the rule for the effective step; it does not reach into the optimizers.
    ("firstorder.netcurvature", "firstorder.optim"),
}

# Experiments share code through modules named ``base`` or ``_*``, never through another
# claim's module.

# Names that firstorder.run lists in __all__ or is imported from without defining them: only
# summarize, a public name of earlier READMEs kept working (its home is firstorder.trajectories).
KNOWN_RUN_REEXPORTS = {"summarize"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of the source tree (not a name inside one)."""
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path, name: str | None = None) -> set[str]:
    """The firstorder modules that ``path`` (module ``name``, by default where it lies in the
    source tree) imports anywhere in its body, function bodies too."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:  # `from pkg import mod` loads pkg.mod; a name loads pkg
                full = f"{base}.{alias.name}"
                found.add(full if is_module(full) else base)
    return {m for m in found if m == "firstorder" or m.startswith("firstorder.")}


def layer_of(module: str) -> int | None:
    if module in LAYERS:
        return LAYERS[module]
    for pattern, layer in LAYERS.items():
        prefix = pattern.removesuffix("*")
        if pattern.endswith("*") and (module + ".").startswith(prefix):
            return layer
    return None


MODULES = sorted(PACKAGE.rglob("*.py"))
IMPORTS = {module_name(p): imported_modules(p) for p in MODULES}


def test_the_source_tree_was_found():
    # guards the tests below against passing on an empty tree
    assert {"firstorder.rules", "firstorder.optim", "firstorder.cli"} <= set(IMPORTS)
    assert "firstorder.rules" in IMPORTS["firstorder.optim"]


def test_imports_are_resolved_as_python_does(tmp_path):
    """`from pkg import mod` is a module, `from pkg import name` the package; function bodies
    and relative imports count."""
    probe = tmp_path / "probe.py"
    src = (
        "from firstorder.experiments import Finding\n"
        "from firstorder import run\n"
        "def f():\n    from firstorder.landscapes import canyons\n    from . import base\n"
        "    import firstorder.optim\n"
    )
    probe.write_text(src, encoding="utf-8")
    assert imported_modules(probe, "firstorder.experiments.probe") == {
        "firstorder.experiments",
        "firstorder.run",
        "firstorder.landscapes.canyons",
        "firstorder.experiments.base",
        "firstorder.optim",
    }


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_every_module_has_a_layer(module):
    assert layer_of(module) is not None, (
        f"{module} has no layer: add it to LAYERS in tests/test_layering.py (and say why there)."
    )


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_no_module_imports_a_higher_layer(module):
    mine = layer_of(module)
    higher = [
        f"{other} ({NAMES[layer_of(other)]})"
        for other in sorted(IMPORTS[module])
        if layer_of(other) is not None and mine is not None and layer_of(other) > mine
    ]
    assert not higher, f"{module} ({NAMES[mine]}) imports a higher layer: {', '.join(higher)}."


def test_forbidden_imports():
    found = {(m, o) for m in IMPORTS for o in IMPORTS[m] if (m, o) in FORBIDDEN}
    assert not found, f"forbidden imports: {sorted(found)}"


def test_nothing_imports_the_cli():
    # DESIGN.md: "nothing imports cli"; the console script is its one entry point
    users = sorted(m for m, deps in IMPORTS.items() if "firstorder.cli" in deps)
    assert not users, f"firstorder.cli is imported by {users}"


def test_rules_import_only_torch():
    # DESIGN.md: the equations depend on nothing of this project but the user-error classes,
    # a leaf module that imports nothing (a hyperparameter outside its domain is the user's
    # mistake, reported by the CLI without a traceback)
    assert IMPORTS["firstorder.rules"] <= {"firstorder.errors"}
    assert IMPORTS["firstorder.errors"] == set()


def _experiment_cross_imports() -> set[tuple[str, str]]:
    pairs = set()
    for module, deps in IMPORTS.items():
        if not module.startswith("firstorder.experiments."):
            continue
        for other in deps:
            short = other.removeprefix("firstorder.experiments.")
            if other.startswith("firstorder.experiments.") and not (
                short == "base" or short.startswith("_")
            ):
                pairs.add((module.removeprefix("firstorder.experiments."), short))
    return pairs


def test_experiments_do_not_import_each_other():
    found = sorted(_experiment_cross_imports())
    assert not found, (
        f"experiments import other claims' modules (share through base or _*): {found}"
    )


def _names_defined(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _run_reexports() -> set[str]:
    """Names taken from firstorder.run (its __all__, or `from firstorder.run import x` anywhere
    in src, tests, benchmarks) that run.py does not define itself."""
    tree = ast.parse((PACKAGE / "run.py").read_text(encoding="utf-8"))
    wanted = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            wanted |= set(ast.literal_eval(node.value))
    root = SRC.parent
    for path in [*MODULES, *root.glob("tests/*.py"), *root.glob("benchmarks/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "firstorder.run":
                wanted |= {a.name for a in node.names}
    return wanted - _names_defined(tree)


def test_run_does_not_reexport():
    found = _run_reexports()
    new = sorted(found - KNOWN_RUN_REEXPORTS)
    assert not new, (
        f"names taken from firstorder.run but defined elsewhere (import them from home): {new}"
    )
    stale = sorted(KNOWN_RUN_REEXPORTS - found)
    assert not stale, f"gone, remove from KNOWN_RUN_REEXPORTS: {stale}"
