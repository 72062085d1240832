"""Reading files: whatever bytes a file holds, the user gets rows or a LoopmlError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from loopml.core.config import FileSource
from loopml.core.errors import LoopmlError
from loopml.sources import read_source

csv_like = st.lists(
    st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=6), min_size=1,
             max_size=4).map(lambda cells: ",".join(cells)),
    min_size=0, max_size=6,
).map(lambda lines: "\n".join(lines).encode())  # fmt: skip


@given(st.one_of(st.binary(max_size=200), csv_like), st.sampled_from(["csv", "ndjson", "parquet"]))
def test_only_loopml_errors_escape(content: bytes, fmt: str) -> None:
    """Arbitrary content under any format name is read or refused with a LoopmlError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data.{fmt}"
        path.write_bytes(content)
        try:
            batch = read_source(FileSource(name="s", path=path.name), base_dir=tmp)
        except LoopmlError:
            return
        assert batch.frame.height == sum(batch.rows_per_file) > 0
        assert batch.frame["_source_row"].min() >= 1  # a line or row number
