"""One positive class: explore, training, evaluation and serving choose the same one."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopml.core.contract import ColumnSpec, Contract
from loopml.core.records import ModelBundle, Reference
from loopml.evaluate import evaluate
from loopml.evaluate._metrics import positive_column
from loopml.explore import profile
from loopml.pipeline._run import _positive_label
from loopml.serve import predict_frame

CONTRACT = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))


def frame_for(labels: list, shares: list[float], seed: int = 0) -> pl.DataFrame:
    """200 rows whose target takes ``labels`` with ``shares``; ``x`` tells them apart."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(len(labels), size=200, p=shares)
    x = codes + rng.normal(0, 0.7, 200)
    return pl.DataFrame({"x": x, "y": pl.Series([labels[c] for c in codes])})


CASES = [
    # labels, shares, configured, the positive class every stage must name
    (["no", "yes"], [0.8, 0.2], None, "yes"),
    (["no", "yes"], [0.2, 0.8], None, "yes"),  # spelled "yes" wins over rarity
    ([0, 1], [0.3, 0.7], None, 1),
    ([False, True], [0.6, 0.4], None, True),
    (["churn", "stay"], [0.2, 0.8], None, "churn"),  # no telling name: the rarer class
    (["stay", "leave"], [0.9, 0.1], None, "leave"),
    (["no", "yes"], [0.8, 0.2], "NO", "no"),  # configured wins, spelled loosely
    ([0, 1], [0.5, 0.5], "0", 0),
    (["Adelie", "Chinstrap", "Gentoo"], [0.4, 0.2, 0.4], None, None),  # multiclass: none
]


@pytest.mark.parametrize(("labels", "shares", "configured", "expected"), CASES)
def test_every_stage_names_the_same_positive_class(labels, shares, configured, expected):
    """Explore's profile, training's choice, evaluation's scored class and the server's
    ``_score`` column all agree, with and without problem.positive_label."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    frame = frame_for(labels, shares)
    explored = profile(frame, source="s", target="y", task="classification",
                       positive_label=configured).positive_label
    trained = _positive_label(frame, "y", "classification", configured)
    assert explored == trained == expected
    assert type(explored) is type(expected) and type(trained) is type(expected)

    model = Pipeline([
        ("features", ColumnTransformer([("x", "passthrough", ["x"])])),
        ("model", LogisticRegression()),
    ]).fit(frame.select("x"), frame["y"].to_numpy())
    classes = tuple(model.classes_.tolist())
    bundle = ModelBundle(
        model=model, contract=CONTRACT, task="classification", target="y",
        feature_columns=("x",), classes=classes, positive_label=trained,
        reference=Reference(features=()),
    )
    proba = model.predict_proba(frame.select("x"))
    scores = predict_frame(bundle, frame.select("x"))["_score"].to_numpy()
    if expected is None:
        assert np.allclose(scores, proba.max(axis=1))
        return
    index = classes.index(expected)
    assert positive_column(model.classes_, trained) == index
    assert np.allclose(scores, proba[:, index])  # serve scores the same class
    roc = evaluate(model, frame, task="classification", target="y", metric="roc_auc",
                   positive_label=trained).metrics["roc_auc"]
    assert roc > 0.5  # the positive class's probability ranks the positive rows first
