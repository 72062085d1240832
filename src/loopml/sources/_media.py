"""Media folder sources: images and WAV audio become one row per file, with features.

Every row has ``path`` (relative to the project), the file name without extension (the column
``stem_column``, ``stem`` by default, so media joins tabular data by id), ``size``, ``media``
(image or audio), ``format``, ``sha256`` and ``channels``; images add ``width``, ``height`` and
``mode`` and per-channel ``mean_*`` and ``std_*`` (r, g, b, and a when the image has alpha;
grayscale images have r = g = b) and a coarse colour histogram: ``hist_<r|g|b>_<i>`` is the
share of pixels in the i-th of ``histogram_bins`` equal bins of 0–255; audio adds
``duration_s``, ``sample_rate``, ``rms`` (root mean square of samples scaled to [-1, 1]) and
``zcr`` (the share of adjacent samples whose sign differs). 16-bit and float images are scaled
to 0–255 first, like 8-bit ones. Every row has every column (null
where it does not apply), so images and audio share one table.

Which files: a file, a glob, or every file under a folder except hidden ones, told apart by
content, not by extension. A file that is not an image Pillow reads nor a WAV file goes to
``Chunk.rejected`` with the reason, never a traceback.

Incremental: the cursor is ``{"files": {path: sha256}}``; a file is read again only when its
content changed (unlike file sources, a copy under another name is its own row, since each
file joins by its own stem).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from loopml.core.errors import SourceError, first_line
from loopml.core.records import Chunk

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from loopml.core.config import MediaSource

_AUDIO_ONLY = {".mp3", ".flac", ".ogg", ".oga", ".m4a", ".aac", ".opus", ".wma", ".aiff"}
_BLOCK_FRAMES = 1 << 18  # audio is measured in blocks: memory stays bounded for long files


def media_chunks(
    config: MediaSource, *, base_dir: Path, cursor: dict[str, Any] | None = None
) -> Iterator[Chunk]:
    """New or changed media files, ``files_per_chunk`` at a time.

    >>> import tempfile
    >>> from PIL import Image
    >>> from loopml.core.config import MediaSource
    >>> d = Path(tempfile.mkdtemp()); (d / "photos").mkdir()
    >>> Image.new("RGB", (4, 4), (255, 0, 0)).save(d / "photos" / "p17.png")
    >>> config = MediaSource(name="photos", kind="media", path="photos", stem_column="id")
    >>> chunk = next(media_chunks(config, base_dir=d, cursor=None))
    >>> chunk.frame.select("path", "id", "width", "mean_r", "std_r", "hist_r_3").row(0)
    ('photos/p17.png', 'p17', 4, 255.0, 0.0, 1.0)
    >>> list(media_chunks(config, base_dir=d, cursor=chunk.cursor))  # nothing new
    []
    """
    from loopml.sources._files import _display

    base = Path(base_dir)
    taken = set(_columns(config.histogram_bins)) - {"stem"}
    if config.stem_column in taken or config.stem_column.startswith("_source"):
        raise SourceError(
            f"Source {config.name!r}: stem_column {config.stem_column!r} is already a column "
            "of media rows.",
            hint="Choose another name, e.g. the id column of the table the media joins.",
        )
    done: dict[str, str] = dict((cursor or {}).get("files", {}))
    rows: list[dict[str, Any]] = []
    rejected: list[tuple[str, str]] = []
    names: list[str] = []
    for path in _media_files(config.path, base):
        name = _display(path, base)
        try:
            with path.open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError as exc:
            raise SourceError(f"Cannot read {name}: {exc.strerror}.") from None
        if done.get(name) == digest:
            continue
        row, why = describe_media(path, bins=config.histogram_bins)
        if why is None:
            assert row is not None
            rows.append({"path": name, "stem": path.stem, "size": path.stat().st_size,
                         "sha256": digest, **row})
        else:
            rejected.append((name, why))
        names.append(name)
        done = {**done, name: digest}
        if len(names) >= config.files_per_chunk:
            yield _chunk(config, rows, rejected, names, done)
            rows, rejected, names = [], [], []
    if names:
        yield _chunk(config, rows, rejected, names, done)


def describe_media(path: Path, *, bins: int = 4) -> tuple[dict[str, Any] | None, str | None]:
    """(metadata and features, None) for an image or WAV file, or (None, why it is not one)."""
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _audio(path)
    if path.suffix.lower() in _AUDIO_ONLY:
        return None, f"audio format {path.suffix.lower()} is not read (only WAV)"
    return _image(path, bins)


def _columns(bins: int) -> dict[str, Any]:
    import polars as pl

    cols: dict[str, Any] = {
        "path": pl.String, "stem": pl.String, "size": pl.Int64, "media": pl.String,
        "format": pl.String, "sha256": pl.String, "channels": pl.Int64,
        "width": pl.Int64, "height": pl.Int64, "mode": pl.String,
        "duration_s": pl.Float64, "sample_rate": pl.Int64, "rms": pl.Float64, "zcr": pl.Float64,
    }
    for stat in ("mean", "std"):
        for band in "rgba":
            cols[f"{stat}_{band}"] = pl.Float64
    for band in "rgb":
        for i in range(bins):
            cols[f"hist_{band}_{i}"] = pl.Float64
    return cols


def _chunk(
    config: MediaSource,
    rows: list[dict[str, Any]],
    rejected: list[tuple[str, str]],
    names: list[str],
    done: dict[str, str],
) -> Chunk:
    import polars as pl

    schema = _columns(config.histogram_bins)
    frame = pl.DataFrame(
        {c: [r.get(c) for r in rows] for c in schema}, schema=schema
    ).with_columns(
        pl.col("path").alias("_source_file"),
        pl.lit(1, dtype=pl.Int64).alias("_source_row"),
    )
    if config.stem_column != "stem":
        frame = frame.rename({"stem": config.stem_column})
    bad: pl.DataFrame | None = None
    if rejected:
        bad = pl.DataFrame(
            {
                "_source_file": [n for n, _ in rejected],
                "_source_row": [1] * len(rejected),
                "_raw": [None] * len(rejected),
                "_reasons": [why for _, why in rejected],
            },
            schema={"_source_file": pl.String, "_source_row": pl.Int64, "_raw": pl.String,
                    "_reasons": pl.String},
        )
    return Chunk(source=config.name, frame=frame, cursor={"files": dict(done)},
                 files=tuple(names), rejected=bad)


# ---- images ----------------------------------------------------------------------------------


def _image(path: Path, bins: int) -> tuple[dict[str, Any] | None, str | None]:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            fmt, (width, height), mode = im.format, im.size, im.mode
            alpha = "A" in im.getbands() or (mode == "P" and "transparency" in im.info)
            if mode in ("I", "F") or mode.startswith("I;16"):
                pixels = _to_8bit(np.asarray(im, dtype=np.float64), mode)
            else:
                pixels = np.asarray(im.convert("RGBA" if alpha else "RGB"))
    except Image.DecompressionBombError as exc:
        return None, f"image too large to read safely ({first_line(exc)})"
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as exc:
        if isinstance(exc, Image.UnidentifiedImageError):
            return None, "not an image Pillow can read, nor a WAV file"
        return None, f"unreadable image ({first_line(exc)})"
    except MemoryError:
        return None, "image too large to read into memory"
    if pixels.size == 0:
        return None, "image has no pixels"
    row: dict[str, Any] = {"media": "image", "format": fmt, "width": width, "height": height,
                           "mode": mode, "channels": Image.getmodebands(mode)}
    levels = np.arange(256, dtype=np.float64)
    for c, band in enumerate("rgba"[: pixels.shape[2]]):
        counts = np.bincount(pixels[..., c].ravel(), minlength=256).astype(np.float64)
        n = counts.sum()
        mean = float((counts * levels).sum() / n)
        row[f"mean_{band}"] = mean
        row[f"std_{band}"] = float(np.sqrt((counts * (levels - mean) ** 2).sum() / n))
        if band != "a":
            share = np.bincount(levels.astype(np.int64) * bins // 256, weights=counts,
                                minlength=bins) / n
            for i, value in enumerate(share):
                row[f"hist_{band}_{i}"] = float(value)
    return row, None


def _to_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit or float gray image on the 0–255 scale of the others, as RGB."""
    import numpy as np

    if mode.startswith("I;16"):
        values = values / 257.0  # 65535 -> 255
    elif mode == "F" and values.size and np.nanmax(values) <= 1.0:
        values = values * 255.0  # floats in [0, 1]
    gray = np.clip(np.nan_to_num(np.round(values)), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


# ---- audio -----------------------------------------------------------------------------------


_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def _audio(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """RMS and zero-crossing rate of a WAV file, read in blocks (PCM 8/16/24/32-bit or float
    32/64-bit, plain or WAVE_FORMAT_EXTENSIBLE)."""
    import numpy as np

    try:
        with path.open("rb") as fh:
            tag, channels, rate, bits = _wav_header(fh)
            width = bits // 8
            usable = {_PCM: (1, 2, 3, 4), _FLOAT: (4, 8)}.get(tag, ())
            if width not in usable or bits % 8 or rate <= 0 or channels <= 0:
                what = {_PCM: "PCM", _FLOAT: "float"}.get(tag, f"encoding {tag:#x}")
                return None, (f"WAV {what} with {bits} bits, {channels} channels at {rate} Hz "
                              "is not read (PCM 8/16/24/32-bit or float 32/64-bit)")
            frame = width * channels
            squares, crossings, pairs, count = 0.0, 0, 0, 0
            last: np.ndarray | None = None
            while True:
                raw = fh.read(_BLOCK_FRAMES * frame)
                raw = raw[: len(raw) - len(raw) % frame]  # a cut-off last frame is left out
                if not raw:
                    break
                x = _samples(raw, width, tag == _FLOAT).reshape(-1, channels)
                squares += float(np.square(x).sum())
                count += x.size
                sign = x >= 0
                if last is not None:
                    sign = np.vstack([last, sign])
                crossings += int((sign[1:] != sign[:-1]).sum())
                pairs += (sign.shape[0] - 1) * channels
                last = sign[-1:]
    except (ValueError, OSError, struct.error) as exc:
        return None, f"unreadable WAV ({first_line(exc)})"
    if count == 0:
        return None, "WAV file holds no samples"
    if not np.isfinite(squares):
        return None, "WAV float samples are not finite numbers"
    return {
        "media": "audio", "format": "WAV", "channels": channels, "sample_rate": rate,
        "duration_s": count / channels / rate, "rms": (squares / count) ** 0.5,
        "zcr": crossings / pairs if pairs else 0.0,
    }, None


def _wav_header(fh: BinaryIO) -> tuple[int, int, int, int]:
    """(encoding tag, channels, sample rate, bits a sample), leaving ``fh`` at the samples."""
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        chunk = fh.read(8)
        if len(chunk) < 8:
            raise ValueError("no data chunk" if fmt else "no fmt chunk")
        kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
        if kind == b"fmt ":
            body = fh.read(size + (size & 1))
            if len(body) < 16:
                raise ValueError("fmt chunk is cut short")
            tag, channels, rate = struct.unpack_from("<HHI", body, 0)
            (bits,) = struct.unpack_from("<H", body, 14)
            if tag == _EXTENSIBLE and len(body) >= 26:
                (tag,) = struct.unpack_from("<H", body, 24)  # the sub-format GUID's first word
            fmt = (tag, channels, rate, bits)
        elif kind == b"data":
            if fmt is None:
                raise ValueError("samples come before the fmt chunk")
            return fmt  # the data size is not trusted: streaming writers leave it wrong
        else:
            fh.seek(size + (size & 1), 1)


def _samples(raw: bytes, width: int, floating: bool = False) -> np.ndarray:
    """WAV bytes to floats in [-1, 1] (8-bit PCM is unsigned, wider is signed little-endian)."""
    import numpy as np

    data = np.frombuffer(raw, dtype=np.uint8)
    if floating:
        return data.view("<f4" if width == 4 else "<f8").astype(np.float64)
    if width == 1:
        return (data.astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return data.view("<i2").astype(np.float64) / 32768.0
    if width == 4:
        return data.view("<i4").astype(np.float64) / 2147483648.0
    b = data.reshape(-1, 3).astype(np.int32)
    value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    value = np.where(value >= 1 << 23, value - (1 << 24), value)
    return value.astype(np.float64) / float(1 << 23)


# ---- files -----------------------------------------------------------------------------------


def _media_files(path: str, base: Path) -> list[Path]:
    full = Path(path) if Path(path).is_absolute() else base / path
    if full.is_dir():
        files = sorted(
            f for f in full.rglob("*")
            if f.is_file() and not any(p.startswith(".") for p in f.relative_to(full).parts)
        )
        if not files:
            raise SourceError(f"Folder {full} holds no files.",
                              hint="Put images or WAV files there, or point the source "
                              "at another folder or a glob such as 'media/*.png'.")
        return files
    from loopml.sources._files import resolve_files

    return resolve_files(path, base_dir=base)
