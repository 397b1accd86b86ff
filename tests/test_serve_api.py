"""The playground's JSON API: what it returns is what firstorder.run computes, and every bad or
hostile request gets a 4xx JSON answer that names the field."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")  # FastAPI's TestClient runs on it
from fastapi.testclient import TestClient  # noqa: E402
from serving import serving  # noqa: E402

from firstorder import landscapes, rules  # noqa: E402
from firstorder.cli import main  # noqa: E402
from firstorder.run import run, warm_up  # noqa: E402
from firstorder.serve import app as serve_app  # noqa: E402
from firstorder.serve import guard, turns, validate  # noqa: E402

BASE = "http://127.0.0.1:8765"  # the server answers to its own address only


@pytest.fixture(scope="module")
def client():
    return TestClient(serve_app.create_app(compile=False), base_url=BASE)


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
    n = len(rules.RULES)  # one run of each rule side by side
    assert data["limits"] == {"starts": 20, "steps": 2000, "optimizers": n, "grid": [10, 300]}


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
    client = TestClient(serve_app.create_app(compile=compile), base_url=BASE)
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
    ("no optimizers", {"optimizers": []}, 422, "optimizers", f"1 to {len(rules.RULES)}"),
    (
        "too many optimizers",
        {"optimizers": [{"name": "gd", "lr": 0.1}] * (len(rules.RULES) + 1)},
        422,
        "optimizers",
        f"1 to {len(rules.RULES)}",
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


# --- hostile requests: numbers past float64, other sites, and what a request costs ------------

CANYON = {"landscape": "canyon", "optimizers": [{"name": "gd", "lr": 0.1}], "starts": [[1, 1]]}


@pytest.mark.parametrize(
    "where, field",
    [
        (b'"optimizers": [{"name": "gd", "lr": HUGE}]', "optimizers[0].lr"),
        (b'"starts": [[HUGE, 0]]', "starts[0][0]"),
        (b'"tol_f": HUGE', "tol_f"),
        (b'"optimizers": [{"name": "gd", "lr": 0.1, "prefetch": {"lr": [HUGE]}}]', None),
    ],
    ids=["lr", "start", "tol_f", "prefetch"],
)
def test_an_integer_too_large_for_a_float_is_a_422(client, where, field):
    body = {**CANYON, "steps": 5}
    raw = json.dumps(body)[:-1].encode() + b", " + where + b"}"
    raw = raw.replace(b"HUGE", str(10**400).encode())  # written out: 401 digits
    r = client.post("/api/run", content=raw)
    assert r.status_code == 422, r.text
    field = field or "optimizers[0].prefetch.lr[0]"
    assert r.json()["field"] == field
    assert r.json()["error"] == (
        f"{field} must be a finite number, got an integer too large for a float."
    )


@pytest.mark.parametrize(
    "headers, field",
    [
        ({"host": "attacker.example"}, "Host"),  # a DNS-rebinding page
        ({"host": "127.0.0.1.attacker.example:8765"}, "Host"),
        ({"host": "attacker.example@127.0.0.1:8765"}, "Host"),  # no user part in a Host
        ({"origin": "http://attacker.example", "content-type": "text/plain"}, "Origin"),
        ({"origin": "null"}, "Origin"),  # a sandboxed frame or a file:// page
        ({"origin": "http://127.0.0.1:9999"}, "Origin"),  # another server on this machine
        ({"sec-fetch-site": "cross-site"}, "Origin"),
    ],
    ids=[
        "host",
        "host suffix",
        "host with a user",
        "cross-origin text/plain",
        "null origin",
        "other port",
        "fetch",
    ],
)
def test_a_request_from_another_site_is_refused_before_it_runs(client, headers, field):
    before = dict(serve_app.stats)
    r = client.post("/api/run", content=json.dumps({**CANYON, "steps": 7}), headers=headers)
    assert r.status_code == 403 and r.json()["field"] == field, r.text
    assert serve_app.stats == before  # nothing ran
    assert client.get("/api/landscapes", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [{}, {"origin": BASE}, {"host": "localhost:8765", "origin": "http://localhost:8765"}],
    ids=["no origin (a script)", "the page itself", "by the name localhost"],
)
def test_the_page_and_local_scripts_are_served(client, headers):
    r = client.post("/api/run", content=json.dumps({**CANYON, "steps": 6}), headers=headers)
    assert r.status_code == 200, r.text


def test_the_bound_host_is_served_too():
    other = TestClient(serve_app.create_app(compile=False, host="192.0.2.7"), base_url=BASE)
    r = other.get("/api/landscapes", headers={"host": "192.0.2.7:8765"})
    assert r.status_code == 200


def test_a_request_costing_more_than_the_budget_is_refused_before_it_runs(client):
    # the probe's 93 s request: 6 × Newton, 20 starts, 2000 steps on rastrigin
    newton = {"name": "newton", "damping": 0.1, "prefetch": {"damping": [0.2] * 10}}
    body = {
        "landscape": "rastrigin",
        "optimizers": [newton] * 6,
        "starts": [[0.1 * i, 1.0] for i in range(20)],
        "steps": 2000,
    }
    before = dict(serve_app.stats)
    r = post(client, body)
    assert r.status_code == 422 and r.json()["field"] == "request"
    asked = 2000 * (300 + 6 * (6000 + 20))  # the cost model, counted by hand
    assert f"got {asked:,} for 6 optimizers × 20 starts × 2000 steps" in r.json()["error"]
    assert serve_app.stats == before


def test_an_answer_larger_than_the_cap_is_refused_before_it_runs(client):
    body = {
        "landscape": "rosenbrock",
        "optimizers": [{"name": "adam", "lr": 0.01 * (i + 1)} for i in range(6)],
        "starts": [[0.1 * i, 1.0] for i in range(20)],
        "steps": 2000,
    }
    r = post(client, body)
    assert r.status_code == 422 and r.json()["field"] == "request"
    assert "answer must be at most 20 MB" in r.json()["error"]


def test_the_answer_bound_holds_for_a_real_answer(client):
    # x and effective_step: 2 numbers per point, f and step_length: 1, and per start the steps
    # it diverged, escaped and reached the target; 24 bytes each at most
    body = {
        "landscape": "rosenbrock",
        "optimizers": [{"name": "adam", "lr": 0.01}, {"name": "gd", "lr": 1e-3}],
        "starts": [[-1.2, 1.0], [0.5, -0.5]],
        "steps": 50,
    }
    r = post(client, body)
    assert r.status_code == 200
    bound = validate.answer_bytes([("adam", {}), ("gd", {})], 2, 50)
    assert bound == 24 * 2 * ((51 * 3 + 50 * 3 + 3) + (51 * 3 + 50 * 1 + 3))
    assert len(r.content) <= bound


def test_prefetched_values_are_cut_to_what_the_budget_pays_for():
    newton = {"name": "newton", "damping": 0.1, "prefetch": {"damping": [0.2, 0.3, 0.4]}}
    adam = {"name": "adam", "prefetch": {"lr": [0.01 * j for j in range(1, 11)]}}
    body = {
        "landscape": "rastrigin",
        "optimizers": [newton, newton, adam],
        "starts": [[0.1 * i, 1.0] for i in range(20)],
        "steps": 1170,
    }
    # asked: 1170 × (300 + 2 × (6000 + 20) + (300 + 20)) = 14,812,200 of 15,000,000; the
    # 187,800 left pay for 8 values of 1170 × 20 = 23,400 each: the first ones, in order
    req = validate.parse_run(json.dumps(body).encode())
    assert [len(v) for _, v in req["prefetch"].values()] == [3, 3, 2]
    assert req["prefetch"][2] == ("lr", [0.01, 0.02])
    body["steps"] = 1000  # 12,660,000 asked: 117 values fit, all 16 are kept
    req = validate.parse_run(json.dumps(body).encode())
    assert [len(v) for _, v in req["prefetch"].values()] == [3, 3, 10]
    body["steps"] = 1200  # 15,192,000 asked: over the budget, refused whole
    with pytest.raises(validate.RequestError, match="request must cost at most 15,000,000"):
        validate.parse_run(json.dumps(body).encode())


def test_the_cache_is_bounded_in_bytes(client, monkeypatch):
    serve_app._cache.clear()

    def ask(i: int) -> None:
        body = {**CANYON, "optimizers": [{"name": "adam", "lr": 0.01 + i / 1000}], "steps": 400}
        assert post(client, body).status_code == 200

    ask(0)
    (first,) = serve_app._cache.values()  # a run asked for is kept as its JSON text
    monkeypatch.setattr(serve_app, "CACHE_BYTES", int(2.5 * len(first)))  # room for two
    for i in range(1, 6):
        ask(i)
    with serve_app._lock:
        entries = list(serve_app._cache.values())
    assert all(isinstance(e, str) for e in entries)
    assert sum(len(e) for e in entries) <= serve_app.CACHE_BYTES
    assert len(entries) == 2 and '"lr":0.015' in entries[-1]  # the newest two


# --- a real server: slow bodies, clients that leave, and a small run behind a long one ---------


class Logged(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def server():
    """The app on a free localhost port, served by uvicorn in a thread; what it logs."""
    logged = Logged()
    with serving(serve_app.create_app(compile=False)) as port:
        for name in ("uvicorn", "uvicorn.error", "fastapi"):
            logging.getLogger(name).addHandler(logged)
        yield port, logged
        for name in ("uvicorn", "uvicorn.error", "fastapi"):
            logging.getLogger(name).removeHandler(logged)


def request(port: int, body: bytes, length: int | None = None) -> socket.socket:
    """A POST /api/run sent on a raw connection (so that it can promise more than it sends)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        f"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length or len(body)}\r\n\r\n"
    )
    conn.sendall(head.encode() + body)
    return conn


