"""The model report's cluster section."""

from __future__ import annotations

import re
from dataclasses import replace

from loopml.core.records import Evaluation
from loopml.evaluate._clusters import cluster_profiles
from loopml.reports import render
from tests.conftest import penguins_frame


def test_cluster_section_lists_sizes_and_traits_and_plots_their_effects(
    clustering: Evaluation,
) -> None:
    """Penguin species as clusters: one row per cluster with its size and share, traits in
    words, and a heatmap of the effects; a clustering without profiles has no section."""
    frame = penguins_frame()
    profiles = cluster_profiles(frame, frame["species"].to_numpy(),
                                columns=["island", "flipper_length_mm", "bill_depth_mm"])
    evaluation = replace(clustering, cluster_profiles=profiles)
    html = render(evaluation)
    section = html[html.index('<section id="clusters">'):]
    section = section[:section.index("</section>")]
    assert '<a href="#clusters">Clusters</a>' in html
    rows = re.findall(r'<tr><td>(\w+)</td><td class="n">([\d,]+)</td><td class="n">([\d.]+%)',
                      section)
    assert rows == [("Adelie", "152", "44.2%"), ("Chinstrap", "68", "19.8%"),
                    ("Gentoo", "124", "36.0%")]
    assert "island = Biscoe: 100.0% vs" in section and "flipper_length_mm: mean 217.2" in section
    assert section.count("data-figure") == 1
    assert html.count("data-figure") == render(clustering).count("data-figure") + 1
    assert 'id="clusters"' not in render(clustering)
