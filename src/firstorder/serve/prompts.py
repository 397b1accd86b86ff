"""The playground's "try this" prompts: a few short experiments per landscape, each a link.

In the spirit of Goh's "Why Momentum Really Works": a sentence that says what to look for, and
the page's state (a query string, as in the address bar) that sets it up with one click. Each
prompt's ``expect`` states what the run shows, in terms of the engine's result, and
tests/test_serve_prompts.py checks it against a real run, so that no prompt promises what the
optimizers do not do:

- ``{"diverges": name}``: every start of that optimizer diverges;
- ``{"diverges_from": [name, i]}``: start i (counted from 1, as the page numbers them) diverges;
- ``{"escapes": name}``: every start escapes (a surface unbounded below);
- ``{"stays": name}``: no start reaches the target, escapes or diverges;
- ``{"sooner": [a, b]}``: from every start, a reaches the target (or escapes) in fewer steps
  than b, or b never does.

The page opens on :data:`FIRST` (the server starts compiling its kernels at once).
"""

from __future__ import annotations

FIRST = ("rosenbrock", ("gd", "momentum", "rmsprop", "adam"))

TRY: dict[str, list[dict[str, object]]] = {
    "canyon": [
        {
            "text": "GD at α = 0.45 zig-zags across the steep direction; past 2/λ_max = 0.5 "
            "(α = 0.55) every start diverges.",
            "query": "steps=100&opt=gd,lr=0.55",
            "expect": {"diverges": "gd"},
        },
        {
            "text": "Same α = 0.05 for GD and momentum (ρ = 0.9): momentum covers the flat "
            "direction about 1/(1−ρ) times faster.",
            "query": "steps=500&opt=gd,lr=0.05&opt=momentum,lr=0.05,rho=0.9",
            "expect": {"sooner": ["momentum", "gd"]},
        },
    ],
    "rosenbrock": [
        {
            "text": "Raise momentum's α from 0.0005 to 0.001: from start 3 it flies off the "
            "map, while GD at twice that α still creeps along the valley.",
            "query": "steps=500&opt=gd,lr=0.002&opt=momentum,lr=0.001,rho=0.9",
            "expect": {"stays": "gd", "diverges_from": ["momentum", 3]},
        },
        {
            "text": "Adam's first steps have length ≈ α whatever the slope (C1): compare the "
            "spacing of its first dots with GD's.",
            "query": "steps=300&opt=gd,lr=0.0015&opt=adam,lr=0.05",
            "expect": {},
        },
    ],
    "saddle": [
        {
            "text": "Every run leaves the saddle; with ρ = 0.9 momentum escapes in fewer steps "
            "than GD at the same α.",
            "query": "steps=500&opt=gd,lr=0.05&opt=momentum,lr=0.05,rho=0.9",
            "expect": {"escapes": "momentum", "sooner": ["momentum", "gd"]},
        },
        {
            "text": "Newton's step jumps straight onto the saddle and stays there: it treats "
            "every critical point alike (C12).",
            "query": "steps=50&opt=newton,lr=1,damping=0",
            "expect": {"stays": "newton"},
        },
    ],
    "plateau": [
        {
            "text": "On the flat plain ‖∇f‖ ≈ 2e-5: GD hardly moves, while Adam divides by "
            "√r̂ and walks at speed ≈ α.",
            "query": "steps=500&opt=gd,lr=0.5&opt=adam,lr=0.05",
            "expect": {"stays": "gd", "sooner": ["adam", "gd"]},
        },
    ],
}


def prompts(name: str) -> list[dict[str, object]]:
    """The prompts of landscape ``name`` (none for most): text and query, for the page."""
    return [{"text": p["text"], "query": p["query"]} for p in TRY.get(name, [])]
