"""The playground's JSON API: what it returns is what firstorder.run computes, and every bad or
hostile request gets a 4xx JSON answer that names the field."""

from __future__ import annotations

import json
import socket

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")  # FastAPI's TestClient runs on it
from fastapi.testclient import TestClient  # noqa: E402

from firstorder import landscapes, rules  # noqa: E402
from firstorder.cli import main  # noqa: E402
from firstorder.run import run, warm_up  # noqa: E402
from firstorder.serve import app as serve_app  # noqa: E402


@pytest.fixture(scope="module")
def client():
    return TestClient(serve_app.create_app(compile=False))


def strict_json(text: str):
    """Parse as JSON proper: NaN and Infinity are not JSON."""

    def refuse(word):
        raise AssertionError(f"{word} in the response is not JSON")

    return json.loads(text, parse_constant=refuse)


def post(client, body):
    return client.post("/api/run", content=json.dumps(body))


def test_lists_every_landscape_and_optimizer(client):
    r = client.get("/api/landscapes")
    assert r.status_code == 200
    data = r.json()
    assert [item["name"] for item in data["landscapes"]] == landscapes.names()
    assert {o["name"]: o["hyper"] for o in data["optimizers"]} == {
        n: dict(rule.hyper) for n, rule in rules.RULES.items()
    }
    assert data["limits"] == {"starts": 20, "steps": 2000, "optimizers": 6, "grid": [10, 300]}


def test_landscape_grid_is_the_surface(client):
    r = client.get("/api/landscape/himmelblau", params={"n": 25})
    assert r.status_code == 200
    g = strict_json(r.text)
    f = landscapes.get("himmelblau")
    xs = torch.tensor(g["grid"]["x"], dtype=torch.float64)
    ys = torch.tensor(g["grid"]["y"], dtype=torch.float64)
    assert len(xs) == len(ys) == 25 and g["window"] == [[-5.0, 5.0], [-5.0, 5.0]]
    Z = torch.tensor(g["grid"]["f"], dtype=torch.float64)  # row j holds y_j
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    assert torch.allclose(Z, f(torch.stack([X, Y], -1)), rtol=0, atol=1e-9)
    assert len(g["minima"]) == 4 and len(g["saddles"]) == 4 and len(g["maxima"]) == 1
    assert g["levels"] == sorted(g["levels"]) and len(g["contours"]) == len(g["levels"])
    assert any(c["lines"] for c in g["contours"])
    assert g["starts"] == [list(s) for s in f.starts]


@pytest.mark.parametrize("compile", [False, True])
def test_run_returns_exactly_what_firstorder_run_computes(compile):
    client = TestClient(serve_app.create_app(compile=compile))
    f = landscapes.get("rosenbrock")
    starts = [[-1.2, 1.0], [0.5, 2.0], [1.5, -0.5]]
    optimizers = [
        {"name": "gd", "lr": 1e-3},
        {"name": "momentum", "lr": 1e-3, "rho": 0.8},
        {"name": "adam", "lr": 0.05, "rho2": 0.99},
        {"name": "rmsprop", "lr": 0.01, "eps": 1e-6},
    ]
    if compile:  # the server's kernels, ready: the runs below are compiled
        warm_up(f, [(o["name"], o) for o in optimizers], wait=True)
    body = {"landscape": "rosenbrock", "optimizers": optimizers, "starts": starts, "steps": 60}
    r = post(client, body)
    assert r.status_code == 200, r.text
    data = strict_json(r.text)
    assert data["landscape"] == "rosenbrock" and data["f_star"] == 0.0
    assert [run_["name"] for run_ in data["runs"]] == [o["name"] for o in optimizers]
    assert data["observation"] == ("compiled" if compile else "eager")
    for spec, got in zip(optimizers, data["runs"], strict=True):
        hyper = {k: v for k, v in spec.items() if k != "name"}
        want = run(
            f, spec["name"], starts=starts, steps=60, record="full", compile=compile, **hyper
        )
        assert got["rule"] == want.meta["rule"] == ("compiled" if compile else "eager")
        assert got["hyper"] == {k: v[0] for k, v in want.hyper.items()}
        assert got["steps"] == want.steps == 60
        # [B, T+1, d] on the wire, [T+1, C, B, d] in the engine: equal to the last bit
        assert torch.equal(
            torch.tensor(got["x"], dtype=torch.float64), want.x[:, 0].transpose(0, 1)
        )
        assert torch.equal(torch.tensor(got["f"], dtype=torch.float64), want.f[:, 0].T)
        assert torch.equal(
            torch.tensor(got["step_length"], dtype=torch.float64), want.step_length[:, 0].T
        )
        if want.effective_step is None:
            assert got["effective_step"] is None
        else:
            eff = torch.tensor(got["effective_step"], dtype=torch.float64)
            assert torch.equal(eff, want.effective_step[:, 0].transpose(0, 1))
        assert got["diverged_at"] == [None] * 3 and got["steps_to_target"] == [None] * 3
    # the same request again is served from the cache, and identical
    again = strict_json(post(client, body).text)
    assert all(run_["seconds"] == 0 for run_ in again["runs"])
    assert [run_["x"] for run_ in again["runs"]] == [run_["x"] for run_ in data["runs"]]


