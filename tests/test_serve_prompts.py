"""The playground's "try this" prompts say what a real run shows."""

from urllib.parse import parse_qs

import pytest

from firstorder import landscapes, rules
from firstorder.run import run_many
from firstorder.serve.prompts import FIRST, TRY, prompts

CASES = [(name, i) for name, ps in TRY.items() for i in range(len(ps))]


def _state(query: str) -> tuple[int, list[tuple[str, dict]]]:
    """The steps and optimizers a prompt's query sets, as the page reads them."""
    q = parse_qs(query)
    opts = []
    for text in q["opt"]:
        name, *pairs = text.split(",")
        opts.append((name, {k: float(v) for k, v in (p.split("=") for p in pairs)}))
    return int(q["steps"][0]), opts


def _first(r, b):
    """The step at which start b reached the target or escaped, inf if neither."""
    status, k = r.outcome(0, b)
    return k if status in ("reached", "escaped") else float("inf")


@pytest.mark.parametrize(("name", "i"), CASES)
def test_each_prompt_shows_what_it_says(name, i):
    p = TRY[name][i]
    steps, opts = _state(p["query"])
    for opt, hyper in opts:
        assert set(hyper) <= set(rules.get(opt).hyper), p["query"]
    f = landscapes.get(name)
    # the page's runs: the landscape's starts, its tolerance 1e-10
    runs = dict(zip([o for o, _ in opts], run_many(f, opts, steps=steps, tol_f=1e-10)))
    expect = p["expect"]
    for opt, want in expect.get("outcomes", {}).items():
        assert [runs[opt].outcome(0, b)[0] for b in range(len(f.starts))] == want, opt
    for opt, gaps in expect.get("gap_above", {}).items():
        for start, g in gaps.items():
            assert float(runs[opt].final_f[0, start - 1]) - f.f_star > g, (opt, start)
    if "sooner" in expect:
        a, b_ = (runs[o] for o in expect["sooner"])
        assert all(_first(a, b) < _first(b_, b) for b in range(len(f.starts)))


def test_the_page_gets_text_and_query_only():
    assert prompts("canyon") == [{"text": p["text"], "query": p["query"]} for p in TRY["canyon"]]
    assert prompts("booth") == []
    assert FIRST[0] in landscapes.names() and set(FIRST[1]) <= set(rules.RULES)


def test_the_server_starts_compiling_the_first_page_when_it_starts(monkeypatch):
    from firstorder.serve import app as serve_app

    calls = []
    monkeypatch.setattr(serve_app, "warm_up", lambda f, opts: calls.append((f.name, opts)))
    serve_app.create_app(compile=False)
    assert calls == []  # eager: nothing to compile
    serve_app.create_app(compile=True)
    assert calls == [(FIRST[0], [(name, {}) for name in FIRST[1]])]
