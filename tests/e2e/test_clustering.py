"""Clustering end to end through the command line: penguins without their species."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from loopml.pipeline import Project

pytestmark = pytest.mark.slow


def test_clustering_penguins_end_to_end(cli, penguins_csv: Path, tmp_path: Path) -> None:
    """init with the species left out makes a clustering project; run registers a model
    whose clusters find the Gentoo penguins, predict gives every row a cluster id, and the
    model report shows each cluster's size and what sets it apart."""
    code, out = cli("init", "penguins.csv", "--exclude", "species")
    assert code == 0 and "task clustering" in out, out

    code, out = cli("run", "--time-budget", "5")
    assert code == 0, out
    assert "344 rows in, 344 accepted" in out and "champion" in out
    model_html = next(Path(p) for p in re.findall(r"(/\S+\.html)", out)
                      if p.endswith("model.html"))

    code, out = cli("models")
    assert code == 0 and "champion" in out

    code, out = cli("predict", "penguins.csv", "-o", "scored.parquet")
    assert code == 0, out
    scored = pl.read_parquet(tmp_path / "scored.parquet")
    assert scored.height == 344 and scored["_prediction"].dtype == pl.Int64
    assert scored["_prediction"].null_count() == 0
    gentoo = scored.filter(pl.col("species") == "Gentoo")["_prediction"].mode()[0]
    theirs = scored.filter(pl.col("_prediction") == gentoo)
    assert (theirs["species"] == "Gentoo").mean() > 0.9  # the cluster is Gentoo ...
    assert theirs.height > 0.9 * 124  # ... and holds nearly all of them

    project = Project(tmp_path)
    with project:
        version, bundle = project.load()
    assert version.metric == "silhouette" and bundle.task == "clustering"
    profiles = bundle.evaluation.cluster_profiles
    assert sum(p.rows for p in profiles) == bundle.evaluation.rows
    html = model_html.read_text()
    section = html[html.index('<section id="clusters">'):]
    section = section[:section.index("</section>")]
    sizes = re.findall(r'<tr><td>(-?\d+)</td><td class="n">([\d,]+)</td>', section)
    assert len(sizes) == len(profiles) >= 2
    assert sum(int(n.replace(",", "")) for _, n in sizes) == bundle.evaluation.rows
    assert "overall (" in section and "flipper_length_mm" in section
