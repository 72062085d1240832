"""The request model, generated from the contract, and what turns requests into frames.

One pydantic field per feature column, named after the column (an alias, so any column name
works), required but nullable: a missing key is a mistake, a null is a missing value the model
imputes. Unknown keys are ignored, so clients may send whole rows including the target.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from loopml.core.contract import polars_schema

if TYPE_CHECKING:
    import polars as pl
    from pydantic import BaseModel

    from loopml.core.contract import ColumnSpec, Contract

INT64 = (-(2**63), 2**63 - 1)


@functools.cache
def python_types() -> dict[str, Any]:
    """The Python type of each contract type, as the request model declares it."""
    from pydantic import AfterValidator, Field

    return {
        # values a frame cannot hold (huge integers, inf, NaN) are a 422 here, not a 500 later
        "integer": Annotated[int, AfterValidator(_int64)],
        "float": Annotated[float, Field(allow_inf_nan=False)],
        "boolean": bool,
        "string": str,
        "category": str,
        "datetime": datetime,
        "date": date,
    }


def _int64(value: int) -> int:
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError("the number is outside the 64-bit integer range")
    return value


_EXAMPLES: dict[str, Any] = {
    "integer": 0,
    "float": 0.0,
    "boolean": False,
    "string": "text",
    "category": "value",
    "datetime": "2024-01-01T12:00:00Z",
    "date": "2024-01-01",
}
_SHOWN_CATEGORIES = 30


class RequestSchema:
    """The generated pydantic models for one contract and how to read their instances."""

    def __init__(self, contract: Contract, *, max_records: int):
        from pydantic import ConfigDict, Field, create_model

        self.contract = contract
        self.schema = polars_schema(contract)
        # field i is stored as attribute "f{i}" and read from the JSON key of the column name
        self._attrs = [(f"f{i}", c.name, c.type) for i, c in enumerate(contract.columns)]
        self._datetimes = [c.name for c in contract.columns if c.type == "datetime"]
        fields: dict[str, Any] = {
            attr: (
                python_types()[c.type] | None,
                Field(
                    ...,
                    alias=c.name,
                    title=c.name,
                    description=describe(c),
                    examples=[_example(c)],
                ),
            )
            for (attr, _, _), c in zip(self._attrs, contract.columns, strict=True)
        }
        self.record: type[BaseModel] = create_model(
            "PredictionRecord",
            __config__=ConfigDict(extra="ignore", coerce_numbers_to_str=True),
            __doc__="One row of feature values. Every feature is required; null means unknown.",
            **fields,
        )
        self.example = {c.name: _example(c) for c in contract.columns}
        self.request: type[BaseModel] = create_model(
            "PredictRequest",
            __config__=ConfigDict(json_schema_extra={"examples": [{"records": [self.example]}]}),
            __doc__="Rows to score: one record or many.",
            records=(
                list[self.record],  # type: ignore[name-defined]
                Field(..., min_length=1, max_length=max_records, description="Rows to score."),
            ),
        )

    def frame(self, records: list[Any]) -> pl.DataFrame:
        """Validated records as a frame with exactly the contract's types (datetimes in UTC).

        Raises ``RecordProblems`` for a datetime whose offset takes it outside the years a
        datetime holds (e.g. 0001-01-01T00:00:00+00:01)."""
        import polars as pl

        rows = [{name: getattr(r, attr) for attr, name, _ in self._attrs} for r in records]
        problems = []
        for name in self._datetimes:
            for i, row in enumerate(rows):
                try:
                    row[name] = _utc(row[name])
                except OverflowError:
                    problems.append({"record": i, "field": name, "expected": "datetime",
                                     "message": f"{row[name].isoformat()} is outside the "
                                     "years 1-9999 once converted to UTC."})
        if problems:
            raise RecordProblems(problems)
        # from_dicts: ~10x faster than a dict of lists for the few rows a request holds
        return pl.from_dicts(rows, schema=self.schema)


class RecordProblems(ValueError):
    """Records that passed the request model but cannot be scored: one item per problem,
    as ``error_details`` gives them."""

    def __init__(self, problems: list[dict[str, Any]]):
        super().__init__(f"{len(problems)} problem(s) in the records")
        self.problems = problems


def describe(spec: ColumnSpec) -> str:
    """The field description in the OpenAPI document: meaning, type, range and categories."""
    parts = [spec.description.rstrip(".") + "." if spec.description else ""]
    parts.append(f"Contract type: {spec.type}; null if unknown.")
    if spec.type == "datetime":
        parts.append("ISO 8601; without an offset it is read as UTC.")
    if spec.min is not None or spec.max is not None:
        low = "-inf" if spec.min is None else f"{spec.min:g}"
        high = "inf" if spec.max is None else f"{spec.max:g}"
        parts.append(f"Expected range: {low} to {high}.")
    if spec.allowed:
        shown = ", ".join(repr(a) for a in spec.allowed[:_SHOWN_CATEGORIES])
        more = (
            f" and {len(spec.allowed) - _SHOWN_CATEGORIES} more"
            if len(spec.allowed) > _SHOWN_CATEGORIES
            else ""
        )
        parts.append(f"Known categories: {shown}{more}. Other values are scored as unseen.")
    return " ".join(p for p in parts if p)


def _example(spec: ColumnSpec) -> Any:
    if spec.allowed:
        return spec.allowed[0]
    if spec.type in ("integer", "float") and spec.min is not None:
        lo = spec.min if spec.max is None else (spec.min + spec.max) / 2
        return int(lo) if spec.type == "integer" else float(lo)
    return _EXAMPLES[spec.type]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# ---- validation errors -------------------------------------------------------------------


def error_details(errors: list[dict[str, Any]], contract: Contract) -> list[dict[str, Any]]:
    """pydantic's errors as ``{"record", "field", "message"}`` items a person can act on."""
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if loc and loc[0] == "body":
            loc = loc[1:]
        record: int | None = None
        field: str | None = None
        if loc and loc[0] == "records":
            rest = loc[1:]
            if rest and isinstance(rest[0], int):
                record, rest = rest[0], rest[1:]
            if rest:
                field = str(rest[0])
            elif record is None:
                field = "records"
        item: dict[str, Any] = {
            "record": record,
            "field": field,
            "message": _message(err, record, field),
        }
        if field is not None and field in contract:
            item["expected"] = contract.column(field).type
        out.append(item)
    return out


def _message(err: dict[str, Any], record: int | None, field: str | None) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if field == "records" and record is None:
        if kind == "missing":
            return 'The body needs a "records" list, e.g. {"records": [{...}]}.'
        if kind == "too_short":
            return "Send at least one record."
        if kind == "too_long":
            return f"Send at most {ctx.get('max_length')} records in one request."
        return f'"records" must be a list of objects: {err.get("msg", "")}.'
    if kind == "missing":
        return "Field required. Send null if the value is unknown."
    if kind == "json_invalid":
        return f"The body is not valid JSON ({ctx.get('error', err.get('msg', ''))})."
    if field is None and record is not None:
        return f"A record must be a JSON object of feature: value. Received {_shown(err.get('input'))}."
    if field is None:
        return 'The body must be a JSON object like {"records": [{...}]}.'
    return f"{err.get('msg', 'Invalid value')}. Received {_shown(err.get('input'))}."


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
