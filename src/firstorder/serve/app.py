"""The playground's JSON API and page: trajectories computed by :func:`firstorder.run.run`.

The page never re-implements an update rule: it draws what ``POST /api/run`` returns, and that
is exactly what ``firstorder.run.run`` computes (one configuration, float64, ``record="full"``).

Endpoints (every body is JSON; every non-finite number in a result is ``null``)::

    GET  /                         the page (static/index.html, playground.js, playground.css)
    GET  /api/landscapes           {"landscapes": [{"name", "description", "obstacles", "dim",
                                                    "try": [{"text", "query"}]}],
                                    "optimizers": [{"name", "label", "equation", "formula",
                                                    "color", "adaptive", "hyper", "start",
                                                    "hyperparameters"}]  (serve/catalog.py),
                                    "limits": {"starts", "steps", "optimizers", "grid"}}
    GET  /api/landscape/{name}?n=120
                                   {"name", "description", "obstacles", "dim", "bound",
                                    "window": [[x0, x1], [y0, y1]], "f_star",
                                    "minima" | "saddles" | "maxima": [{"x": [x, y], "f", "kind"}],
                                    "starts": [[x, y], ...],
                                    "grid": {"n", "x": [n], "y": [n], "f": [n rows (y)][n (x)]},
                                    "levels": [L increasing contour levels],
                                    "contours": [{"level", "lines": [[[x, y], ...], ...]}]}
    POST /api/run                  request:
                                   {"landscape": "rosenbrock",
                                    "optimizers": [{"name": "adam", "lr": 0.05, "rho1": 0.9, ...,
                                                    "prefetch": {"lr": [0.0501, ...]}}],
                                    "starts": [[x, y], ...],
                                    "steps": 500,
                                    "tol_f": 1e-10}           (optional: stop at f − f* < tol_f)
                                   prefetch (optional, ≤ 10 values of one hyperparameter): run
                                   them beside the optimizer, keep them for later requests,
                                   send only the value asked for
                                   response:
                                   {"landscape", "steps", "starts", "f_star", "seconds",
                                    "observation": "compiled" or "eager" (f and ∇f compiled
                                                   yet, or still eager: the same numbers
                                                   to rounding),
                                    "runs": [one per optimizer, in request order:
                                      {"name", "hyper": {every hyperparameter, defaults included},
                                       "steps": steps taken (< the budget if all stopped early),
                                       "x": [B starts][T+1][2], "f": [B][T+1],
                                       "step_length": [B][T]      ‖x_{k+1} − x_k‖ (= ‖s_k‖ for
                                                                  momentum),
                                       "effective_step": [B][T][2] α/(√r̂+ε) per coordinate for
                                                                  adagrad, rmsprop, adam; else null,
                                       "diverged_at": [B] step or null,
                                       "escaped_at": [B] step or null (left the map of a
                                                    surface unbounded below: an escape),
                                       "steps_to_target": [B] step or null,
                                       "rule": "compiled" or "eager" (its kernel
                                               compiling yet),
                                       "seconds": server time of this run (0 when cached)}]}

An optimizer's hyperparameters are those of ``firstorder.rules.RULES[name].hyper`` (lr for α,
rho for ρ, rho1/rho2 for ρ₁/ρ₂, eps for ε, damping for λ, bias_correction for Adam); the ones
left out take the rule's default. A request that is not valid gets a 4xx answer
``{"error": one sentence, "field": "optimizers[1].rho"}``: 400 for a body that is not a JSON
object (NaN and Infinity are not JSON), 404 for an unknown path or landscape in a GET, 405 for
a wrong method, 413 for a body over 64 KiB, 408 for a body that does not arrive within 5 s,
403 for a request from outside (a Host other than this machine's names or the bound address,
an Origin other than this server's page), 422 for a value out of range (an unknown landscape
or optimizer, a hyperparameter outside its domain, more than 20 starts, 2000 steps, 6
optimizers or 10 prefetched values, a number that is not finite or past float64, a field that
does not exist, n outside [10, 300], a request costing more than 15 million trajectory steps
or answering more than 20 MB: :func:`firstorder.serve.validate.within_budget`), 503 for a run
past 60 s of its own time.

Runs take turns on the CPU in slices of 50 ms (:mod:`firstorder.serve.turns`), so a small run
is not kept waiting behind a long one, and a client that disconnects cancels its run.
The checks are in :mod:`firstorder.serve.validate`; user text is only compared with the
registries' names, never evaluated.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from firstorder import landscapes, rules
from firstorder.errors import UserError
from firstorder.files import to_json
from firstorder.observe import Observer, compiled_observer
from firstorder.run import run_many, warm_up
from firstorder.serve import catalog, guard, validate
from firstorder.serve.prompts import FIRST, prompts
from firstorder.serve.turns import Cancelled, Paced, Turns
from firstorder.serve.validate import RequestError, show
from firstorder.trajectories import Trajectories

# finished runs kept, so that moving one optimizer's slider reruns only that one: bounded in
# bytes (tensors and JSON text), not in runs, as a run's size varies 10,000-fold
CACHE_BYTES = 256 * 2**20
STATIC = resources.files("firstorder.serve") / "static"
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}


def _dumps(payload: object) -> str:
    # not FastAPI's encoder, slow on long lists; a non-finite number is null, as in every
    # JSON firstorder writes (the tensors are made plain by _plain, in NumPy, before)
    return to_json(payload, separators=(",", ":"), ensure_ascii=False)


def _json(payload: object, status: int = 200) -> Response:
    return Response(_dumps(payload), status_code=status, media_type="application/json")


def _error(status: int, field: str, message: str) -> Response:
    return _json({"error": message, "field": field}, status)


def _plain(t: torch.Tensor | np.ndarray) -> list:
    """A tensor as nested lists, every non-finite value (a diverged run) as None."""
    a = t.numpy() if isinstance(t, torch.Tensor) else t
    if np.isfinite(a).all():
        return a.tolist()
    return np.where(np.isfinite(a), a, None).tolist()


# --- the contour map ------------------------------------------------------------------------------


def _point(p: landscapes.Point) -> dict[str, object]:
    return {"x": list(p.x[:2]), "f": p.f, "kind": p.kind}


def landscape_grid(name: str, n: int) -> dict[str, object]:
    """The contour map of ``name``: values on an n × n grid over its window, levels, lines."""
    import contourpy

    f = validate.landscape(name, "name", 404)
    (x0, x1), (y0, y1) = f.window
    xs = torch.linspace(x0, x1, n, dtype=torch.float64)
    ys = torch.linspace(y0, y1, n, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")  # row j holds y_j
    with torch.no_grad():
        Z = f(torch.stack([X, Y], dim=-1)).numpy()
    # log-spaced levels above the lowest value show canyons, plateaus and wells alike
    lo = float(np.nanmin(Z))
    hi = float(np.nanpercentile(Z - lo, 98))
    levels = (lo + np.geomspace(max(hi * 1e-5, 1e-12), hi, 18)).tolist()
    gen = contourpy.contour_generator(X.numpy(), Y.numpy(), Z, line_type="Separate")
    contours = [
        {"level": lv, "lines": [np.round(line, 5).tolist() for line in gen.lines(lv)]}
        for lv in levels
    ]
    return {
        "name": f.name,
        "description": f.description,
        "obstacles": list(f.obstacles),
        "dim": f.dim,
        "bound": f.bound,
        "window": [list(f.window[0]), list(f.window[1])],
        "f_star": f.f_star if f.minima else None,
        "minima": [_point(p) for p in f.minima],
        "saddles": [_point(p) for p in f.saddles],
        "maxima": [_point(p) for p in f.maxima],
        "starts": [list(s[:2]) for s in f.starts],
        "grid": {"n": n, "x": xs.tolist(), "y": ys.tolist(), "f": _plain(Z)},
        "levels": levels,
        "contours": contours,
    }


# --- running -----------------------------------------------------------------------------------

_cache: OrderedDict[tuple, str | tuple] = OrderedDict()  # JSON text, or (name, run, c)
_lock = threading.Lock()
_turns = Turns()  # one run at a time, in slices: parallel runs only slow each other down
stats = {"runs": 0, "cancelled": 0}  # runs finished, runs stopped (client gone, or too long)


def _owner(entry: str | tuple) -> object:
    """What an entry's memory belongs to: its text, or the run its grid shares."""
    return entry if isinstance(entry, str) else entry[1]


