"""The server's listening socket: what keeps small responses from waiting on Nagle."""

from __future__ import annotations

import socket

import pytest

from loopml.core.errors import ServeError
from loopml.serve import create_app, run_server


def test_the_listening_socket_says_it_is_tcp(classifier, monkeypatch):
    """run_server hands uvicorn a socket created with IPPROTO_TCP, which is what makes asyncio
    switch Nagle off (TCP_NODELAY) on every accepted connection."""
    import uvicorn

    seen = {}

    def fake_run(self, sockets=None):
        sock = sockets[0]
        seen.update(proto=sock.proto, type=sock.type, bound=sock.getsockname())
        sock.listen()
        conn = socket.create_connection(sock.getsockname()[:2])
        accepted, _ = sock.accept()
        seen["nodelay_possible"] = accepted.proto == socket.IPPROTO_TCP
        accepted.close()
        conn.close()
        sock.close()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    run_server(create_app(classifier, model_name="flights", version=1), port=0,
               access_log=False, log_level="warning")
    assert seen["proto"] == socket.IPPROTO_TCP and seen["type"] == socket.SOCK_STREAM
    assert seen["bound"][0] == "127.0.0.1" and seen["bound"][1] > 0
    assert seen["nodelay_possible"]


def test_a_port_in_use_is_a_serve_error(classifier):
    """A port another process holds is a ServeError with a hint, not an OSError."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError) as info:
            run_server(create_app(classifier, model_name="flights", version=1), port=port)
    assert "--port" in info.value.hint
