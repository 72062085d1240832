"""Objects on s3:// fetched to a local folder (for file sources on S3), against moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.errors import SourceError
from loopml.core.objectstore import expand_options, fetch, s3_filesystem

from .conftest import S3

pytestmark = pytest.mark.services


def _put(s3: S3, key: str, body: bytes) -> None:
    store, _ = s3_filesystem(f"s3://{s3.bucket}", s3.options)
    with store.open_output_stream(f"{s3.bucket}/{key}") as out:
        out.write(body)


def test_fetch_an_object_a_prefix_and_a_glob(s3: S3, tmp_path: Path) -> None:
    """One object, every object under a prefix (by suffix) and a glob are copied once."""
    _put(s3, "data/a.csv", b"x\n1\n")
    _put(s3, "data/b.csv", b"x\n2\n")
    _put(s3, "data/readme.txt", b"hello")
    _put(s3, "data/sub/c.csv", b"x\n3\n")
    one = fetch(f"s3://{s3.bucket}/data/a.csv", tmp_path, s3.options, error=SourceError)
    assert [(u, p.read_bytes()) for u, p in one] == [(f"s3://{s3.bucket}/data/a.csv", b"x\n1\n")]
    under = fetch(f"s3://{s3.bucket}/data", tmp_path, s3.options, suffixes=(".csv",))
    assert [u.rsplit("/", 1)[1] for u, _ in under] == ["a.csv", "b.csv", "c.csv"]
    glob = fetch(f"s3://{s3.bucket}/data/*.csv", tmp_path, s3.options)
    assert [u.rsplit("/", 1)[1] for u, _ in glob] == ["a.csv", "b.csv"]
    assert all(p.is_file() and p.is_relative_to(tmp_path) for _, p in under)


def test_fetch_of_nothing_is_a_clear_error(s3: S3, tmp_path: Path) -> None:
    """A pattern that matches no object raises the caller's error type."""
    with pytest.raises(SourceError, match="No objects match"):
        fetch(f"s3://{s3.bucket}/none/*.csv", tmp_path, s3.options, error=SourceError)


def test_options_name_secrets_as_environment_variables() -> None:
    """${VAR} in an option is read from the environment; an unset one is a clear error."""
    assert expand_options({"k": "a-${X}-b"}, {"X": "1"}) == {"k": "a-1-b"}
    with pytest.raises(SourceError, match="MISSING_VAR"):
        expand_options({"k": "${MISSING_VAR}"}, {}, error=SourceError)
