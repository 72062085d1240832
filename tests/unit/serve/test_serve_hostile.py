"""Hostile request bodies: each is refused with a 4xx that says what was wrong (the record
and the field where there is one) or, where it is a valid request after all, answered; none
is a server error, and the server still answers a good request after each."""

from __future__ import annotations

import json

import pytest

from tests.unit.serve.serve_models import record

JSON = {"Content-Type": "application/json"}


def _records(*records: dict) -> bytes:
    return json.dumps({"records": list(records)}).encode()


def _raw(field: str, literal: bytes, *, at: int = 0, records: int = 1) -> bytes:
    """``records`` good records with ``literal`` (raw JSON text) as ``field`` of record ``at``."""
    rows = [record() for _ in range(records)]
    rows[at][field] = "\u0000placeholder"
    return _records(*rows).replace(b'"\\u0000placeholder"', literal)


def _nested(depth: int) -> bytes:
    return b'{"records": [' + b'{"distance": ' * depth + b"1" + b"}" * depth + b"]}"


HOSTILE = {
    "nested 100,000 deep": (_nested(100_000), JSON, None),
    "nested array as a value": (_records(record(distance=[[[[1.0]]]])), JSON, (0, "distance")),
    "object as a value": (_records(record(carrier={"a": {"b": 1}})), JSON, (0, "carrier")),
    "huge integer": (_records(record(dep_hour=10**400)), JSON, (0, "dep_hour")),
    "huge float literal": (_raw("distance", b"1e400"), JSON, (0, "distance")),
    "Infinity": (_raw("distance", b"Infinity"), JSON, (0, "distance")),
    "-Infinity": (_raw("distance", b"-Infinity"), JSON, (0, "distance")),
    "NaN in the second record": (_raw("distance", b"NaN", at=1, records=2), JSON,
                                 (1, "distance")),
    "a datetime before year 1 in UTC": (_raw("scheduled", b'"0001-01-01T00:00:00+00:01"'),
                                        JSON, (0, "scheduled")),
    "a datetime past year 9999 in UTC": (_raw("scheduled", b'"9999-12-31T23:59:59-01:00"'),
                                         JSON, (0, "scheduled")),
    "invalid UTF-8": (_raw("carrier", b'"A\xff\xfe"'), JSON, None),
    "invalid UTF-8 in a key": (b'{"records": [{"\xc3\x28": 1}]}', JSON, None),
    "10 MB string": (_records(record(carrier="A" * 10_000_000)), JSON, "answered"),
    "8 MB string in a category": (_records(record(origin="J" * 8_000_000)), JSON, "answered"),
    "100,000 records": (_records(*[record()] * 100_000), JSON, ("records",)),
    "text/plain": (_records(record()), {"Content-Type": "text/plain"}, None),
    "JSON with a charset": (_records(record()), {"Content-Type": "application/json; charset=utf-8"},
                            "answered"),
    "form data": (b"records=1&distance=2",
                  {"Content-Type": "application/x-www-form-urlencoded"}, None),
    "no content type": (_records(record()), {}, "answered"),
    "XML": (b"<records><r distance='1'/></records>", {"Content-Type": "application/xml"}, None),
    "binary garbage": (bytes(range(256)) * 64, {"Content-Type": "application/octet-stream"},
                       None),
    "empty body": (b"", JSON, None),
    "JSON null": (b"null", JSON, None),
    "a bare list": (_records(record())[12:-1], JSON, None),
    "records is a string": (b'{"records": "all of them"}', JSON, None),
    "duplicate keys": (_records(record())[:-3] + b', "distance": "far"}]}', JSON,
                       (0, "distance")),
    "truncated": (_records(record())[:-7], JSON, None),
    "BOM before JSON": (b"\xef\xbb\xbf" + _records(record()), JSON, None),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_body_is_a_clear_4xx_and_the_server_goes_on(name, classifier, client_for):
    body, headers, where = HOSTILE[name]
    client = client_for(classifier, max_body_bytes=64_000_000)  # past it only the 413 is seen
    answer = client.post("/predict", content=body, headers=headers)
    if where == "answered":
        assert answer.status_code == 200, answer.text[:500]
        return
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    problem = answer.json()
    assert problem.get("error") or problem.get("detail"), problem
    if where is not None:
        detail = problem["detail"]
        if len(where) == 2:
            assert {"record": where[0], "field": where[1]}.items() <= detail[0].items(), detail
        else:
            assert detail[0]["field"] == where[0], detail
        assert detail[0]["message"]
    good = client.post("/predict", json={"records": [record()]})
    assert good.status_code == 200


def test_feedback_takes_json_only_and_within_the_body_limit(classifier, client_for):
    """/feedback refuses a body that says it is not JSON (415) and one over the limit (413),
    before reading it as labels."""
    client = client_for(classifier, max_body_bytes=1_000)
    wrong = client.post("/feedback", content=b"label=1", headers={"Content-Type": "text/csv"})
    assert wrong.status_code == 415 and "text/csv" in wrong.json()["error"]
    labels = {"labels": [{"request_id": "x" * 40, "record": 0, "label": "late"}] * 50}
    assert client.post("/feedback", json=labels).status_code == 413
