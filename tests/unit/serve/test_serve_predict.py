from __future__ import annotations

import dataclasses
import re

import numpy as np
import polars as pl
import pytest

from loopml.core.errors import SchemaError, ServeError
from loopml.serve import create_app, predict_frame
from tests.unit.serve.serve_models import FEATURES, bundle, flights, record


def test_classification_returns_labels_probabilities_and_classes(classifier, client_for):
    """A classifier answers with labels, one probability per class, and the class list."""
    client = client_for(classifier, version=7)
    response = client.post("/predict", json={"records": [record(dep_hour=6), record(dep_hour=22)]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "flights" and body["version"] == 7
    assert body["classes"] == ["late", "on_time"]
    assert body["predictions"] == ["on_time", "late"]
    assert len(body["probabilities"]) == 2
    assert all(len(p) == 2 and abs(sum(p) - 1) < 1e-9 for p in body["probabilities"])
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert response.headers["X-Request-ID"] == body["request_id"]


def test_served_predictions_equal_batch_scoring(classifier, client_for):
    """The service and predict_frame give the same labels and probabilities for the same rows."""
    rows = flights(5, seed=3)
    records = [
        {**r, "scheduled": r["scheduled"].isoformat(), "day": r["day"].isoformat()}
        for r in rows.select(FEATURES).to_dicts()
    ]
    body = client_for(classifier).post("/predict", json={"records": records}).json()
    scored = predict_frame(classifier, rows)
    assert body["predictions"] == scored["_prediction"].to_list()
    late = [p[body["classes"].index("late")] for p in body["probabilities"]]
    assert np.allclose(late, scored["_score"].to_numpy())


def test_regression_returns_numbers_without_probabilities(regressor, client_for):
    """A regressor answers with plain floats and null probabilities and classes."""
    body = (
        client_for(regressor)
        .post("/predict", json={"records": [record(), record(dep_hour=6)]})
        .json()
    )
    assert all(type(p) is float for p in body["predictions"])
    assert body["predictions"][0] > body["predictions"][1]  # later departures are later
    assert body["probabilities"] is None and body["classes"] is None


def test_clustering_returns_cluster_ids(clusterer, client_for):
    """A clustering model answers with integer cluster ids."""
    body = client_for(clusterer).post("/predict", json={"records": [record()] * 3}).json()
    assert all(type(p) is int and 0 <= p < 3 for p in body["predictions"])
    assert body["probabilities"] is None


def test_null_values_are_scored(classifier, client_for):
    """Every feature may be null: the model imputes it."""
    empty = {name: None for name in FEATURES}
    response = client_for(classifier).post("/predict", json={"records": [empty]})
    assert response.status_code == 200
    assert response.json()["predictions"][0] in ("late", "on_time")


def test_extra_fields_and_the_target_are_ignored(classifier, client_for):
    """Keys that are not features, such as the target, do not change the answer."""
    client = client_for(classifier)
    plain = client.post("/predict", json={"records": [record()]}).json()
    extra = client.post("/predict", json={"records": [record(late="late", note="x")]}).json()
    assert extra["probabilities"] == plain["probabilities"]


def test_datetimes_are_read_as_utc(classifier, client_for):
    """An offset is converted to UTC and a time without offset counts as UTC."""
    client = client_for(classifier)
    answers = [
        client.post("/predict", json={"records": [record(scheduled=when)]}).json()["probabilities"]
        for when in ("2024-02-01T18:00:00Z", "2024-02-01T20:00:00+02:00", "2024-02-01T18:00:00")
    ]
    assert answers[0] == answers[1] == answers[2]
    other = client.post("/predict", json={"records": [record(scheduled="2024-02-01T20:00:00Z")]})
    assert other.json()["probabilities"] != answers[0]


def test_numbers_for_text_features_are_accepted(classifier, client_for):
    """A number sent for a text feature is read as its text instead of being rejected."""
    response = client_for(classifier).post("/predict", json={"records": [record(origin=123)]})
    assert response.status_code == 200


def test_predict_frame_scores_the_positive_label(classifier):
    """Binary _score is the probability of positive_label, else of the second class."""
    rows = flights(20, seed=1)
    scored = predict_frame(classifier, rows)
    proba = classifier.model.predict_proba(rows.select(FEATURES))
    assert scored["_prediction"].to_list() == list(classifier.model.predict(rows.select(FEATURES)))
    assert np.allclose(scored["_score"].to_numpy(), proba[:, 0])  # "late" is the first class
    second = predict_frame(dataclasses.replace(classifier, positive_label=None), rows)
    assert np.allclose(second["_score"].to_numpy(), proba[:, 1])


@pytest.mark.parametrize("learner", ["lightgbm", "sgd"])
def test_labels_match_the_models_own_predict(learner):
    """Labels equal the estimator's predict, whether taken from the probabilities (LightGBM)
    or asked from predict (other classifiers)."""
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import SGDClassifier

    estimator = {
        "lightgbm": LGBMClassifier(n_estimators=20, verbose=-1, random_state=0),
        "sgd": SGDClassifier(loss="log_loss", random_state=0),
    }[learner]
    model = bundle("classification", estimator=estimator)
    rows = flights(200, seed=5)
    scored = predict_frame(model, rows)
    assert scored["_prediction"].to_list() == list(model.model.predict(rows.select(FEATURES)))


def test_an_ensemble_is_scored_once_and_keeps_its_threshold():
    """The search's model gives its labels from the same probabilities (its decision threshold,
    not the top probability), so each of its members scores the rows once."""
    from loopml.train._final import SearchedModel

    base = bundle("classification")
    calls = []

    class Counted:  # a member that counts how often it is asked
        classes_ = base.model.classes_

        def predict_proba(self, X):
            calls.append(len(X))
            return base.model.predict_proba(X)

    classes = list(base.model.classes_)
    model = SearchedModel([(Counted(), 1.0)], task="classification", classes=classes,
                          columns=FEATURES, threshold=0.2, positive=0)
    rows = flights(300, seed=5)
    scored = predict_frame(dataclasses.replace(base, model=model), rows)
    assert calls == [300]
    expected = model.predict(rows.select(FEATURES))
    assert scored["_prediction"].to_list() == list(expected)
    argmax = np.asarray(classes)[base.model.predict_proba(rows.select(FEATURES)).argmax(axis=1)]
    assert (expected != argmax).any()  # the threshold, not the argmax, decided some rows


def test_predict_frame_multiclass_scores_the_top_probability():
    """Multiclass _score is the probability of the predicted class."""
    data = flights(300).with_columns(
        late=pl.when(pl.col("dep_hour") < 10).then(pl.lit("early")).otherwise(pl.col("late"))
    )
    model = bundle("classification", data=data, positive_label=None)
    scored = predict_frame(model, data.head(30))
    proba = model.model.predict_proba(data.head(30).select(FEATURES))
    assert np.allclose(scored["_score"].to_numpy(), proba.max(axis=1))
    assert set(scored["_prediction"].to_list()) <= {"early", "late", "on_time"}


def test_predict_frame_regression_and_clustering_types(regressor, clusterer):
    """Regression gives Float64 predictions (its _score is the value), clustering Int64 ids
    with a null _score."""
    rows = flights(10, seed=2)
    values = predict_frame(regressor, rows)
    clusters = predict_frame(clusterer, rows)
    assert values.schema["_prediction"] == pl.Float64
    assert clusters.schema["_prediction"] == pl.Int64
    assert clusters["_score"].null_count() == 10
    assert values["_score"].to_list() == values["_prediction"].to_list()
    assert np.allclose(
        values["_prediction"].to_numpy(), regressor.model.predict(rows.select(FEATURES))
    )


def test_predict_frame_converts_text_columns_and_keeps_others(classifier):
    """Columns read as text (e.g. from CSV) are converted to the contract types; other
    columns are kept."""
    rows = flights(8, seed=4)
    as_text = rows.with_columns(pl.col(FEATURES).cast(pl.String)).with_columns(
        pl.col("scheduled").str.replace(r"\+00:00$", "").alias("scheduled"), id=pl.int_range(8)
    )
    scored = predict_frame(classifier, as_text)
    expected = predict_frame(classifier, rows)
    assert scored["id"].to_list() == list(range(8))
    assert scored.select(FEATURES).schema == expected.select(FEATURES).schema
    assert np.allclose(scored["_score"].to_numpy(), expected["_score"].to_numpy())


def test_predict_frame_names_missing_columns(classifier):
    """A frame without a feature column raises SchemaError naming it."""
    with pytest.raises(SchemaError, match="'carrier'"):
        predict_frame(classifier, flights(3).drop("carrier"))


def test_predict_frame_names_values_that_do_not_convert(classifier):
    """A value that is not of the contract type raises SchemaError with the column and value."""
    rows = flights(3).with_columns(pl.Series("distance", ["12.5", "abc", ""]))
    with pytest.raises(SchemaError) as info:
        predict_frame(classifier, rows)
    assert "'distance' should be float" in info.value.message and "'abc'" in info.value.message
    assert info.value.hint


def test_predict_frame_of_no_rows(classifier):
    """An empty frame scores to an empty frame with the output columns."""
    scored = predict_frame(classifier, flights(3).head(0))
    assert scored.height == 0 and {"_prediction", "_score"} <= set(scored.columns)


def test_positive_label_must_be_a_class(classifier):
    """A positive label the model does not predict is a ServeError when the app is built."""
    with pytest.raises(ServeError, match="'delayed'"):
        create_app(
            dataclasses.replace(classifier, positive_label="delayed"), model_name="m", version=1
        )


def test_unknown_task_is_refused(regressor):
    """A bundle with a task serving does not know is a ServeError."""
    with pytest.raises(ServeError, match="ranking"):
        create_app(dataclasses.replace(regressor, task="ranking"), model_name="m", version=1)
