"""Object stores (``s3://``) through pyarrow's own S3 filesystem, configured like Delta.

Delta (delta-rs) takes ``AWS_*`` storage options and reads the same variables from the
environment; this module reads the same keys, so one ``storage_options`` mapping configures
the lake, listing its tables, and file sources on S3.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml.core.errors import LoopmlError, first_line

_ENV_PREFIX = "AWS_"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_options(
    configured: Mapping[str, str] | None,
    environ: Mapping[str, str] | None = None,
    *,
    where: str = "storage_options",
    error: type[LoopmlError] = LoopmlError,
) -> dict[str, str]:
    """Storage options with each ``${VAR}`` replaced from ``environ`` (default: the process
    environment); Delta and ``s3_filesystem`` also read ``AWS_*`` variables themselves.

    >>> expand_options({"AWS_SECRET_ACCESS_KEY": "${S}"}, {"S": "x"})
    {'AWS_SECRET_ACCESS_KEY': 'x'}
    """
    env = os.environ if environ is None else environ

    def one(key: str, match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise error(
                f"{where}.{key} names the environment variable {name}, which is not set.",
                hint=f"export {name}=... before running loopml.",
            )
        return env[name]

    return {key: _VAR.sub(lambda m, k=key: one(k, m), str(value))  # type: ignore[misc]
            for key, value in (configured or {}).items()}


def is_remote(path: str) -> bool:
    """True for ``s3://...`` and other URIs with a scheme (not for Windows drive letters).

    >>> is_remote("s3://bucket/data/*.csv"), is_remote("data/x.csv")
    (True, False)
    """
    scheme, sep, _ = path.partition("://")
    return bool(sep) and len(scheme) > 1


def _option(options: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in options.items()}
    for name in names:
        for key in (name.lower(), name.lower().removeprefix("aws_")):
            if key in lowered:
                return lowered[key]
    return None


def s3_filesystem(
    uri: str, options: Mapping[str, str] | None, *, error: type[LoopmlError] = LoopmlError
) -> tuple[Any, str]:
    """A pyarrow ``S3FileSystem`` for ``uri`` and the path inside it (``bucket/key``).

    Options (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, ``AWS_REGION``) override the ``AWS_*`` environment variables.
    """
    from pyarrow import fs

    scheme, _, rest = uri.partition("://")
    if scheme not in ("s3", "s3a"):
        raise error(
            f"{scheme}:// is not supported here yet (local paths and s3:// are).",
            hint="Use a local path or an s3:// URI.",
        )
    opts = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}
    opts.update(options or {})
    endpoint = _option(opts, "AWS_ENDPOINT_URL", "AWS_ENDPOINT", "endpoint_url", "endpoint")
    kwargs: dict[str, Any] = {
        "access_key": _option(opts, "AWS_ACCESS_KEY_ID", "access_key_id"),
        "secret_key": _option(opts, "AWS_SECRET_ACCESS_KEY", "secret_access_key"),
        "session_token": _option(opts, "AWS_SESSION_TOKEN", "session_token", "token"),
        "region": _option(opts, "AWS_REGION", "AWS_DEFAULT_REGION", "region"),
    }
    if endpoint:
        scheme_part, sep, host = endpoint.partition("://")
        kwargs["endpoint_override"] = host.rstrip("/") if sep else endpoint
        kwargs["scheme"] = scheme_part if sep else "https"
    try:
        return fs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None}), rest
    except Exception as exc:  # pyarrow raises ValueError/ArrowInvalid for bad options
        raise error(f"Cannot open the object store of {uri}: {first_line(exc)}") from exc


def fetch(
    uri: str,
    dest: str | Path,
    options: Mapping[str, str] | None = None,
    *,
    suffixes: tuple[str, ...] = (),
    error: type[LoopmlError] = LoopmlError,
) -> list[tuple[str, Path]]:
    """Copy the objects ``uri`` names (one object, every object under a prefix, or a glob such
    as ``s3://bucket/data/*.csv``) into ``dest``; returns ``(uri, local path)`` pairs, sorted.

    An object already in ``dest`` with the same size is not copied again. ``suffixes`` keeps
    only keys ending so under a prefix (not for a single object or a glob).
    """
    from pyarrow import fs

    store, path = s3_filesystem(uri, options, error=error)
    scheme = uri.partition("://")[0]
    glob = any(ch in path for ch in "*?[")
    try:
        if glob:
            root = path[: min(path.index(ch) for ch in "*?[" if ch in path)].rsplit("/", 1)[0]
            infos = store.get_file_info(fs.FileSelector(root, recursive=True,
                                                        allow_not_found=True))
            pattern = _glob_regex(path)
            found = [i for i in infos if i.type == fs.FileType.File and pattern.match(i.path)]
        else:
            info = store.get_file_info(path)
            if info.type == fs.FileType.File:
                found = [info]
            else:
                infos = store.get_file_info(fs.FileSelector(path.rstrip("/"), recursive=True,
                                                            allow_not_found=True))
                found = [i for i in infos if i.type == fs.FileType.File
                         and (not suffixes or i.path.lower().endswith(suffixes))]
    except Exception as exc:  # OSError from the store: unreachable, denied, no bucket
        raise error(
            f"Cannot list {uri}: {first_line(exc)}",
            hint="Check the storage options (or the AWS_* variables) and the bucket.",
        ) from exc
    if not found:
        raise error(f"No objects match {uri}.", hint="Check the bucket, prefix or pattern.")
    out = []
    for info in sorted(found, key=lambda i: i.path):
        local = Path(dest) / info.path
        if not (local.exists() and local.stat().st_size == info.size):
            local.parent.mkdir(parents=True, exist_ok=True)
            partial = local.with_name(local.name + ".part")
            try:
                with store.open_input_stream(info.path) as src, partial.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            except Exception as exc:  # OSError from the store mid-download
                partial.unlink(missing_ok=True)
                raise error(f"Cannot read {scheme}://{info.path}: {first_line(exc)}") from exc
            partial.replace(local)  # a crash mid-download leaves no half file under the name
        out.append((f"{scheme}://{info.path}", local))
    return out


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as the shell reads it: ``*`` and ``?`` stay within one folder, ``**`` crosses.

    >>> one, deep = _glob_regex("b/d/*.csv"), _glob_regex("b/**/*.csv")
    >>> bool(one.match("b/d/s/c.csv")), bool(deep.match("b/d/s/c.csv")), bool(deep.match("b/c.csv"))
    (False, True, True)
    """
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")
