"""How a fitted ``loopml.fit`` model shows itself: a summary and the leaderboard, as plain text
(``repr``) and as HTML tables (Jupyter's ``_repr_html_``)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.core.records import Candidate, Leaderboard

SHOWN_CANDIDATES = 15  # leaderboard rows in the HTML view; the text view shows 5
COLUMNS = ("model", "origin", "CV score", "± spread", "fit s", "predict ms/1k", "weight",
           "status")


def summary_rows(model: Any) -> list[tuple[str, str]]:
    """(label, text) rows: task and why, target, classes, winner, scores, rows, time."""
    rows = [("task", model.task_reason_), ("target", repr(model.target_))]
    if model.task_ == "classification":
        classes = ", ".join(repr(c) for c in model.classes_.tolist()[:10])
        more = ", ..." if len(model.classes_) > 10 else ""
        rows.append(("classes", f"{classes}{more}"))
        if model.positive_label_ is not None:
            rows.append(("positive class", repr(model.positive_label_)))
    board: Leaderboard | None = getattr(model, "leaderboard_", None)
    if board is not None:
        best = board.best
        rows.append(("model", _name(best) + (f" ({board.final}, {board.final_fit})"
                                             if board.final != "single" else "")))
        cv = "—" if best.cv_score is None else f"{best.cv_score:.4f}"
        if best.cv_std is not None:
            cv += f" ± {best.cv_std:.4f}"
        rows.append((f"CV {board.metric}", cv))
        if board.reason:
            rows.append(("why", board.reason))
    evaluation = model.evaluation_
    if evaluation is not None:
        others = ", ".join(f"{k} {v:.4f}" for k, v in evaluation.metrics.items()
                           if k != evaluation.metric and v == v)[:200]
        rows.append((f"test {evaluation.metric}",
                     f"{evaluation.score:.4f} on {evaluation.rows:,} held-out rows"
                     + (f" ({others})" if others else "")))
    sizes = model.split_sizes_
    if sizes:
        data = " / ".join(f"{sizes[k]:,} {k}" for k in ("train", "valid", "test") if k in sizes)
        if model.rows_dropped_:
            data += f"; {model.rows_dropped_:,} rows without a target left out"
        rows.append(("rows", data))
    rows.append(("features", f"{model.n_features_in_}: " + ", ".join(
        model.feature_columns_[:8]) + (", ..." if model.n_features_in_ > 8 else "")))
    if board is not None:
        spent = model.fit_seconds_ if model.fit_seconds_ is not None else board.seconds
        tried = sum(1 for c in board.candidates if c.learner != "ensemble")
        rows.append(("search", f"{tried} candidates in {spent:.1f} s (budget "
                               f"{model.time_budget} s)"))
    return rows


def candidate_rows(board: Leaderboard, limit: int) -> list[tuple[str, ...]]:
    """The leaderboard's first ``limit`` candidates as text cells in ``COLUMNS`` order."""
    out = []
    for c in board.candidates[:limit]:
        out.append((
            _name(c) + (" ★" if c == board.best else ""),
            c.origin,
            _num(c.cv_score),
            _num(c.cv_std),
            f"{c.fit_time_s:.2f}",
            _num(c.predict_ms_per_1000, 1),
            f"{c.ensemble_weight:.2f}" if c.ensemble_weight else "",
            c.status if not c.message else f"{c.status}: {c.message[:60]}",
        ))
    return out


def text_view(model: Any) -> str:
    """The summary, then the first five candidates, as plain text."""
    lines = [f"{type(model).__name__}"]
    rows = model.summary()
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label.ljust(width)}  {text}" for label, text in rows]
    board = getattr(model, "leaderboard_", None)
    if board is not None and board.candidates:
        cells = [COLUMNS, *candidate_rows(board, 5)]
        widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
        lines.append(f"  leaderboard ({len(board.candidates)} candidates, metric {board.metric}; "
                     "model.leaderboard.to_frame() for all):")
        lines += ["    " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                  for r in cells]
    return "\n".join(lines)


def html_view(model: Any) -> str:
    """The summary and the leaderboard as two HTML tables, for Jupyter."""
    style = ("border-collapse:collapse;margin:4px 0;font-size:13px",
             "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd")
    head = f"<strong>{escape(type(model).__name__)}</strong>"
    summary = "".join(
        f"<tr><th style='{style[1]}'>{escape(label)}</th><td style='{style[1]}'>"
        f"{escape(text)}</td></tr>" for label, text in model.summary()
    )
    parts = [f"<div class='loopml-model'>{head}<table style='{style[0]}'>{summary}</table>"]
    board = getattr(model, "leaderboard_", None)
    if board is not None and board.candidates:
        shown = min(len(board.candidates), SHOWN_CANDIDATES)
        header = "".join(f"<th style='{style[1]}'>{escape(c)}</th>" for c in COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td style='{style[1]}'>{escape(v)}</td>" for v in row) + "</tr>"
            for row in candidate_rows(board, SHOWN_CANDIDATES)
        )
        parts.append(
            f"<details open><summary>Leaderboard: {shown} of {len(board.candidates)} "
            f"candidates, {escape(board.metric)} ({'higher' if board.greater_is_better else 'lower'}"
            f" is better)</summary><table class='loopml-leaderboard' style='{style[0]}'>"
            f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _name(c: Candidate) -> str:
    return c.name or f"{c.learner} #{c.trial}"


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"
