"""What comes into the playground before it runs anything: who sends it, and how its body and
its connection behave.

- Only this machine's pages: a request whose ``Host`` is not this machine's name or the bound
  address (a page of another site that rebinds its DNS name to 127.0.0.1), or whose ``Origin``
  is not this server's own page (any site the user visits can POST, even a "simple" text/plain
  request that needs no CORS preflight), gets a 403 and goes no further.
- A body arrives within ``BODY_SECONDS`` or gets a 408 and the connection closes (a client that
  promises more bytes than it sends does not hold it).
- A client that disconnects cancels its run; nothing is logged for it (:class:`Gone`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from firstorder.files import to_json
from firstorder.serve import validate
from firstorder.serve.turns import Cancelled
from firstorder.serve.validate import RequestError, show

BODY_SECONDS = 5.0  # a request body (at most 64 KiB, from this machine) arrives within this
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")  # names this server answers to, with its own


class Gone(Exception):
    """The client closed the connection: there is no one to answer."""


async def read_body(request: Request) -> bytes:
    """The body, read no further than MAX_BODY + 1 bytes (a huge body is refused, not stored),
    within BODY_SECONDS (a client that promises more bytes than it sends does not hold the
    connection)."""
    body = b""
    try:
        with anyio.fail_after(BODY_SECONDS):
            async for chunk in request.stream():
                body += chunk
                if len(body) > validate.MAX_BODY:
                    break
    except TimeoutError:
        raise RequestError(
            408,
            "body",
            f"body must arrive within {BODY_SECONDS:g} s; got {len(body)} bytes of "
            f"{show(request.headers.get('content-length'))} promised.",
        ) from None
    except ClientDisconnect:
        raise Gone from None
    return body


async def run_watched(
    request: Request, run: Callable[..., str], req: dict[str, Any], compile: bool
) -> str:
    """``run(req, compile, cancel)`` (the app's run_request) in a worker thread, while this
    task watches the connection: a client that disconnects cancels its run (between two
    steps) instead of leaving it to run on."""
    cancel = threading.Event()
    # torch works in a thread, so the server stays responsive while it runs
    work = asyncio.ensure_future(run_in_threadpool(run, req, compile, cancel))
    try:
        while not work.done():
            await asyncio.wait({work}, timeout=0.1)
            if not work.done() and await request.is_disconnected():
                cancel.set()
        return work.result()
    except Cancelled as err:
        if cancel.is_set():
            raise Gone from None
        raise RequestError(503, "request", f"{err}; ask for fewer steps or starts.") from None
    finally:
        cancel.set()  # this task itself cancelled (the server stopping): the run stops too


class SameOrigin:
    """ASGI middleware: a request from outside (:func:`origin_error`) gets a 403 and goes no
    further. Plain ASGI, so that the route reads the connection itself (a disconnect is seen)."""

    def __init__(self, app: Any, hosts: tuple[str, ...]):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            err = origin_error(Request(scope), self.hosts)
            if err is not None:
                body = to_json({"error": str(err), "field": err.field}, ensure_ascii=False)
                response = Response(body, status_code=err.status, media_type="application/json")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def origin_error(request: Request, hosts: tuple[str, ...]) -> RequestError | None:
    """Why a request comes from outside: a Host this server is not (a DNS-rebinding page), or
    an Origin that is not this server's page (any site the user visits can send a POST, even a
    "simple" text/plain one that needs no CORS preflight)."""
    host = request.headers.get("host", "")
    name = urlsplit(f"//{host}").hostname if not set("@/\\?#") & set(host) else None
    if name not in hosts:
        return RequestError(
            403, "Host", f"Host must be one of {', '.join(hosts)}, got {show(host)}."
        )
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != f"http://{host}".lower():
        return RequestError(
            403,
            "Origin",
            f"Origin must be this server's page, http://{host}, got {show(origin)}: "
            "another site's page cannot drive the playground.",
        )
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return RequestError(
            403, "Origin", f"requests must come from this server's page, http://{host}."
        )
    return None
