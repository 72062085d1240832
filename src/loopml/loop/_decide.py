"""Champion / challenger: a new model replaces the champion only when it wins on evidence."""

from __future__ import annotations

import math
from collections.abc import Sequence

from loopml.core.records import Decision, Evidence, Trigger


def decide(
    evidence: Sequence[Evidence],
    *,
    champion_version: int | None,
    candidate_version: int | None = None,
    candidate_score: float | None = None,
    min_gain: float = 0.0,
    triggers: Sequence[Trigger] = (),
) -> Decision:
    """Whether the candidate (challenger) becomes champion, with the evidence.

    The first model becomes champion. A later one is promoted only when, on every evidence set
    (rows both models were scored on), it beats the champion by more than ``min_gain`` AND the
    paired bootstrap interval of the difference lies wholly above zero; otherwise the champion
    stays and the candidate becomes challenger.

    >>> from loopml.core.records import Comparison, Evidence
    >>> c = Comparison(metric="roc_auc", greater_is_better=True, rows=900, champion=0.70,
    ...                challenger=0.72, difference=0.02, low=-0.01, high=0.05,
    ...                confidence=0.95, bootstrap=1000, seed=0)
    >>> d = decide([Evidence(name="window", comparison=c)], champion_version=1)
    >>> d.promote, d.alias
    (False, 'challenger')
    """
    main = evidence[-1].comparison if evidence else None
    score = candidate_score if candidate_score is not None else (
        main.challenger if main is not None else math.nan
    )
    common = {
        "candidate_version": candidate_version, "champion_version": champion_version,
        "candidate_score": score, "champion_score": None if main is None else main.champion,
        "metric": None if main is None else main.metric, "min_gain": min_gain,
        "triggers": tuple(triggers), "evidence": tuple(evidence),
    }
    if champion_version is None:
        return Decision(promote=True, alias="champion", reason="first model: no champion yet",
                        **common)
    if not evidence:
        return Decision(
            promote=False, alias="challenger",
            reason=f"no rows to compare on; champion v{champion_version} stays", **common,
        )
    failures = [why for e in evidence if (why := _short_of(e, min_gain)) is not None]
    summary = "; ".join(_describe(e) for e in evidence)
    name = "the candidate" if candidate_version is None else f"v{candidate_version}"
    if failures:
        reason = (f"champion v{champion_version} stays: {name} {failures[0]} ({summary})")
        return Decision(promote=False, alias="challenger", reason=reason, **common)
    reason = (f"{name} beats champion v{champion_version} on every evidence set by more than "
              f"{min_gain:g} with intervals above zero ({summary})")
    return Decision(promote=True, alias="champion", reason=reason, **common)


def _short_of(e: Evidence, min_gain: float) -> str | None:
    """Why this evidence does not support promotion, or None when it does."""
    c = e.comparison
    if math.isnan(c.difference):
        return f"could not be scored on the {e.name}"
    if c.difference <= min_gain:
        return f"does not win by more than {min_gain:g} on the {e.name}"
    if math.isnan(c.low) or c.low <= 0:
        return (f"wins on the {e.name} but its {c.confidence:.0%} interval contains zero, "
                "so the gain may be noise")
    return None


def _describe(e: Evidence) -> str:
    c = e.comparison
    return (f"{e.name}, {c.rows:,} rows: {c.metric} {c.challenger:.4f} vs {c.champion:.4f}, "
            f"difference {c.difference:+.4f} [{c.low:+.4f}, {c.high:+.4f}]")