def _nbytes(entry: str | tuple) -> int:
    if isinstance(entry, str):
        return len(entry)
    r = entry[1]
    tensors = (r.x, r.f, r.grad_norm, r.step_length, r.effective_step, r.final_x, r.final_f)
    return sum(t.nbytes for t in tensors if t is not None)


def _trim_cache() -> None:
    """Drop the least recently used runs until the cache holds at most CACHE_BYTES (a run
    shared by the keys of its grid counts once). Called with _lock held."""
    keys = Counter(id(_owner(e)) for e in _cache.values())
    sizes = {id(_owner(e)): _nbytes(e) for e in _cache.values()}
    total = sum(sizes.values())
    while total > CACHE_BYTES and _cache:
        _, entry = _cache.popitem(last=False)
        owner = id(_owner(entry))
        keys[owner] -= 1
        if keys[owner] == 0:  # the last key of its run: the run's memory is freed
            total -= sizes[owner]


def _encode(name: str, r: Trajectories, c: int = 0) -> str:
    """Configuration c of a run as a JSON object: firstorder.run's result with starts [B] first."""
    eff = r.effective_step
    escaped = r.escaped_at if r.escaped_at is not None else torch.full_like(r.diverged_at, -1)
    return _dumps(
        {
            "name": name,
            "hyper": r.config(c),
            "steps": r.steps,
            # run's [T+1, C, B, d] -> [B, T+1, d]: one path per start
            "x": _plain(r.x[:, c].transpose(0, 1)),
            "f": _plain(r.f[:, c].T),
            "step_length": _plain(r.step_length[:, c].T),
            "effective_step": None if eff is None else _plain(eff[:, c].transpose(0, 1)),
            "diverged_at": [v if v >= 0 else None for v in r.diverged_at[c].tolist()],
            "escaped_at": [v if v >= 0 else None for v in escaped[c].tolist()],
            "steps_to_target": [v if v >= 0 else None for v in r.steps_to_target[c].tolist()],
            "rule": r.meta["rule"],
        }
    )


