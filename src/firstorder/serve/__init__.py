"""The playground: a local web page to watch the optimizers on the obstacle course.

``firstorder serve [--port 8765] [--open]`` starts it on 127.0.0.1. The page draws what the
JSON API of :mod:`firstorder.serve.app` returns, and that API returns what
:func:`firstorder.run.run` computes: no update rule is written again for the browser.
"""

from __future__ import annotations

import socket
import threading
import webbrowser

from firstorder.errors import UserValueError


def serve(port: int = 8765, open_browser: bool = False, host: str = "127.0.0.1") -> None:
    """Serve the playground at http://host:port/ until interrupted."""
    if not (isinstance(port, int) and 1 <= port <= 65535):
        raise UserValueError(f"port must be an integer from 1 to 65535, got {port!r}.")

    import torch
    import uvicorn

    from firstorder.serve.app import create_app

    with socket.socket() as probe:  # one clear sentence instead of uvicorn's bind traceback
        try:
            probe.bind((host, port))
        except OSError:
            raise UserValueError(
                f"port {port} is in use on {host}; choose another with --port."
            ) from None

    # the trajectories are tiny tensors: one thread per run avoids the pool's hand-offs
    torch.set_num_threads(1)
    url = f"http://{host}:{port}/"
    print(f"firstorder playground: {url}  (Ctrl+C stops it)", flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(create_app(host=host), host=host, port=port, log_level="warning")


__all__ = ["serve"]
