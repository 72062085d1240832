"""Ground truth back: labels by request id and record or by id, upserted, bad rows explained."""

from __future__ import annotations

import polars as pl
import pytest

from loopml.core.errors import FeedbackError
from loopml.serve import PredictionLog, take_feedback
from tests.unit.serve.serve_models import record

FEEDBACK = "feedback/flights"


def _log(lake, ids=None, predictions=("late", "on_time", "late"), request_id="r1"):
    n = len(predictions)
    rows = PredictionLog.rows(
        pl.DataFrame({"distance": [1.0] * n}),
        [pl.Series("_prediction", list(predictions)), pl.Series("_score", [0.5] * n)],
        request_id=request_id, version=1, ids=ids,
    )
    lake.append("predictions/flights", rows)


def _take(lake, labels, *, task="classification", classes=("late", "on_time"), id_column=None):
    return take_feedback(lake, "flights", pl.DataFrame(labels), task=task, classes=classes,
                         id_column=id_column)


def test_labels_by_request_id_are_upserted_with_the_layout(lake):
    """Known keys are upserted with _request_id, _record, _id, _label typed like _prediction,
    and _label_received_at."""
    _log(lake)
    result = _take(lake, {"request_id": ["r1", "r1"], "record": [0, 2], "label": ["late", "LATE"]})
    assert (result.accepted, result.unknown, result.invalid) == (2, 0, 0)
    table = lake.read(FEEDBACK).sort("_record")
    assert table.columns == ["_request_id", "_record", "_id", "_label", "_label_received_at"]
    assert table.schema["_label"] == lake.read("predictions/flights").schema["_prediction"]
    assert table.schema["_label_received_at"] == pl.Datetime("us", "UTC")
    assert table["_label"].to_list() == ["late", "late"]


def test_same_labels_twice_change_nothing_and_corrections_replace(lake):
    """Sending a label again keeps one row; a corrected label replaces the old one."""
    _log(lake)
    labels = {"request_id": ["r1"], "record": [1], "label": ["late"]}
    _take(lake, labels)
    _take(lake, labels)
    assert lake.read(FEEDBACK)["_label"].to_list() == ["late"]
    _take(lake, {**labels, "label": ["on_time"]})
    assert lake.read(FEEDBACK)["_label"].to_list() == ["on_time"]


def test_unknown_and_invalid_rows_are_counted_and_the_rest_kept(lake):
    """Unknown keys are counted, labels outside the classes rejected with a reason, and every
    other row of the batch is upserted."""
    _log(lake)
    result = _take(lake, {
        "request_id": ["r1", "nope", "r1", "r1"], "record": [0, 0, 1, 7],
        "label": ["late", "late", "maybe", "late"],
    })
    assert (result.accepted, result.unknown, result.invalid) == (1, 2, 1)
    assert any("'maybe'" in p and "classes" in p for p in result.problems)
    assert any("'nope'" in p for p in result.problems)
    assert lake.read(FEEDBACK)["_record"].to_list() == [0]


def test_labels_by_id_reach_every_prediction_with_that_id(lake):
    """A label sent by id fills every logged prediction with that id."""
    _log(lake, ids=["A", "B", "A"])
    _log(lake, ids=["A"], predictions=("on_time",), request_id="r2")
    result = _take(lake, {"id": ["A", "Z"], "label": ["on_time", "late"]}, id_column="flight")
    assert (result.accepted, result.unknown, result.invalid) == (3, 1, 0)
    table = lake.read(FEEDBACK).sort("_request_id", "_record")
    assert table.select("_request_id", "_record", "_id").rows() == [
        ("r1", 0, "A"), ("r1", 2, "A"), ("r2", 0, "A")
    ]


def test_labels_by_id_need_an_id_column(lake):
    """Without problem.id_column a label by id is rejected, with the setting to use."""
    _log(lake, ids=["A", "B", "A"])
    result = _take(lake, {"id": ["A"], "label": ["late"]})
    assert result.invalid == 1 and "id_column" in result.problems[0]


def test_regression_labels_must_be_numbers(lake):
    """A regression label that is not a finite number is rejected; numbers are Float64."""
    rows = PredictionLog.rows(pl.DataFrame({"distance": [1.0, 2.0]}),
                              [pl.Series("_prediction", [3.0, 4.0]), pl.Series("_score", [3.0, 4.0])],
                              request_id="r1", version=1)
    lake.append("predictions/flights", rows)
    result = _take(lake, {"request_id": ["r1", "r1"], "record": [0, 1], "label": ["12.5", "soon"]},
                   task="regression", classes=None)
    assert (result.accepted, result.invalid) == (1, 1)
    assert "not a number" in result.problems[0]
    assert lake.read(FEEDBACK)["_label"].to_list() == [12.5]


def test_feedback_without_keys_or_label_is_a_feedback_error(lake):
    """A batch with no label column or no key columns raises FeedbackError with a hint."""
    with pytest.raises(FeedbackError) as err:
        _take(lake, {"request_id": ["r1"], "record": [0]})
    assert err.value.hint
    with pytest.raises(FeedbackError):
        _take(lake, {"label": ["late"]})


def test_post_feedback_answers_counts(classifier, client_for, lake):
    """POST /feedback upserts labels for served predictions and answers the counts."""
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    client = client_for(classifier, log=log)
    served = client.post("/predict", json={"records": [record(), record(dep_hour=6)]}).json()
    rid = served["request_id"]
    answer = client.post("/feedback", json={"labels": [
        {"request_id": rid, "record": 0, "label": "late"},
        {"request_id": rid, "record": 1, "label": "sometimes"},
        {"request_id": "unknown", "record": 0, "label": "late"},
    ]})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["unknown"], body["invalid"]) == (1, 1, 1)
    assert len(body["problems"]) == 2
    assert lake.read(FEEDBACK)["_label"].to_list() == ["late"]
    bad = client.post("/feedback", json={"rows": []})
    assert bad.status_code == 422 and "labels" in bad.json()["error"]


def test_any_feedback_body_gets_an_answer_not_a_traceback(lake):
    """Whatever JSON is posted, parsing and taking it raises only FeedbackError, and each
    label row is counted once: accepted, unknown or invalid."""
    import json

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from loopml.serve._http import labels_of

    _log(lake)
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
    item = st.fixed_dictionaries(
        {}, optional={"request_id": scalars, "record": scalars, "id": scalars, "label": scalars}
    )
    bodies = st.fixed_dictionaries({"labels": st.lists(item | scalars, max_size=4)}) | scalars

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(bodies)
    def check(body):
        try:
            rows = labels_of(json.dumps(body).encode())
            result = take_feedback(lake, "flights", pl.DataFrame(rows, infer_schema_length=None),
                                   task="classification", classes=("late", "on_time"),
                                   id_column="flight")
        except FeedbackError:
            return
        assert result.accepted + result.unknown + result.invalid == len(rows)  # each row counted once

    check()
