"""The retraining policy: which signals fire which triggers."""

from __future__ import annotations

from loopml.core.config import LoopConfig
from loopml.core.records import Signals
from loopml.loop import triggers


def kinds(policy: LoopConfig, signals: Signals) -> list[str]:
    return [t.kind for t in triggers(policy, signals)]


def test_quiet_signals_fire_nothing() -> None:
    """No drift, no decay, few labels: no trigger."""
    s = Signals(model="m", drift_status="ok", metric="roc_auc", realised=0.80,
                reference_score=0.81, new_labels=10)
    assert kinds(LoopConfig(), s) == []


def test_drift_alert() -> None:
    """An alert in the newest window fires 'drift', naming the columns."""
    t = triggers(LoopConfig(), Signals(model="m", drift_status="alert", drifted=("month",)))
    assert [x.kind for x in t] == ["drift"] and "month" in t[0].reason


def test_decay_against_the_floor_and_the_reference() -> None:
    """Realised below the floor, or estimated below the reference by the margin, fires decay."""
    floor = LoopConfig(floors={"roc_auc": 0.75})
    t = triggers(floor, Signals(model="m", metric="roc_auc", realised=0.74))
    assert [x.kind for x in t] == ["decay"] and t[0].threshold == 0.75
    s = Signals(model="m", metric="roc_auc", estimated=0.70, reference_score=0.80)
    assert kinds(LoopConfig(decay_margin=0.05), s) == ["decay"]
    assert kinds(LoopConfig(decay_margin=0.2), s) == []


def test_decay_for_lower_is_better_metrics() -> None:
    """For RMSE, decay means a value above the floor."""
    s = Signals(model="m", metric="rmse", greater_is_better=False, realised=12.0)
    assert kinds(LoopConfig(floors={"rmse": 10.0}), s) == ["decay"]
    assert kinds(LoopConfig(floors={"rmse": 15.0}), s) == []


def test_concept_drift_schedule_and_new_labels() -> None:
    """Concept drift, an elapsed schedule and enough new labels each fire."""
    s = Signals(model="m", concept_drift=True, seconds_since_training=8 * 86400, new_labels=1500)
    policy = LoopConfig(schedule="7d", min_new_labels=1000)
    assert kinds(policy, s) == ["concept_drift", "schedule", "new_labels"]


def test_only_enabled_triggers_fire() -> None:
    """loop.triggers limits what may fire."""
    s = Signals(model="m", drift_status="alert", new_labels=5000)
    assert kinds(LoopConfig(triggers=("new_labels",)), s) == ["new_labels"]
