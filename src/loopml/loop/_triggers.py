"""The retraining policy: which signals start a retraining."""

from __future__ import annotations

from loopml.core.config import LoopConfig, duration_s
from loopml.core.records import Signals, Trigger


def triggers(policy: LoopConfig, signals: Signals) -> tuple[Trigger, ...]:
    """The triggers that fire for ``signals`` under ``policy`` (``loop:`` in loopml.yaml).

    ``drift``: the newest window's drift is alert. ``decay``: the realised or estimated primary
    metric is worse than ``loop.floors[metric]`` or worse than the champion's reference score
    by more than ``loop.decay_margin`` (in the metric's units). ``concept_drift``: a change was
    detected in the stream of realised errors. ``new_labels``: at least ``loop.min_new_labels``
    labelled rows arrived since the champion was trained. ``schedule``: ``loop.schedule`` (when
    set) has passed since the champion was trained. Only the kinds in ``loop.triggers`` fire,
    except ``schedule``, which setting ``loop.schedule`` turns on.

    >>> from loopml.core.config import LoopConfig
    >>> from loopml.core.records import Signals
    >>> s = Signals(model="m", metric="roc_auc", realised=0.62, reference_score=0.71)
    >>> [t.kind for t in triggers(LoopConfig(), s)]
    ['decay']
    """
    enabled = set(policy.triggers) | ({"schedule"} if policy.schedule else set())
    found: list[Trigger] = []
    if "drift" in enabled and signals.drift_status == "alert":
        cols = ", ".join(signals.drifted[:5]) + (" ..." if len(signals.drifted) > 5 else "")
        found.append(Trigger(kind="drift", reason=f"drift alert in the newest window ({cols})"))
    if "decay" in enabled:
        found.extend(_decay(policy, signals))
    if "concept_drift" in enabled and signals.concept_drift:
        found.append(Trigger(kind="concept_drift",
                             reason="a change was detected in the stream of realised errors"))
    if "schedule" in enabled and policy.schedule and signals.seconds_since_training is not None:
        every = duration_s(policy.schedule)
        if signals.seconds_since_training >= every:
            found.append(Trigger(
                kind="schedule", reason=f"{policy.schedule} passed since the last training",
                value=signals.seconds_since_training, threshold=every,
            ))
    if "new_labels" in enabled and signals.new_labels >= policy.min_new_labels:
        found.append(Trigger(
            kind="new_labels",
            reason=f"{signals.new_labels:,} new labelled rows since the last training",
            value=float(signals.new_labels), threshold=float(policy.min_new_labels),
        ))
    return tuple(found)


def _decay(policy: LoopConfig, s: Signals) -> list[Trigger]:
    if s.metric is None:
        return []
    sign = 1.0 if s.greater_is_better else -1.0
    floor = policy.floors.get(s.metric)
    out: list[Trigger] = []
    for what, value in (("realised", s.realised), ("estimated", s.estimated)):
        if value is None or value != value:
            continue
        if floor is not None and sign * (value - floor) < 0:
            out.append(Trigger(
                kind="decay", reason=f"{what} {s.metric} {value:.4f} is worse than the floor "
                f"{floor:.4f}", value=value, threshold=floor,
            ))
        elif s.reference_score is not None and (
            sign * (s.reference_score - value) > policy.decay_margin
        ):
            limit = s.reference_score - sign * policy.decay_margin
            out.append(Trigger(
                kind="decay", reason=f"{what} {s.metric} {value:.4f} is worse than the "
                f"reference {s.reference_score:.4f} by more than {policy.decay_margin:g}",
                value=value, threshold=limit,
            ))
    return out
