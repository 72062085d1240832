"""Media folder sources: images and WAV files the tests make, with known features."""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from PIL import Image

from loopml.core.config import MediaSource
from loopml.core.errors import SourceError
from loopml.core.records import Chunk
from loopml.sources import read_chunks


def media(path: str = "media", **kw: Any) -> MediaSource:
    return MediaSource(name="m", kind="media", path=path, **kw)


def read(tmp_path: Path, config: MediaSource, cursor: dict[str, Any] | None = None
         ) -> list[Chunk]:
    return list(read_chunks(config, base_dir=tmp_path, cursor=cursor))


def frame_of(chunks: list[Chunk]) -> pl.DataFrame:
    return pl.concat([c.frame for c in chunks])


def row(frame: pl.DataFrame, stem: str) -> dict[str, Any]:
    return frame.filter(pl.col("stem") == stem).row(0, named=True)


def write_wav(path: Path, samples: np.ndarray, *, rate: int = 8000, width: int = 2) -> None:
    """Floats in [-1, 1], shape (n,) or (n, channels), as PCM of `width` bytes."""
    x = samples if samples.ndim == 2 else samples[:, None]
    if width == 1:
        data = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 2:
        data = np.round(x * 32767).astype("<i2").tobytes()
    else:
        v = np.round(x * (2**23 - 1)).astype(np.int32).ravel()
        data = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], axis=1).astype(np.uint8)
        data = data.tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def sine(freq: float, seconds: float, rate: int = 8000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "media"
    d.mkdir()
    Image.new("RGB", (8, 6), (255, 0, 0)).save(d / "red.png")
    Image.new("RGB", (10, 10), (255, 0, 0)).save(d / "red_jpeg.jpg", quality=95)
    Image.new("RGBA", (4, 4), (0, 0, 255, 128)).save(d / "blue_alpha.png")
    gray = np.tile(np.array([0, 255], dtype=np.uint8), (4, 2))  # half black, half white
    Image.fromarray(gray, mode="L").save(d / "gray.png")
    write_wav(d / "tone.wav", sine(440, 1.0))
    return tmp_path


def test_a_solid_red_png_has_the_known_features(folder: Path) -> None:
    """Solid red: R mean 255, std 0; G and B 0; all of R in the top bin."""
    frame = frame_of(read(folder, media()))
    r = row(frame, "red")
    assert (r["media"], r["format"], r["mode"], r["width"], r["height"]) == (
        "image", "PNG", "RGB", 8, 6)
    assert (r["mean_r"], r["std_r"], r["mean_g"], r["mean_b"]) == (255.0, 0.0, 0.0, 0.0)
    assert r["mean_a"] is None and r["channels"] == 3
    assert [r[f"hist_r_{i}"] for i in range(4)] == [0.0, 0.0, 0.0, 1.0]
    assert [r[f"hist_g_{i}"] for i in range(4)] == [1.0, 0.0, 0.0, 0.0]
    assert r["path"] == "media/red.png" and r["_source_file"] == "media/red.png"
    assert r["size"] == (folder / "media" / "red.png").stat().st_size
    import hashlib

    assert r["sha256"] == hashlib.sha256((folder / "media/red.png").read_bytes()).hexdigest()


def test_jpeg_rgba_and_grayscale(folder: Path) -> None:
    """JPEG is near its colour, alpha has its own mean, gray gives r = g = b."""
    frame = frame_of(read(folder, media()))
    jpg = row(frame, "red_jpeg")
    assert jpg["format"] == "JPEG" and jpg["mean_r"] > 250 and jpg["mean_g"] < 5
    alpha = row(frame, "blue_alpha")
    assert alpha["mode"] == "RGBA" and alpha["channels"] == 4
    assert (alpha["mean_b"], alpha["mean_a"], alpha["std_a"]) == (255.0, 128.0, 0.0)
    gray = row(frame, "gray")
    assert gray["mode"] == "L" and gray["channels"] == 1
    assert gray["mean_r"] == gray["mean_g"] == gray["mean_b"] == 127.5
    assert gray["std_r"] == 127.5
    assert gray["hist_r_0"] == 0.5 and gray["hist_r_3"] == 0.5


def test_histogram_bins_set_the_columns(folder: Path) -> None:
    """histogram_bins columns per channel, each row's shares summing to 1."""
    frame = frame_of(read(folder, media(histogram_bins=8)))
    cols = [c for c in frame.columns if c.startswith("hist_g_")]
    assert cols == [f"hist_g_{i}" for i in range(8)]
    images = frame.filter(pl.col("media") == "image")
    assert np.allclose(images.select(cols).sum_horizontal().to_numpy(), 1.0)


def test_a_sine_wav_has_the_known_rms_and_zero_crossing_rate(folder: Path) -> None:
    """A 440 Hz sine of amplitude 0.5 at 8 kHz: RMS 0.5/√2, ZCR 2·440/8000."""
    tone = row(frame_of(read(folder, media())), "tone")
    assert (tone["media"], tone["format"], tone["sample_rate"], tone["channels"]) == (
        "audio", "WAV", 8000, 1)
    assert tone["duration_s"] == 1.0
    assert tone["rms"] == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert tone["zcr"] == pytest.approx(2 * 440 / 8000, abs=2e-3)
    assert tone["width"] is None and tone["mean_r"] is None


@pytest.mark.parametrize("width", [1, 2, 3])
def test_wav_sample_widths_and_channels(tmp_path: Path, width: int) -> None:
    """8-, 16- and 24-bit stereo WAV: RMS across both channels, duration from frames."""
    (tmp_path / "media").mkdir()
    left, right = sine(100, 0.5, amp=0.8), sine(100, 0.5, amp=0.4)
    write_wav(tmp_path / "media" / "st.wav", np.stack([left, right], axis=1), width=width)
    r = frame_of(read(tmp_path, media())).row(0, named=True)
    assert r["channels"] == 2 and r["duration_s"] == 0.5
    expected = math.sqrt((0.8**2 + 0.4**2) / 4)
    assert r["rms"] == pytest.approx(expected, rel=0.02 if width == 1 else 1e-3)
    assert r["zcr"] == pytest.approx(2 * 100 / 8000, abs=2e-3)


def test_long_audio_is_measured_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """Zero crossings across block edges count once: same result with tiny blocks."""
    from loopml.sources import _media

    (tmp_path / "media").mkdir()
    write_wav(tmp_path / "media" / "a.wav", sine(330, 0.3))
    whole = frame_of(read(tmp_path, media())).row(0, named=True)
    monkeypatch.setattr(_media, "_BLOCK_FRAMES", 7)
    blocks = frame_of(read(tmp_path, media())).row(0, named=True)
    assert blocks["zcr"] == whole["zcr"] and blocks["rms"] == pytest.approx(whole["rms"])


def test_files_that_are_not_media_are_rejected_with_a_reason(folder: Path) -> None:
    """Corrupt images, truncated WAVs, text and MP3 files go to rejected, never a traceback."""
    d = folder / "media"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(d / "broken.png")
    good = (d / "broken.png").read_bytes()
    (d / "broken.png").write_bytes(good[: len(good) // 2])  # the pixels cut in half
    (d / "notes.txt").write_text("hello")
    (d / "song.mp3").write_bytes(b"ID3\x03\x00" + b"\x00" * 50)
    (d / "cut.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    (d / ".hidden.png").write_bytes(b"x")
    chunks = read(folder, media())
    frame = frame_of(chunks)
    assert sorted(frame["stem"].to_list()) == ["blue_alpha", "gray", "red", "red_jpeg", "tone"]
    bad = pl.concat([c.rejected for c in chunks if c.rejected is not None])
    reasons = dict(zip(bad["_source_file"].to_list(), bad["_reasons"].to_list(), strict=True))
    assert set(reasons) == {"media/broken.png", "media/notes.txt", "media/song.mp3",
                            "media/cut.wav"}
    assert "unreadable image" in reasons["media/broken.png"]
    assert "not an image" in reasons["media/notes.txt"]
    assert "only WAV" in reasons["media/song.mp3"]
    assert "unreadable WAV" in reasons["media/cut.wav"]
    assert bad["_source_row"].to_list() == [1, 1, 1, 1]
    assert "media/notes.txt" in chunks[-1].cursor["files"]  # not retried every ingest


def test_only_new_or_changed_files_are_read_again(folder: Path) -> None:
    """The cursor holds each path's sha256: unchanged files are skipped, changed ones re-read."""
    first = read(folder, media())
    cursor = first[-1].cursor
    assert set(cursor["files"]) == {f"media/{n}" for n in (
        "red.png", "red_jpeg.jpg", "blue_alpha.png", "gray.png", "tone.wav")}
    assert read(folder, media(), cursor=cursor) == []
    Image.new("RGB", (2, 2), (0, 255, 0)).save(folder / "media" / "red.png")
    Image.new("RGB", (2, 2), (0, 255, 0)).save(folder / "media" / "green.png")
    again = frame_of(read(folder, media(), cursor=cursor))
    assert sorted(again["stem"].to_list()) == ["green", "red"]
    assert row(again, "red")["mean_g"] == 255.0


def test_files_per_chunk_and_cursor_after_each_chunk(folder: Path) -> None:
    """Chunks of N files, each cursor covering every file up to it, so a crash resumes."""
    chunks = read(folder, media(files_per_chunk=2))
    assert [c.frame.height for c in chunks] == [2, 2, 1]
    assert [len(c.cursor["files"]) for c in chunks] == [2, 4, 5]
    rest = read(folder, media(), cursor=chunks[0].cursor)
    assert rest[0].frame.height == 3


def test_the_stem_column_joins_tabular_data(folder: Path) -> None:
    """stem_column names the file-stem column, so media joins a table by its id."""
    frame = frame_of(read(folder, media(stem_column="image_id")))
    table = pl.DataFrame({"image_id": ["red", "gray"], "label": [1, 0]})
    joined = table.join(frame, on="image_id")
    assert joined.sort("image_id")["mean_r"].to_list() == [127.5, 255.0]
    with pytest.raises(SourceError, match="already a column"):
        read(folder, media(stem_column="size"))


def test_a_glob_and_an_empty_folder(folder: Path) -> None:
    """A glob picks files; an empty folder is a clear error."""
    frame = frame_of(read(folder, media("media/*.wav")))
    assert frame["stem"].to_list() == ["tone"]
    (folder / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no files"):
        read(folder, media("empty"))


def test_16_bit_and_palette_images_are_on_the_same_scale(tmp_path: Path) -> None:
    """A 16-bit gray PNG is scaled to 0–255; a palette GIF with transparency has alpha."""
    d = tmp_path / "media"
    d.mkdir()
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(d / "deep.png")
    Image.new("P", (5, 5), 3).save(d / "pal.gif", transparency=3)
    frame = frame_of(read(tmp_path, media()))
    deep = row(frame, "deep")
    assert deep["mean_r"] == deep["mean_b"] == round(40000 / 257) and deep["std_r"] == 0.0
    pal = row(frame, "pal")
    assert (pal["format"], pal["mode"], pal["mean_a"]) == ("GIF", "P", 0.0)


def wav_bytes(samples: np.ndarray, *, tag: int, bits: int, rate: int = 8000,
              extensible: bool = False, data: bytes | None = None) -> bytes:
    """A WAV file written by hand: float or PCM, plain or WAVE_FORMAT_EXTENSIBLE."""
    import struct

    x = samples if samples.ndim == 2 else samples[:, None]
    channels = x.shape[1]
    if data is None:
        data = x.astype("<f4" if bits == 32 else "<f8").tobytes()
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block,
                      block, bits)
    if extensible:  # cbSize, valid bits, channel mask, sub-format GUID (its first word: tag)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # a chunk to skip
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_float_and_extensible_wav_files_are_read(tmp_path: Path) -> None:
    """Float 32/64-bit WAV, plain or extensible, give the sine's RMS; compressed WAV is
    rejected with its encoding named."""
    d = tmp_path / "media"
    d.mkdir()
    tone = sine(200, 0.5)
    (d / "f32.wav").write_bytes(wav_bytes(tone, tag=3, bits=32))
    (d / "f64x.wav").write_bytes(wav_bytes(tone, tag=3, bits=64, extensible=True))
    (d / "adpcm.wav").write_bytes(wav_bytes(tone, tag=2, bits=4, data=b"\x00" * 100))
    chunks = read(tmp_path, media())
    frame = frame_of(chunks)
    for stem in ("f32", "f64x"):
        r = row(frame, stem)
        assert r["rms"] == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
        assert r["duration_s"] == 0.5 and r["zcr"] == pytest.approx(2 * 200 / 8000, abs=2e-3)
    [bad] = [c.rejected for c in chunks if c.rejected is not None]
    assert bad["_source_file"].to_list() == ["media/adpcm.wav"]
    assert "encoding 0x2" in bad["_reasons"][0]
