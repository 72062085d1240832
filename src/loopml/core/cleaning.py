"""A source's cleaning settings (``sources[].cleaning`` in loopml.yaml): every step is off
unless configured, and every number a step uses is written here, never learned from a batch,
so that a chunk is cleaned the same way whichever chunk it is and however often it is retried.

.. code-block:: yaml

    cleaning:
      repair: {numbers: true, date_formats: ["%d/%m/%Y"], true_tokens: [oui], false_tokens: [non]}
      categories: {columns: [city], similarity: 0.8}
      missing:
        city: drop
        price: {impute: median, value: 12.5}
      outliers:
        weight: {method: iqr, q1: 10, q3: 20, k: 1.5, action: clip}
        age: {method: zscore, mean: 40, std: 12, z: 3, action: flag}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loopml.core.convert import Repair


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RepairConfig(_Part):
    """Values the contract's type reads once repaired (the one converter, ``core.convert``)."""

    # numbers with thousands separators, a currency or a unit: 1,234.5  €3.50  12 kg  45% (45)
    numbers: bool = False
    decimal: Literal[".", ","] = "."  # ",": 1.234,5 and 3,5 kg
    date_formats: tuple[str, ...] = ()  # strftime formats tried before the usual ones
    true_tokens: tuple[str, ...] = ()  # booleans beyond true/false, yes/no, y/n, t/f, 1/0
    false_tokens: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _formats(self) -> RepairConfig:
        for fmt in self.date_formats:
            if "%" not in fmt:
                raise ValueError(f"date format {fmt!r} has no % directive (e.g. %d/%m/%Y)")
        both = {t.lower() for t in self.true_tokens} & {t.lower() for t in self.false_tokens}
        if both:
            raise ValueError(f"tokens {sorted(both)} are both true and false")
        return self

    def options(self) -> Repair:
        return Repair(numbers=self.numbers, decimal=self.decimal,
                      date_formats=self.date_formats,
                      true_tokens=tuple(t.lower() for t in self.true_tokens),
                      false_tokens=tuple(t.lower() for t in self.false_tokens))


class CategoriesConfig(_Part):
    """Spellings of one category made one: Unicode NFKC, whitespace and case are normalised,
    and a spelling whose similarity (1 - Levenshtein distance / longer length, compared without
    case) to the contract's allowed value reaches ``similarity`` becomes that value."""

    columns: tuple[str, ...] | None = None  # None: every category column of the contract
    similarity: float | None = Field(default=None, gt=0, le=1)  # None: no near-duplicate merge


class Impute(_Part):
    """A fixed fill value; ``impute`` says how it was chosen (mean, median and mode of a sample,
    or a constant), so every chunk is filled alike."""

    impute: Literal["mean", "median", "mode", "constant"]
    value: str | float | int | bool | None = None

    @model_validator(mode="after")
    def _has_value(self) -> Impute:
        if self.value is None:
            raise ValueError(
                f"impute: {self.impute} needs its 'value' (e.g. the {self.impute} of a sample: "
                "loopml sql \"SELECT median(price) FROM clean_<source>\"); a value learned from "
                "each chunk would fill alike rows differently")
        return self


class Outliers(_Part):
    """Fences from fixed statistics: IQR ``[q1 - k*(q3-q1), q3 + k*(q3-q1)]`` or z-score
    ``[mean - z*std, mean + z*std]``; ``flag`` warns (the row is kept), ``clip`` sets the value
    to the fence."""

    method: Literal["iqr", "zscore"]
    action: Literal["flag", "clip"] = "flag"
    q1: float | None = None
    q3: float | None = None
    k: float = Field(default=1.5, gt=0)
    mean: float | None = None
    std: float | None = Field(default=None, ge=0)
    z: float = Field(default=3.0, gt=0)

    @model_validator(mode="after")
    def _statistics(self) -> Outliers:
        need = ("q1", "q3") if self.method == "iqr" else ("mean", "std")
        lacking = [n for n in need if getattr(self, n) is None]
        if lacking:
            raise ValueError(f"method {self.method} needs {' and '.join(need)} (statistics of a "
                             f"sample); missing: {', '.join(lacking)}")
        if self.method == "iqr" and self.q1 > self.q3:  # type: ignore[operator]
            raise ValueError(f"q1 {self.q1} is above q3 {self.q3}")
        return self

    @property
    def fences(self) -> tuple[float, float]:
        if self.method == "iqr":
            q1, q3 = float(self.q1), float(self.q3)  # type: ignore[arg-type]
            return q1 - self.k * (q3 - q1), q3 + self.k * (q3 - q1)
        mean, std = float(self.mean), float(self.std)  # type: ignore[arg-type]
        return mean - self.z * std, mean + self.z * std


class CleaningConfig(_Part):
    """The cleaning steps of one source; each is off unless set."""

    repair: RepairConfig | None = None
    categories: CategoriesConfig | None = None
    missing: dict[str, Literal["drop"] | Impute] = Field(default_factory=dict)
    outliers: dict[str, Outliers] = Field(default_factory=dict)

    def recorded(self) -> dict[str, Any]:
        """The JSON form an ingest intent keeps."""
        return self.model_dump(mode="json")
