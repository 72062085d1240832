from __future__ import annotations

from tests.unit.serve.serve_models import FEATURES, record


def _problems(client, body) -> list[dict]:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert "nothing was scored" in response.json()["error"]
    return response.json()["detail"]


def test_missing_field_names_record_and_field(classifier, client_for):
    """A record without a feature gets 422 naming the record, the field and the fix."""
    missing = record()
    del missing["distance"]
    problems = _problems(client_for(classifier), {"records": [record(), missing]})
    assert problems == [
        {
            "record": 1,
            "field": "distance",
            "message": "Field required. Send null if the value is unknown.",
            "expected": "float",
        }
    ]


def test_wrong_type_names_the_value_sent(classifier, client_for):
    """Text where a number belongs gets 422 saying what was expected and what was sent."""
    (problem,) = _problems(client_for(classifier), {"records": [record(distance="abc")]})
    assert problem["record"] == 0 and problem["field"] == "distance"
    assert problem["expected"] == "float"
    assert "valid number" in problem["message"] and "Received 'abc'" in problem["message"]


def test_one_message_per_bad_field(classifier, client_for):
    """Every wrong field of every record is reported, each on its own."""
    body = {"records": [record(dep_hour=1.5, weekend="maybe"), record(scheduled="soon")]}
    problems = _problems(client_for(classifier), body)
    assert [(p["record"], p["field"]) for p in problems] == [
        (0, "dep_hour"),
        (0, "weekend"),
        (1, "scheduled"),
    ]
    assert [p["expected"] for p in problems] == ["integer", "boolean", "datetime"]


def test_values_a_frame_cannot_hold_are_rejected(classifier, client_for):
    """Integers beyond 64 bits and non-finite floats get 422 instead of a server error."""
    client = client_for(classifier)
    body = b'{"records": [{"distance": NaN, "dep_hour": 100000000000000000000000, "carrier": "AA",'
    body += b' "origin": "JFK", "weekend": true, "scheduled": null, "day": null}]}'
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert [p["field"] for p in problems] == ["distance", "dep_hour"]
    assert "finite" in problems[0]["message"] and "64-bit" in problems[1]["message"]


def test_empty_records_list_is_rejected(classifier, client_for):
    """An empty records list gets 422 asking for at least one record."""
    problems = _problems(client_for(classifier), {"records": []})
    assert problems == [
        {"record": None, "field": "records", "message": "Send at least one record."}
    ]


def test_too_many_records_are_rejected(classifier, client_for):
    """More records than max_records gets 422 naming the limit."""
    problems = _problems(client_for(classifier, max_records=2), {"records": [record()] * 3})
    assert problems[0]["field"] == "records" and "at most 2 records" in problems[0]["message"]


def test_malformed_bodies_are_explained(classifier, client_for):
    """A body without records, a record that is not an object and broken JSON get 422."""
    client = client_for(classifier)
    assert "records" in _problems(client, {"rows": [record()]})[0]["message"]
    (not_object,) = _problems(client, {"records": [record(), 5]})
    assert not_object["record"] == 1 and "JSON object" in not_object["message"]
    broken = client.post(
        "/predict", content=b'{"records": [', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"][0]["message"]


def test_openapi_documents_the_contract_fields(classifier, client_for):
    """/openapi.json holds the generated record schema: every feature, required, typed,
    categories listed, no target."""
    spec = client_for(classifier).get("/openapi.json").json()
    schema = spec["components"]["schemas"]["PredictionRecord"]
    assert list(schema["properties"]) == list(FEATURES)
    assert schema["required"] == list(FEATURES)
    types = {
        name: {option.get("type") for option in prop["anyOf"]}
        | {o.get("format") for o in prop["anyOf"]}
        for name, prop in schema["properties"].items()
    }
    assert types["distance"] == {"number", "null", None}
    assert types["dep_hour"] == {"integer", "null", None}
    assert types["weekend"] == {"boolean", "null", None}
    assert types["scheduled"] == {"string", "date-time", "null", None}
    assert types["day"] == {"string", "date", "null", None}
    assert "'AA', 'B6', 'DL', 'UA'" in schema["properties"]["carrier"]["description"]
    assert "Miles flown" in schema["properties"]["distance"]["description"]
    request = spec["components"]["schemas"]["PredictRequest"]
    assert request["properties"]["records"]["minItems"] == 1
    operation = spec["paths"]["/predict"]["post"]
    assert "ValidationProblems" in str(operation["responses"]["422"])


def test_health_reports_model_and_log(classifier, client_for):
    """/health names the model, version and task and counts logged rows."""
    health = client_for(classifier, version=4).get("/health").json()
    assert health["status"] == "ok"
    assert (health["model"], health["version"], health["task"]) == ("flights", 4, "classification")
    assert health["uptime_s"] >= 0
    assert health["rows_logged"] == health["rows_pending"] == 0
    assert health["log_table"] is None
