"""Running the REST service: ``run_server`` serves an app (or an import string, for several
worker processes) with uvicorn on a socket of its own; ``configure_logs`` sets up the log lines
of a worker process (text or one JSON object a line, with the request id)."""

import logging
from typing import TYPE_CHECKING

from loopml.core.errors import ServeError
from loopml.serve._metrics import JsonFormatter

if TYPE_CHECKING:
    import fastapi

KEEP_ALIVE_S = 65  # an idle connection is kept this long (uvicorn closes it after 5 s)


def run_server(
    app: "fastapi.FastAPI | str",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = True,
    log_level: str = "info",
    log_format: str = "json",
    workers: int = 1,
) -> None:
    """Serve ``app`` with uvicorn until SIGINT or SIGTERM.

    On either signal the server stops accepting connections, finishes the requests in flight
    and runs the app's shutdown, which writes every pending prediction to the lake.
    ``log_format="json"`` writes one JSON object per line to stderr (server messages and one
    access line per request with its request id, status and milliseconds); ``"text"`` keeps
    uvicorn's own lines. With ``workers`` above 1, ``app`` is the import path of a function
    that makes the app (``"package.module:function"``), called in each of ``workers``
    processes that share the port; a signal to this process stops them all the same way.

    Example::

        run_server(create_app(bundle, model_name="flights", version=3), host="0.0.0.0", port=8000)
    """
    import socket

    import uvicorn

    if workers > 1 and not isinstance(app, str):
        raise ServeError("Several workers need the app as an import path of its factory.",
                         hint="Pass app='package.module:function' with workers > 1.")
    json_lines = log_format == "json"
    configure_logs(log_format, log_level=log_level, access_log=access_log)
    config = uvicorn.Config(
        app, lifespan="on", log_level=log_level, access_log=access_log and not json_lines,
        workers=workers, factory=isinstance(app, str),
        log_config=None if json_lines else uvicorn.config.LOGGING_CONFIG,
        # longer than clients and load balancers keep an idle connection (httpx and requests
        # 5 s, AWS ALB 60 s): with uvicorn's 5 s, a client sending on a connection the server
        # is closing at that moment gets a reset
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets that say they are TCP,
    # and with Nagle on every response waits ~40 ms for a delayed ACK
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
            hint="Stop the process using that port, or choose another with --port "
            "(serving.port in loopml.yaml).",
        ) from exc
    bound_host, bound_port = sock.getsockname()[:2]
    title = app if isinstance(app, str) else app.title
    logging.getLogger("uvicorn.error").info(
        "Serving %s on http://%s:%d%s (API docs at /docs; Ctrl+C or SIGTERM stops it and "
        "writes pending predictions)",
        title, bound_host, bound_port, f" with {workers} workers" if workers > 1 else "",
    )
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock.set_inheritable(True)
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def configure_logs(log_format: str, *, log_level: str = "info", access_log: bool = True) -> None:
    """The server's logging in this process: with ``"json"``, one JSON object per line on
    stderr for uvicorn's and loopml's loggers, and loopml's access lines (unless
    ``access_log`` is off); with ``"text"``, uvicorn's own lines and access log."""
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        for name in ("uvicorn", "loopml"):
            found = logging.getLogger(name)
            found.handlers[:] = [handler]
            found.setLevel(log_level.upper())
            found.propagate = False
        logging.getLogger("loopml.serve.access").disabled = not access_log
    else:
        logging.getLogger("loopml.serve.access").disabled = True  # uvicorn's lines instead