def answer(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _expected(data):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _expected(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return 0


def wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.02)


LONG = {  # Newton's batched Hessians: seconds of work, far longer than the runs beside it
    "landscape": "rastrigin",
    "optimizers": [{"name": "newton", "damping": 0.1}],
    "starts": [[0.1 * i, 1.0] for i in range(20)],
    "steps": 2000,
}


def test_a_body_slower_than_promised_gets_a_408_and_the_connection_closes(server, monkeypatch):
    port, logged = server
    monkeypatch.setattr(guard, "BODY_SECONDS", 0.5)
    conn = request(port, b'{"landscape": ', length=100)  # 14 bytes of the 100 promised
    data = answer(conn)
    assert data.startswith(b"HTTP/1.1 408 ")
    error = json.loads(data.partition(b"\r\n\r\n")[2])
    assert error == {
        "error": "body must arrive within 0.5 s; got 14 bytes of '100' promised.",
        "field": "body",
    }
    assert conn.recv(1) == b""  # closed: the connection is not held
    conn.close()
    assert not [r for r in logged.records if r.exc_info]


def test_a_client_that_leaves_cancels_its_run_without_a_traceback(server):
    port, logged = server
    before = serve_app.stats["cancelled"]
    conn = request(port, json.dumps(LONG).encode())
    wait_until(lambda: serve_app._turns.running())  # the run has started
    conn.close()
    wait_until(lambda: serve_app.stats["cancelled"] == before + 1)
    wait_until(lambda: not serve_app._turns.running())  # and it stopped: the CPU is free
    # a client that leaves in the middle of its body: no traceback either
    request(port, b'{"landscape": ', length=100).close()
    time.sleep(0.3)
    assert not [r for r in logged.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_small_run_is_answered_while_a_long_one_runs(server):
    port, _ = server
    long = request(port, json.dumps(LONG).encode())
    wait_until(lambda: serve_app._turns.running())
    small = {**CANYON, "steps": 5, "starts": [[1.5, 0.5]]}
    data = answer(request(port, json.dumps(small).encode()))
    assert data.startswith(b"HTTP/1.1 200 ")
    long.setblocking(False)
    with pytest.raises(BlockingIOError):  # the long run has not answered yet: it was not
        long.recv(1)  # waited for, it took turns with the small one
    long.close()  # and it is cancelled
    wait_until(lambda: not serve_app._turns.running())


def test_a_run_past_its_time_stops_with_a_503(client, monkeypatch):
    monkeypatch.setattr(turns, "MAX_SECONDS", 0.0)  # every run is past it at its first step
    before = dict(serve_app.stats)
    r = post(client, {**CANYON, "steps": 9, "starts": [[0.5, 0.25]]})
    assert r.status_code == 503 and r.json()["field"] == "request"
    assert r.json()["error"] == (
        "the run must take at most 0 s, and it took longer; ask for fewer steps or starts."
    )
    assert serve_app.stats["cancelled"] == before["cancelled"] + 1
    assert not serve_app._turns.running()  # its turn was handed on


def test_runs_take_turns_slice_by_slice_in_the_order_they_came(monkeypatch):
    monkeypatch.setattr(turns, "SLICE", -1.0)  # every step is a slice: the order shows at once
    order: list[str] = []
    gate = turns.Turns()
    first_in = threading.Event()

    def run(name: str, steps: int) -> None:
        paced = turns.Paced(lambda: order.append(name), gate, threading.Event())
        with paced:
            first_in.set()
            for _ in range(steps):
                if name == "long" and len(order) == 1:
                    wait_until(lambda: gate.waiting() == 1)  # the short one queues behind
                paced()

    long = threading.Thread(target=run, args=("long", 4))
    long.start()
    first_in.wait(5)
    short = threading.Thread(target=run, args=("short", 2))
    short.start()
    long.join(10)
    short.join(10)
    # the long run hands the CPU on after each step while the short one waits
    assert order == ["long", "long", "short", "long", "short", "long"]


# --- a user's mistake found past the validation is a 422; a bug is a 500 without its traceback ---


def test_a_user_error_raised_while_running_is_a_422_with_its_sentence(monkeypatch):
    from firstorder.errors import UserValueError

    def refuse(*args, **kwargs):
        raise UserValueError("tol_f must be >= 0, got -1.")

    monkeypatch.setattr(serve_app, "run_request", refuse)
    quiet = TestClient(serve_app.create_app(compile=False), base_url=BASE)
    r = post(quiet, {**CANYON, "steps": 9, "starts": [[0.5, 0.25]]})
    assert r.status_code == 422
    assert r.json() == {"error": "tol_f must be >= 0, got -1.", "field": "request"}


@pytest.mark.parametrize("bug", [ValueError, TypeError, ZeroDivisionError])
def test_a_bug_while_running_is_a_500_that_names_no_user_field(monkeypatch, bug):
    def broken(*args, **kwargs):
        raise bug("an internal invariant failed")

    monkeypatch.setattr(serve_app, "run_request", broken)
    # the server re-raises a bug after answering (uvicorn logs its traceback): not here
    quiet = TestClient(
        serve_app.create_app(compile=False), base_url=BASE, raise_server_exceptions=False
    )
    r = post(quiet, {**CANYON, "steps": 9, "starts": [[0.5, 0.25]]})
    assert r.status_code == 500
    body = strict_json(r.text)
    assert body["field"] == "server" and bug.__name__ in body["error"]
    assert "invariant" not in body["error"]  # the details go to the log, not to the page