def test_prefetched_values_run_beside_and_answer_the_next_request(client):
    starts = [[-1.2, 1.0], [0.5, 2.0]]
    f = landscapes.get("rosenbrock")
    base = {"landscape": "rosenbrock", "starts": starts, "steps": 40}
    adam = {"name": "adam", "lr": 0.031, "rho1": 0.9}
    first = strict_json(
        post(client, {**base, "optimizers": [{**adam, "prefetch": {"lr": [0.032, 0.033]}}]}).text
    )
    assert len(first["runs"]) == 1 and first["runs"][0]["hyper"]["lr"] == 0.031  # only it is sent
    for lr in (0.031, 0.033):  # the asked-for value, then one run ahead: served from the cache
        data = strict_json(post(client, {**base, "optimizers": [{**adam, "lr": lr}]}).text)
        (got,) = data["runs"]
        if lr == 0.033:
            assert got["seconds"] == 0  # computed with the first request
        want = run(f, "adam", starts=starts, steps=40, record="full", lr=lr, rho1=0.9)
        assert got["hyper"]["lr"] == lr
        assert torch.equal(
            torch.tensor(got["x"], dtype=torch.float64), want.x[:, 0].transpose(0, 1)
        )
        eff = torch.tensor(got["effective_step"], dtype=torch.float64)
        assert torch.equal(eff, want.effective_step[:, 0].transpose(0, 1))


def test_diverged_runs_are_valid_json_with_the_step(client):
    body = {
        "landscape": "rosenbrock",
        "optimizers": [{"name": "gd", "lr": 0.05}, {"name": "adam", "lr": 0.01}],
        "starts": [[-1.2, 1.0], [1.0, 1.0]],
        "steps": 200,
        "tol_f": 1e-12,
    }
    r = post(client, body)
    assert r.status_code == 200
    gd, adam = strict_json(r.text)["runs"]
    want = run(landscapes.get("rosenbrock"), "gd", starts=body["starts"], steps=200, lr=0.05)
    k = int(want.diverged_at[0, 0])
    assert k > 0 and gd["diverged_at"][0] == k
    # caught past the landscape's bound (|x| > 300) while f is still finite; what follows stays
    assert gd["f"][0][: k + 1] == want.f[: k + 1, 0, 0].tolist()
    assert gd["steps_to_target"][1] == 0  # (1, 1) is the minimum: reached at the start
    assert adam["diverged_at"] == [None, None]


BAD = [
    # (what is wrong, body, status, field, words in the message)
    ("unknown landscape", {"landscape": "nowhere"}, 422, "landscape", "landscape must be one of"),
    ("landscape not text", {"landscape": 3}, 422, "landscape", "got 3"),
    ("unknown optimizer", {"optimizers": [{"name": "sgd"}]}, 422, "optimizers[0].name", "gd"),
    (
        "code as a name",
        {"optimizers": [{"name": "__import__('os')"}]},
        422,
        "optimizers[0].name",
        "must be one of",
    ),
    ("negative α", {"optimizers": [{"name": "gd", "lr": -1}]}, 422, "optimizers[0].lr", ">= 0"),
    (
        "ρ = 1",
        {"optimizers": [{"name": "momentum", "lr": 0.1, "rho": 1.0}]},
        422,
        "optimizers[0].rho",
        "in [0, 1)",
    ),
    ("ε = 0", {"optimizers": [{"name": "adam", "eps": 0}]}, 422, "optimizers[0].eps", "> 0"),
    (
        "ρ₂ as text",
        {"optimizers": [{"name": "adam", "rho2": "0.9"}]},
        422,
        "optimizers[0].rho2",
        "must be a number",
    ),
    (
        "foreign hyperparameter",
        {"optimizers": [{"name": "gd", "lr": 0.1, "rho": 0.5}]},
        422,
        "optimizers[0].rho",
        "not a hyperparameter of gd",
    ),
    ("α missing", {"optimizers": [{"name": "gd"}]}, 422, "optimizers[0].lr", "must be given"),
    (
        "bias correction not bool",
        {"optimizers": [{"name": "adam", "bias_correction": 1}]},
        422,
        "optimizers[0].bias_correction",
        "true or false",
    ),
    ("no optimizers", {"optimizers": []}, 422, "optimizers", "1 to 6"),
    (
        "too many optimizers",
        {"optimizers": [{"name": "gd", "lr": 0.1}] * 7},
        422,
        "optimizers",
        "1 to 6",
    ),
    ("too many starts", {"starts": [[0.0, 0.0]] * 21}, 422, "starts", "1 to 20"),
    ("no starts", {"starts": []}, 422, "starts", "1 to 20"),
    ("3-D start", {"starts": [[0, 0, 0]]}, 422, "starts[0]", "[x, y]"),
    ("start as text", {"starts": [[0, "1"]]}, 422, "starts[0][1]", "must be a number"),
    ("too many steps", {"steps": 2001}, 422, "steps", "between 1 and 2000"),
    ("fractional steps", {"steps": 10.5}, 422, "steps", "integer"),
    ("steps as bool", {"steps": True}, 422, "steps", "integer"),
    ("bad tol_f", {"tol_f": -1}, 422, "tol_f", "> 0"),
    ("unknown field", {"code": "print(1)"}, 422, "code", "not a field"),
    (
        "prefetch not an object",
        {"optimizers": [{"name": "gd", "lr": 0.1, "prefetch": [0.2]}]},
        422,
        "optimizers[0].prefetch",
        "one hyperparameter and its values",
    ),
    (
        "prefetch of a foreign hyperparameter",
        {"optimizers": [{"name": "gd", "lr": 0.1, "prefetch": {"rho": [0.5]}}]},
        422,
        "optimizers[0].prefetch.rho",
        "must name one of lr",
    ),
    (
        "prefetch of too many values",
        {"optimizers": [{"name": "gd", "lr": 0.1, "prefetch": {"lr": [0.1] * 11}}]},
        422,
        "optimizers[0].prefetch.lr",
        "1 to 10 numbers",
    ),
    (
        "prefetch value out of range",
        {"optimizers": [{"name": "adam", "prefetch": {"rho1": [0.5, 1.0]}}]},
        422,
        "optimizers[0].prefetch.rho1[1]",
        "in [0, 1)",
    ),
]


