"""The playground's "try this" prompts: a few short experiments per landscape, each a link.

In the spirit of Goh's "Why Momentum Really Works": a sentence that says what to look for, and
the page's state (a query string, as in the address bar) that sets it up with one click, from
the landscape's own starts. Each prompt's ``expect`` states what the run shows, in terms of the
engine's result (:meth:`~firstorder.trajectories.Trajectories.outcome`), and
tests/test_serve_prompts.py checks it against a real run, so that no prompt promises what the
optimizers do not do:

- ``{"outcomes": {name: [status, ...]}}``: how each start of that optimizer ends ("reached",
  "diverged", "escaped", or "budget": still going when the steps ran out);
- ``{"sooner": [a, b]}``: from every start, a reaches the target (or escapes) in fewer steps
  than b, or b never does;
- ``{"gap_above": {name: {start: g}}}``: f − f* at the end is above g from that start
  (counted from 1, as the page numbers them).

The page opens on :data:`FIRST`; the server starts compiling its kernels when it starts.
"""

from __future__ import annotations

FIRST = ("rosenbrock", ("gd", "momentum", "rmsprop", "adam"))

B, R, D, E = "budget", "reached", "diverged", "escaped"

TRY: dict[str, list[dict[str, object]]] = {
    "canyon": [
        {
            "text": "GD at α = 0.45 zig-zags across the steep direction; past 2/λ_max = 0.5 "
            "(α = 0.55) every start diverges.",
            "query": "steps=100&opt=gd,lr=0.55",
            "expect": {"outcomes": {"gd": [D, D, D]}},
        },
        {
            "text": "Same α = 0.05 for GD and momentum (ρ = 0.9): momentum covers the flat "
            "direction about 1/(1−ρ) times faster.",
            "query": "steps=500&opt=gd,lr=0.05&opt=momentum,lr=0.05,rho=0.9",
            "expect": {"outcomes": {"gd": [B, B, B], "momentum": [R, R, R]}},
        },
    ],
    "rosenbrock": [
        {
            "text": "Raise momentum's α from 0.0005 to 0.001: from start 3 it flies off the "
            "map, while GD at twice that α still creeps along the valley.",
            "query": "steps=500&opt=gd,lr=0.002&opt=momentum,lr=0.001,rho=0.9",
            "expect": {"outcomes": {"gd": [B, B, B], "momentum": [B, B, D]}},
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
            "expect": {
                "outcomes": {"gd": [E, E, E], "momentum": [E, E, E]},
                "sooner": ["momentum", "gd"],
            },
        },
        {
            "text": "Newton's step jumps straight onto the saddle and stays there: it treats "
            "every critical point alike (C12).",
            "query": "steps=20&opt=newton,lr=1,damping=0",
            "expect": {"outcomes": {"newton": [B, B, B]}},
        },
    ],
    "monkey_saddle": [
        {
            "text": "From start 2, on the ridge y = 0, GD slows to a halt at the flat saddle "
            "(its Hessian is zero); momentum carries through it and escapes.",
            "query": "steps=500&opt=gd,lr=0.05&opt=momentum,lr=0.05,rho=0.9",
            "expect": {
                "outcomes": {"gd": [E, B, E], "momentum": [E, E, E]},
                "sooner": ["momentum", "gd"],
            },
        },
    ],
    "double_well": [
        {
            "text": "GD and momentum roll off the saddle into a well from every start; "
            "momentum overshoots and takes longer to settle here.",
            "query": "steps=300&opt=gd,lr=0.1&opt=momentum,lr=0.1,rho=0.9",
            "expect": {
                "outcomes": {"gd": [R, R, R], "momentum": [R, R, R]},
                "sooner": ["gd", "momentum"],
            },
        },
        {
            "text": "Newton jumps onto the saddle between the wells and stays (f − f* = ¼): "
            "it goes to the nearest critical point, of any kind.",
            "query": "steps=20&opt=newton,lr=1,damping=0",
            "expect": {"outcomes": {"newton": [B, B, B]}, "gap_above": {"newton": {1: 0.24}}},
        },
    ],
    "plateau": [
        {
            "text": "On the flat plain ‖∇f‖ ≈ 2e-5: GD hardly moves, while Adam divides by "
            "√r̂ and walks at speed ≈ α.",
            "query": "steps=500&opt=gd,lr=0.5&opt=adam,lr=0.05",
            "expect": {"outcomes": {"gd": [B, B, B], "adam": [R, R, R]}},
        },
    ],
    "two_wells": [
        {
            "text": "At α = 0.5 GD stops in the shallow, much worse well from starts 1 and 2; "
            "momentum (ρ = 0.9) rolls on into the deep one from starts 1, 2 and 4.",
            "query": "steps=500&opt=gd,lr=0.5&opt=momentum,lr=0.5,rho=0.9",
            "expect": {
                "outcomes": {"gd": [B, B, B, B], "momentum": [R, R, B, R]},
                "gap_above": {"gd": {1: 1.0, 2: 1.0}},  # the shallow well: f − f* ≈ 1.4
            },
        },
    ],
    "himmelblau": [
        {
            "text": "Four minima, all equally good: GD reaches one from every start — here a "
            "local minimum is no obstacle (C8d).",
            "query": "steps=500&opt=gd,lr=0.01",
            "expect": {"outcomes": {"gd": [R, R, R, R]}},
        },
    ],
}


def prompts(name: str) -> list[dict[str, object]]:
    """The prompts of landscape ``name`` (none for some): text and query, for the page."""
    return [{"text": p["text"], "query": p["query"]} for p in TRY.get(name, [])]
