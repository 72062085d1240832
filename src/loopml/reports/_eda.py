"""The profile report's table-wide sections: missingness patterns, correlation matrices,
trends over time, anomalous rows, duplicates, the quarantine and where the profile sampled."""

from __future__ import annotations

from typing import Any

from loopml.core.records import Matrix, Profile
from loopml.reports._figures import GREY, ORANGE, bars, heatmap, lines
from loopml.reports._page import Page, num, pct

MATRIX_TITLES = {
    "spearman": "Spearman rank correlation of numeric columns",
    "cramers_v": "Cramér's V of categorical columns (0: independent)",
    "correlation_ratio": "Correlation ratio: categorical (rows) explaining numeric",
}


def missing_section(page: Page, profile: Profile) -> dict[str, Any] | None:
    """The most common combinations of missing columns and the nullity correlation."""
    found = profile.missing
    if found is None:
        return None
    rows = profile.rows or 1
    combos = [
        {"columns": ", ".join(cols) if cols else "(none: complete rows)", "rows": num(n),
         "share": pct(n / rows), "width": len(cols)}
        for cols, n in found.combinations
    ]  # fmt: skip
    shown = [(cols, n) for cols, n in found.combinations if cols][:12]
    combo_plot = None
    if shown:
        labels = [" + ".join(cols) if len(cols) <= 3 else f"{cols[0]} + {len(cols) - 1} more"
                  for cols, _ in shown]  # fmt: skip
        hover = [f"missing together: {', '.join(cols)}<br>{n:,} rows ({n / rows:.1%})"
                 for cols, n in shown]  # fmt: skip
        unique = [f"{i + 1}. {label}" for i, label in enumerate(labels)]
        combo_plot = page.plot(bars(unique, [n for _, n in shown], horizontal=True,
                                    hover=hover, color=GREY, x_title="rows",
                                    title="Most common combinations of missing columns"))
    nullity_plot = None
    if found.nullity is not None:
        names, matrix = found.nullity
        text = [[f"{v:.2f}" for v in r] for r in matrix] if len(names) <= 16 else None
        nullity_plot = page.plot(heatmap(
            matrix, names, names, colorscale="RdBu", zmin=-1, zmax=1, text=text,
            title="Nullity correlation (1 = always missing together)"))
    return {"combinations": combos, "combo_plot": combo_plot, "nullity_plot": nullity_plot}


def matrix_plots(page: Page, profile: Profile) -> list[Any]:
    """Spearman, Cramér's V and the correlation ratio as heatmaps."""
    return [page.plot(_matrix_figure(m)) for m in profile.matrices]


def _matrix_figure(m: Matrix) -> Any:
    signed = m.method == "spearman"
    text = ([[f"{v:.2f}" for v in r] for r in m.values]
            if max(len(m.x), len(m.y)) <= 16 else None)  # fmt: skip
    return heatmap(m.values, m.x, m.y, colorscale="RdBu" if signed else "Blues",
                   zmin=-1 if signed else 0, zmax=1, text=text,
                   title=MATRIX_TITLES.get(m.method, m.method))  # fmt: skip


def trends_section(page: Page, profile: Profile, positive: str | None) -> dict[str, Any] | None:
    """Rows and the target per period, and each numeric column's mean per period (as its
    distance from the overall mean in standard deviations, so columns share one axis)."""
    t = profile.trends
    if t is None:
        return None
    out: dict[str, Any] = {"time_column": t.time_column, "period": t.period}
    out["rows_plot"] = page.plot(bars(t.labels, t.rows, title=f"Rows per {t.period} period",
                                      y_title="rows", xaxis={"type": "category", "nticks": 12}))
    out["target_plot"] = None
    if t.target is not None:
        if profile.task == "classification":
            name = f"share of {profile.target} = {positive}" if positive else "positive rate"
            fmt = ".0%"
        else:
            name, fmt = f"mean {profile.target}", ""
        out["target_plot"] = page.plot(lines(t.labels, {name: t.target}, y_title=name,
                                             y_format=fmt, title=f"{name} per period"))
    out["means_plot"] = None
    stats = {c.name: c.stats for c in profile.columns}
    series: dict[str, list[float | None]] = {}
    hover: dict[str, list[str]] = {}
    for name, means in t.means:
        mean, std = stats.get(name, {}).get("mean"), stats.get(name, {}).get("std")
        if mean is None or not std:
            continue
        series[name] = [None if v is None else round((v - mean) / std, 4) for v in means]
        hover[name] = [f"{name}<br>{label}: mean {num(v)}" for label, v in zip(t.labels, means)]
    if series:
        out["means_plot"] = page.plot(lines(
            t.labels, series, hover=hover, height=360, y_title="standard deviations",
            title="Mean of each numeric column per period, relative to its overall mean"))
    return out


def anomalies_section(profile: Profile) -> dict[str, Any] | None:
    a = profile.anomalies
    if a is None:
        return None
    return {
        "sampled": num(a.sampled_rows), "flagged": num(a.flagged),
        "share": pct(a.flagged / a.sampled_rows if a.sampled_rows else 0),
        "columns": ", ".join(a.columns), "header": a.top_columns,
        "rows": [(num(s, 3), row) for s, row in zip(a.top_scores, a.top_rows, strict=True)],
    }  # fmt: skip


def duplicates_section(profile: Profile) -> dict[str, Any] | None:
    d = profile.duplicates
    if d is None:
        return None
    return {"rows": d.rows, "groups": num(d.groups), "share": pct(d.rows / (profile.rows or 1)),
            "header": d.columns, "examples": [(num(n), row) for row, n in d.examples]}


def quarantine_section(page: Page, profile: Profile) -> dict[str, Any] | None:
    q = profile.quarantine
    if q is None:
        return None
    held = q.rows + profile.rows
    plot = None
    if q.by_reason:
        reasons = [r for r, _ in q.by_reason]
        plot = page.plot(bars(reasons, [n for _, n in q.by_reason], horizontal=True,
                              color=ORANGE, x_title="rows", title="Quarantined rows by reason"))
    return {
        "table": q.table if q.version is None else f"{q.table}@v{q.version}",
        "rows": num(q.rows), "share": pct(q.rows / held if held else 0),
        "reasons": [(r, num(n)) for r, n in q.by_reason], "plot": plot,
        "command": f"loopml quarantine show {profile.source}",
    }  # fmt: skip


def sampling_notes(profile: Profile) -> list[str]:
    """One sentence per section, saying whether it used every row or a sample of how many."""
    rows = num(profile.rows)
    sampled = {section for section, _ in profile.sampling}
    if any("missingness" in s for s in sampled):  # a table profiled part by part
        notes = [f"Column statistics and distributions: all {rows} rows."]
    else:
        notes = [f"Column statistics, missingness, duplicates and trends: all {rows} rows."]
    notes += [f"{section[:1].upper()}{section[1:]}: a random sample of {num(n)} rows."
              for section, n in profile.sampling]  # fmt: skip
    if not any("Pearson" in s for s in sampled) and profile.target is not None:
        notes.append(f"Relationships to the target and correlations: all {rows} rows.")
    if profile.anomalies is not None and "anomalies" not in sampled:
        notes.append(f"Anomalies: all {rows} rows.")
    return notes