def run_request(
    req: dict[str, Any], compile: bool = False, cancel: threading.Event | None = None
) -> str:
    """Every optimizer of a parsed request, in order, as the JSON text of the response.

    Finished runs are kept: moving one optimizer's slider reruns that optimizer only. The
    optimizers not in the cache run together (firstorder.run_many: one gradient evaluation per
    step for all of them) and their time is split evenly between them. An optimizer's
    ``prefetch`` values join its run as a grid axis (the batched engine computes 11 values of
    α in about the time of one) and are kept for the next requests, not sent.
    """
    t0 = time.perf_counter()
    common = (req["landscape"], json.dumps(req["starts"]), req["steps"], req["tol_f"], compile)

    def key_of(name: str, hyper: dict) -> tuple:
        return (name, tuple(sorted(hyper.items())), *common)

    keys = [key_of(name, hyper) for name, hyper in req["optimizers"]]
    with _lock:
        found = {key: _cache[key] for key in keys if key in _cache}
    missing = [i for i, key in enumerate(keys) if key not in found]
    f = validate.landscape(req["landscape"])
    if compile:  # returns at once: what is not compiled yet starts compiling, and runs eagerly
        warm_up(f, [req["optimizers"][i] for i in missing])
    compiled = compile and compiled_observer(f).ready(f.dim)
    seconds: dict[tuple, float] = {}
    if missing:
        specs, grids = _specs(req, missing, keys, key_of)
        results, share = _run_missing(f, req, specs, compile, cancel or threading.Event())
        _keep(specs, grids, results, found, seconds, share)
    head = {
        "landscape": req["landscape"],
        "steps": req["steps"],
        "starts": req["starts"],
        "f_star": f.f_star if f.minima else None,
        "seconds": time.perf_counter() - t0,
        "observation": "compiled" if compiled else "eager",
    }
    return _response(head, keys, found, seconds)