@pytest.mark.parametrize(
    "body, status, field, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_requests_name_the_field(client, body, status, field, words):
    full = {
        "landscape": "canyon",
        "optimizers": [{"name": "gd", "lr": 0.1}],
        "starts": [[1.0, 1.0]],
        "steps": 5,
        **body,
    }
    r = post(client, full)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field
    assert words in err["error"] and field.split("[")[0] in err["error"]


@pytest.mark.parametrize(
    "raw, words",
    [
        (b'{"landscape": "canyon",', "valid JSON"),
        (b'{"landscape": "canyon", "starts": [[NaN, 1]]}', "NaN is not a JSON number"),
        (b'{"steps": Infinity}', "Infinity is not a JSON number"),
        (b"\xff\xfe", "valid JSON"),
        (b"[" * 50000, "valid JSON"),
        (b'["a list"]', "JSON object"),
        (b"", "valid JSON"),
    ],
    ids=["cut", "nan", "infinity", "not utf-8", "deep", "list", "empty"],
)
def test_malformed_json_is_a_400(client, raw, words):
    r = client.post("/api/run", content=raw)
    assert r.status_code == 400
    assert r.json()["field"] == "body" and words in r.json()["error"]


def test_numbers_too_large_for_a_float_are_not_finite(client):
    raw = b'{"landscape": "canyon", "optimizers": [{"name": "gd", "lr": 0.1}], '
    raw += b'"starts": [[1e999, 0]]}'
    r = client.post("/api/run", content=raw)
    assert r.status_code == 422
    assert r.json()["field"] == "starts[0][0]" and "finite" in r.json()["error"]
    raw = raw.replace(b"1e999", b"1" * 5000)  # beyond Python's digit limit for int()
    assert client.post("/api/run", content=raw).status_code == 400


def test_huge_body_is_refused(client):
    r = client.post("/api/run", content=b" " * (70 * 1024))
    assert r.status_code == 413 and r.json()["field"] == "body"


def test_bad_paths_and_grid_sizes(client):
    r = client.get("/api/landscape/nowhere")
    assert r.status_code == 404 and r.json()["field"] == "name"
    for n in ("5", "301", "ten"):
        r = client.get("/api/landscape/canyon", params={"n": n})
        assert r.status_code == 422 and r.json()["field"] == "n", n
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["field"] == "path"
    r = client.get("/api/run")
    assert r.status_code == 405 and "GET" in r.json()["error"]
    r = client.get("/static/../app.py")
    assert r.status_code == 404


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and 'id="map"' in r.text
    for name in ("index.html", "playground.js", "playground.css"):
        text = client.get(f"/static/{name}").text
        assert "http://" not in text and "https://" not in text, name  # no CDN, no fonts
    js = client.get("/static/playground.js").text
    assert "innerHTML" not in js and "eval(" not in js  # labels go in by textContent


def test_cli_serve_refuses_bad_ports(capsys):
    assert main(["serve", "--port", "0"]) == 2
    assert "port must be" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"port {port} is in use" in capsys.readouterr().err
