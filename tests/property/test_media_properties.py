"""Any bytes in a media folder give a row or a rejection with a reason, never an exception."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.sources._media import describe_media

PREFIXES = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WAVE",
    b"RIFF\x00\x00\x00\x00WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 8000, 32000, 4, 16),
    b"RIFF\x00\x00\x00\x00WAVEfmt " + struct.pack("<IHHIIHH", 16, 3, 1, 8000, 32000, 4, 32)
    + b"data\xff\xff\xff\xff",
]


@settings(max_examples=150, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), tail=st.binary(max_size=300),
       suffix=st.sampled_from([".png", ".wav", ".jpg", ".bin"]))
def test_any_bytes_are_described_or_rejected(prefix: bytes, tail: bytes, suffix: str) -> None:
    """describe_media returns (row, None) or (None, reason) for whatever the file holds."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"f{suffix}"
        path.write_bytes(prefix + tail)
        row, why = describe_media(path)
    assert (row is None) != (why is None)
    if why is not None:
        assert isinstance(why, str) and why