def _specs(
    req: dict[str, Any], missing: list[int], keys: list[tuple], key_of: Callable
) -> tuple[list[tuple[str, dict]], list[list[tuple]]]:
    """The run of each optimizer not in the cache, its prefetched values (those not cached
    yet) as one grid axis after the value asked for; and per run, the cache key of each of
    its configurations."""
    specs, grids = [], []
    for i in missing:
        name, hyper = req["optimizers"][i]
        axis, values = req["prefetch"].get(i, (None, []))
        with _lock:
            ahead = [
                v
                for v in dict.fromkeys(values)
                if v != hyper.get(axis) and key_of(name, {**hyper, axis: v}) not in _cache
            ]
        grids.append([keys[i]] + [key_of(name, {**hyper, axis: v}) for v in ahead])
        if ahead:  # the asked-for value first, then the values ahead: one grid axis
            first = hyper.get(axis, rules.RULES[name].hyper[axis])
            specs.append((name, {**hyper, axis: [first, *ahead]}))
        else:
            specs.append((name, hyper))
    return specs, grids


def _run_missing(
    f: landscapes.Landscape,
    req: dict[str, Any],
    specs: list[tuple[str, dict]],
    compile: bool,
    cancel: threading.Event,
) -> tuple[list[Trajectories], float]:
    """Run ``specs`` together, in turns with other runs, a slice at a time, stopped if the
    client goes; the results and each run's share of the time."""
    observer = compiled_observer(f) if compile else Observer(f)
    try:
        with Paced(observer, _turns, cancel) as paced:
            results = run_many(
                f,
                specs,
                starts=req["starts"],
                steps=req["steps"],
                tol_f=req["tol_f"],
                record="full",
                compile=compile,
                observer=paced,
            )
    except Cancelled:
        with _lock:
            stats["cancelled"] += 1
        raise
    with _lock:
        stats["runs"] += 1
    return results, paced.seconds / len(specs)


def _keep(
    specs: list[tuple[str, dict]],
    grids: list[list[tuple]],
    results: list[Trajectories],
    found: dict[tuple, str | tuple],
    seconds: dict[tuple, float],
    share: float,
) -> None:
    """Cache every configuration of the new runs; the ones asked for go into ``found``."""
    with _lock:
        for (name, _), grid, r in zip(specs, grids, results):
            found[grid[0]] = (name, r, 0)
            seconds[grid[0]] = share
            for c, key in enumerate(grid):
                _cache[key] = (name, r, c)  # the JSON text is made when first asked for
                _cache.move_to_end(key)
        _trim_cache()


def _response(
    head: dict[str, object],
    keys: list[tuple],
    found: dict[tuple, str | tuple],
    seconds: dict[tuple, float],
) -> str:
    """The response's JSON text: ``head``, then the runs of ``keys`` in order."""
    # a run's JSON takes about 20 ms to make: only the runs asked for are encoded, each once
    texts = {key: e if isinstance(e, str) else _encode(*e) for key, e in found.items()}
    with _lock:
        for key, text in texts.items():
            if key in _cache:
                _cache[key] = text
        _trim_cache()
    runs = [f'{{"seconds":{seconds.get(key, 0.0):.6f},' + texts[key][1:] for key in keys]
    return _dumps(head)[:-1] + ',"runs":[' + ",".join(runs) + "]}"


# --- the app ------------------------------------------------------------------------------------


