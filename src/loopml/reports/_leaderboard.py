"""The leaderboard section of the model report: every candidate, the accuracy-versus-training-
time frontier, the chosen ensemble, dropped features and why the winner won."""

from __future__ import annotations

from typing import Any

from loopml.core.records import Candidate, Leaderboard
from loopml.reports._figures import BLUE, GREY, ORANGE, Figure, layout, trace
from loopml.reports._page import Page, num

PALETTE = ("#3569a8", "#e07b39", "#3a9a5b", "#8e5ab5", "#c2477a", "#5fa3b8", "#a08a3c",
           "#6b7785")  # fmt: skip
MIN_SECONDS = 0.001  # fit times drawn on a log axis start here


def leaderboard_section(page: Page, board: Leaderboard) -> dict[str, Any]:
    """What the template's leaderboard section shows: ranked rows, the frontier plot, the
    ensemble's members, dropped features and the facts of how the model was chosen."""
    frontier = set(map(id, board.frontier()))
    rows = [
        {
            "rank": i + 1,
            "name": label(c),
            "learner": c.learner,
            "origin": c.origin,
            "cv": num(c.cv_score),
            "cv_std": pm(c.cv_std),
            "valid": num(c.valid_score),
            "fit": f"{num(round(c.fit_time_s, 2))} s",
            "predict": "" if c.predict_ms_per_1000 is None
            else f"{num(round(c.predict_ms_per_1000, 1))} ms",
            "weight": f"{c.ensemble_weight:.2f}" if c.ensemble_weight else "",
            "status": c.status,
            "message": c.message,
            "params": _params(c.params),
            "best": c == board.best,
            "frontier": id(c) in frontier,
        }
        for i, c in enumerate(ranked(board))
    ]
    direction = "higher is better" if board.greater_is_better else "lower is better"
    return {
        "rows": rows, "metric": board.metric, "direction": direction,
        "plot": _frontier_plot(page, board), "reason": board.reason,
        "ensemble": [(n, f"{w:.2f}") for n, w in sorted(board.ensemble, key=lambda m: -m[1])],
        "dropped": list(board.dropped_features), "facts": _facts(board),
        "valid": any(c.valid_score is not None for c in board.candidates),
    }  # fmt: skip


def ranked(board: Leaderboard) -> list[Candidate]:
    """Candidates best first by cross-validated score (validation score for old runs);
    unscored ones last."""

    def order(c: Candidate) -> tuple[bool, float]:
        score = c.cv_score if c.cv_score is not None else c.valid_score
        if score is None:
            return (True, 0.0)
        return (False, -score if board.greater_is_better else score)

    return sorted(board.candidates, key=order)


def label(c: Candidate) -> str:
    """A candidate's name; runs recorded before names were kept show family and trial."""
    return c.name or f"{c.learner} #{c.trial}"


def pm(std: float | None) -> str:
    return "" if std is None else f"± {num(std, 2)}"


def _facts(board: Leaderboard) -> list[tuple[str, str]]:
    chosen = "an ensemble" if board.final == "ensemble" else "a single model"
    fit = ("the fold models, bagged" if board.final_fit == "bagged"
           else "refit on train + validation")  # fmt: skip
    budget = "" if board.budget_s is None else f" of a {num(board.budget_s)} s budget"
    out = [("Chosen", f"{label(board.best)}: {chosen}, {fit}"),
           ("Search", f"{len(board.candidates)} candidates in {num(round(board.seconds, 1))} s"
            f"{budget}" + (", deterministic (trial counts, not wall time)"
                           if board.deterministic else ""))]  # fmt: skip
    if board.cv:
        out.append(("Validation", board.cv))
    if board.calibration:
        out.append(("Calibration", f"{board.calibration} (improved out-of-fold log loss)"))
    if board.threshold is not None:
        out.append(("Decision threshold", f"{num(board.threshold)} (chosen by {board.metric})"))
    return out


def _frontier_plot(page: Page, board: Leaderboard) -> Any:
    """Every completed candidate at its fit time (log) and CV score, one colour per family;
    the frontier's points joined; the winner starred."""
    done = [c for c in board.candidates if c.status == "ok" and c.cv_score is not None]
    if not done:
        return None
    traces = []
    for i, learner in enumerate(sorted({c.learner for c in done})):
        mine = [c for c in done if c.learner == learner]
        traces.append(trace(
            "scatter",
            x=[_seconds(c) for c in mine], y=[c.cv_score for c in mine], mode="markers",
            name=learner, marker={"color": PALETTE[i % len(PALETTE)], "size": 9},
            error_y={"type": "data", "array": [c.cv_std or 0 for c in mine],
                     "thickness": 1, "width": 0},
            hovertext=[_hover(c, board.metric) for c in mine], hoverinfo="text",
        ))  # fmt: skip
    front = board.frontier()
    traces.append(trace(
        "scatter",
        x=[_seconds(c) for c in front], y=[c.cv_score for c in front], mode="lines",
        name="frontier", line={"color": GREY, "dash": "dot", "shape": "hv"}, hoverinfo="skip",
    ))  # fmt: skip
    best = board.best
    if best.cv_score is not None:
        traces.append(trace(
            "scatter",
            x=[_seconds(best)], y=[best.cv_score], mode="markers", name=f"chosen: {label(best)}",
            marker={"symbol": "star", "size": 18, "color": ORANGE, "line": {"color": BLUE}},
            hovertext=[_hover(best, board.metric)], hoverinfo="text",
        ))  # fmt: skip
    fig = Figure(traces, layout=layout(
        f"Cross-validated {board.metric} against fit time (tracking learning time)",
        height=380, showlegend=True,
        xaxis={"title": {"text": "fit time, all folds (s, log scale)"}, "type": "log"},
        yaxis={"title": {"text": board.metric}},
        legend={"orientation": "h", "y": -0.2, "x": 0},
    ))  # fmt: skip
    return page.plot(fig)


def _seconds(c: Candidate) -> float:
    return max(c.fit_time_s, MIN_SECONDS)


def _hover(c: Candidate, metric: str) -> str:
    predict = ("" if c.predict_ms_per_1000 is None
               else f"<br>predict {num(c.predict_ms_per_1000)} ms / 1,000 rows")  # fmt: skip
    return (f"{label(c)} ({c.origin})<br>cv {metric} {num(c.cv_score)} {pm(c.cv_std)}"
            f"<br>fit {num(round(c.fit_time_s, 3))} s{predict}")


def _params(params: dict[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        shown = num(value) if isinstance(value, int | float) else str(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)
