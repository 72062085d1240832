"""Data quality: infer a contract, validate every batch, quarantine bad rows with reasons.

>>> import polars as pl
>>> frame = pl.DataFrame({"age": ["31", "47", "oops"]})
>>> contract = infer_contract(frame.head(2), source="people")
>>> validate(frame, contract).report.rows_quarantined
1
"""

from loopml.quality._clean import check_cleaning, clean_served
from loopml.quality._contract_check import check_contract
from loopml.quality._infer import infer_contract
from loopml.quality._validate import REASONS, ROW_HASH, row_hash, validate

__all__ = ["REASONS", "ROW_HASH", "check_cleaning", "check_contract", "clean_served",
           "infer_contract", "row_hash", "validate"]