def create_app(compile: bool = True, host: str = "127.0.0.1") -> FastAPI:
    """The playground: the page at / and the JSON API under /api.

    It answers only requests addressed to ``host`` (the address it is bound to) or to this
    machine's names, and refuses those whose Origin is another site (403).

    ``compile`` runs the trajectories as compiled kernels (``firstorder.run(...,
    compile=True)``): each landscape's observation compiles in the background when the page
    first shows it, each rule when a run first asks for it, and runs are eager until then. A
    500-step run then takes about a quarter of the eager time.
    """
    if compile:  # the page opens on FIRST: its kernels compile while the browser starts
        warm_up(landscapes.get(FIRST[0]), [(name, {}) for name in FIRST[1]])
    app = FastAPI(
        title="firstorder playground",
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema is documented
        redoc_url=None,  # in this module's docstring and the README instead
        openapi_url=None,
    )
    hosts = tuple(dict.fromkeys((*guard.LOCAL_HOSTS, urlsplit(f"//{host}").hostname or host)))
    app.add_middleware(guard.SameOrigin, hosts=hosts)
    _add_error_handlers(app)
    _add_routes(app, compile)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": one sentence, "field"}``: 4xx for the request's mistakes
    (422 for a value a checker below the validation refused, as a UserError), 500 for a bug,
    whose traceback goes to the server's log, not to the page."""

    @app.exception_handler(guard.Gone)
    async def gone(request: Request, err: guard.Gone) -> Response:
        return Response(status_code=499)  # no one reads it; and no traceback in the log

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> Response:
        response = _error(err.status, err.field, str(err))
        if err.status in (408, 413):  # the rest of the body is not read: close the connection
            response.headers["connection"] = "close"
        return response

    @app.exception_handler(UserError)
    async def user_error(request: Request, err: UserError) -> Response:
        return _error(422, "request", str(err))

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> Response:
        # Starlette raises it again after this answer: the server logs its traceback
        return _error(
            500,
            "server",
            f"the server failed ({type(err).__name__}); this is a bug in firstorder, and "
            "its traceback is in the server's log.",
        )

    @app.exception_handler(404)
    async def not_found(request: Request, err: Exception) -> Response:
        return _error(
            404,
            "path",
            f"path must be /, /api/landscapes, /api/landscape/NAME or "
            f"/api/run, got {show(request.url.path)}.",
        )

    @app.exception_handler(405)
    async def bad_method(request: Request, err: Exception) -> Response:
        return _error(405, "method", f"method {request.method} is not allowed on this path.")


def _add_routes(app: FastAPI, compile: bool) -> None:
    """The page, its static files, and the three endpoints of the JSON API."""

    @app.get("/")
    def index() -> Response:
        return page("index.html")

    @app.get("/static/{name}")
    def page(name: str) -> Response:
        if name not in STATIC_FILES:
            raise RequestError(
                404, "path", f"static file must be one of {', '.join(STATIC_FILES)}."
            )
        return FileResponse(str(STATIC / name), media_type=STATIC_FILES[name])

    @app.get("/api/landscapes")
    def list_landscapes() -> Response:
        return _json(_catalog())

    @app.get("/api/landscape/{name}")
    def get_landscape(name: str, n: str = "120") -> Response:
        grid = landscape_grid(name, validate.grid_size(n))
        if compile:  # the page will ask for runs on it next: start compiling its observation
            compiled_observer(validate.landscape(name)).warm_up(grid["dim"])
        return _json(grid)

    @app.post("/api/run")
    async def post_run(request: Request) -> Response:
        req = validate.parse_run(await guard.read_body(request))
        text = await guard.run_watched(request, run_request, req, compile)
        return Response(text, media_type="application/json")


def _catalog() -> dict[str, object]:
    """What GET /api/landscapes answers: the landscapes, the optimizers, the limits."""
    items = []
    for name in validate.names():
        f = validate.landscape(name)
        items.append(
            {
                "name": name,
                "description": f.description,
                "obstacles": list(f.obstacles),
                "dim": f.dim,
                "try": prompts(name),  # "try this": a sentence and the page state it sets
            }
        )
    optimizers = catalog.optimizers()
    limits = {
        "starts": validate.MAX_STARTS,
        "steps": validate.MAX_STEPS,
        "optimizers": validate.MAX_OPTIMIZERS,
        "grid": list(validate.GRID),
    }
    return {"landscapes": items, "optimizers": optimizers, "limits": limits}
