"""Rollback from the alias history, alerts with a retried webhook, and the CI check, on a
Context built in memory (no project folder)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from loopml.core.config import ProjectConfig
from loopml.core.errors import LoopError
from loopml.lake import Lake
from loopml.pipeline import Context
from loopml.pipeline._alerts import alert
from loopml.pipeline._check import check
from loopml.pipeline._rollback import champion_history, rollback
from loopml.registry import Catalog


def context(tmp_path: Path, **loop: object) -> Context:
    cfg = ProjectConfig.from_dict({
        "name": "m", "sources": [{"name": "s", "path": "s.csv"}],
        "problem": {"source": "s", "target": "y"}, "loop": loop,
    })
    catalog = Catalog("sqlite:///catalog.db", "artifacts", base_dir=tmp_path)
    return Context(config=cfg, lake=Lake(tmp_path / "lake"), catalog=catalog, root=tmp_path)


def register(ctx: Context, tmp_path: Path, n: int, score: float = 0.8) -> None:
    folder = tmp_path / f"model{n}"
    folder.mkdir()
    (folder / "weights.txt").write_text(str(n))
    ctx.catalog.register_model("m", folder, run_id=None, task="classification",
                               metric="roc_auc", score=score, metrics={"roc_auc": score})


def test_rollback_walks_back_the_champions(tmp_path: Path) -> None:
    """Rollback restores the champion before the current one; a second goes one further."""
    ctx = context(tmp_path)
    for n in (1, 2, 3):
        register(ctx, tmp_path, n)
        ctx.catalog.set_alias("m", "champion", n)
    mv, replaced = rollback(ctx)
    assert (mv.version, replaced) == (2, 3)
    assert ctx.catalog.model_version("m", "champion").version == 2
    assert rollback(ctx)[0].version == 1
    assert champion_history(ctx, "m") == [1]
    with pytest.raises(LoopError) as info:
        rollback(ctx)
    assert "promote" in (info.value.hint or "")
    events = ctx.catalog.events(kind="rollback")
    assert [e["payload"]["to"] for e in events] == [1, 2]


class Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first ``fail`` POSTs, then 200; keeps the bodies."""

    fail = 0
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).bodies.append(body)
        code = 500 if len(type(self).bodies) <= type(self).fail else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    Receiver.bodies = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_is_retried_until_it_answers(tmp_path: Path, receiver: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook that fails twice gets the event on the third attempt, as JSON with evidence."""
    monkeypatch.setattr("loopml.pipeline._alerts.BACKOFF_S", 0.01)
    Receiver.fail = 2
    ctx = context(tmp_path, webhook=receiver, webhook_retries=3)
    assert alert(ctx, "promote", "m@2", {"reason": "wins", "score": float("nan")})
    assert len(Receiver.bodies) == 3
    body = Receiver.bodies[-1]
    assert body["event"] == "promote" and body["subject"] == "m@2"
    assert body["evidence"] == {"reason": "wins", "score": None}
    assert ctx.catalog.events(kind="alert")[0]["payload"]["event"] == "promote"


def test_failing_webhook_never_stops_the_loop(tmp_path: Path, receiver: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook that always fails is given up on after its retries; the event is kept."""
    monkeypatch.setattr("loopml.pipeline._alerts.BACKOFF_S", 0.01)
    Receiver.fail = 100
    ctx = context(tmp_path, webhook=receiver, webhook_retries=2)
    assert alert(ctx, "rollback", "m@1", {"from": 2, "to": 1}) is False
    assert len(Receiver.bodies) == 3
    assert ctx.catalog.events(kind="alert")[0]["payload"]["evidence"] == {"from": 2, "to": 1}


def test_check_fails_below_a_floor_and_when_worse_on_evidence(tmp_path: Path) -> None:
    """The newest version fails the gate below loop.floors or behind the champion."""
    ctx = context(tmp_path, floors={"roc_auc": 0.75})
    register(ctx, tmp_path, 1, score=0.8)
    assert check(ctx).passed
    register(ctx, tmp_path, 2, score=0.7)
    comparison = {"metric": "roc_auc", "rows": 500, "champion": 0.8, "challenger": 0.7,
                  "difference": -0.1, "low": -0.15, "high": -0.05, "confidence": 0.95}
    ctx.catalog.log_event("decision", "m@2", {
        "promote": False, "champion_version": 1,
        "evidence": [{"name": "test split", "comparison": comparison}],
    })
    report = check(ctx)
    assert not report.passed and report.version == 2 and report.champion_version == 1
    assert {i.name: i.passed for i in report.items} == {
        "test split vs champion v1": False, "floor roc_auc": False}


def test_watch_goes_on_after_errors_and_stops_on_sigterm(tmp_path: Path) -> None:
    """A failing cycle is reported and the watch goes on; SIGTERM ends it after the cycle."""
    import os
    import signal

    from loopml.pipeline._loop import watch

    ctx = context(tmp_path)  # no model yet: every cycle is a LoopError
    errors: list[Exception] = []

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        if len(errors) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    cycles = watch(ctx, every_s=0.01, on_cycle=lambda c: None, on_error=on_error)
    assert cycles == 2 and all(isinstance(e, LoopError) for e in errors)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is given back


def test_drift_and_decay_are_announced_once_per_window(tmp_path: Path) -> None:
    """A drift alert is announced even when drift does not retrain, once per window."""
    from datetime import UTC, datetime

    from loopml.core.records import Signals
    from loopml.pipeline._loop import announce

    ctx = context(tmp_path, triggers=["new_labels"])
    register(ctx, tmp_path, 1)
    mv = ctx.catalog.model_version("m", 1)
    first = Signals(model="m", drift_status="alert", drifted=("x",),
                    window_start=datetime(2024, 1, 1, tzinfo=UTC))
    announce(ctx, mv, first)
    announce(ctx, mv, first)
    later = Signals(model="m", drift_status="alert", drifted=("x",), metric="roc_auc",
                    realised=0.5, reference_score=0.8,
                    window_start=datetime(2024, 1, 8, tzinfo=UTC))
    announce(ctx, mv, later)
    told = [e["payload"]["event"] for e in ctx.catalog.events(kind="alert")]
    assert sorted(told) == ["decay", "drift", "drift"]


def test_models_on_different_columns_cannot_be_compared() -> None:
    """Rows without a model's feature columns give a LoopError, never a frame error."""
    import polars as pl

    from loopml.core.contract import Contract
    from loopml.core.records import ModelBundle, Reference
    from loopml.pipeline._evidence import outputs

    bundle = ModelBundle(model=None, contract=Contract(source="s", columns=()),
                         task="regression", target="y", feature_columns=("a", "b"),
                         classes=None, positive_label=None, reference=Reference(features=()))
    with pytest.raises(LoopError) as info:
        outputs(bundle, pl.DataFrame({"a": [1.0]}), None)
    assert "b" in info.value.message and "promote" in (info.value.hint or "")
