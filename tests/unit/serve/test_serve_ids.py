"""The id column travels through /predict and the log; unseen categories are warned about."""

from __future__ import annotations

import polars as pl

from loopml.serve import PredictionLog
from tests.unit.serve.serve_models import record


def test_ids_are_answered_and_logged_as_text(classifier, client_for, lake):
    """Records may carry the id column (not a feature, optional): the answer lists the ids and
    the log stores them as _id text."""
    log = PredictionLog(lake, "flights", batch_rows=1000, flush_s=60)
    client = client_for(classifier, log=log, id_column="flight_id")
    records = [record(flight_id="UA-1"), record(), record(flight_id=1234)]
    body = client.post("/predict", json={"records": records}).json()
    assert body["ids"] == ["UA-1", None, "1234"]
    log.close()
    rows = lake.read("predictions/flights").sort("_record")
    assert rows.schema["_id"] == pl.String
    assert rows["_id"].to_list() == ["UA-1", None, "1234"]
    assert "flight_id" not in rows.columns


def test_ids_must_be_scalars(classifier, client_for):
    """An id that is an object or a list gets a 422 naming record and field."""
    client = client_for(classifier, id_column="flight_id")
    response = client.post("/predict", json={"records": [record(flight_id={"a": 1})]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["record"] == 0
    assert response.json()["detail"][0]["field"] == "flight_id"


def test_without_id_column_no_ids(classifier, client_for):
    """Without an id column the answer has no ids and the id field is ignored."""
    body = client_for(classifier).post("/predict", json={"records": [record(flight_id="x")]}).json()
    assert "ids" not in body


def test_unseen_categories_are_scored_with_a_warning(classifier, client_for):
    """A category the contract does not list is still scored, and the answer names the
    record, field and value."""
    client = client_for(classifier)
    body = client.post("/predict", json={"records": [record(), record(carrier="ZZ")]}).json()
    assert len(body["predictions"]) == 2
    (warning,) = body["warnings"]
    assert (warning["record"], warning["field"], warning["value"]) == (1, "carrier", "ZZ")
    clean = client.post("/predict", json={"records": [record(carrier=None)]}).json()
    assert clean["warnings"] == []


def test_unseen_categories_of_few_and_many_rows_are_found_alike(classifier):
    """The few-rows check (Python, against a set) and the many-rows one (expressions) name
    the same records, fields and values; nulls are never unseen."""
    import numpy as np

    from loopml.serve._served import SMALL_FRAME, Served

    served = Served.build(classifier, 1, max_records=10_000)
    rng = np.random.default_rng(5)
    carriers = rng.choice(["AA", "DL", "ZZ", "aa", "", None], 3 * SMALL_FRAME).tolist()
    features = pl.DataFrame({"carrier": carriers}, schema={"carrier": pl.String})
    many = served.unseen(features)
    few = [w for start in range(0, features.height, SMALL_FRAME)
           for w in ({**x, "record": x["record"] + start}
                     for x in served.unseen(features.slice(start, SMALL_FRAME)))]
    assert few == many
    assert {w["value"] for w in many} == {"ZZ", "aa", ""}
