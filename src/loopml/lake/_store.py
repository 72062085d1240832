"""Object stores: the storage options a lake on ``s3://`` needs, and listing its tables.

Delta (delta-rs) takes its options as ``AWS_*`` keys and reads the same variables from the
environment; listing folders, which Delta has no call for, goes through pyarrow's own S3
filesystem configured from the same options.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from loopml.core.errors import LakeError, first_line

# the variables Delta's object store reads for S3; a configured option of the same name wins
_ENV_PREFIXES = ("AWS_",)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def storage_options(
    configured: Mapping[str, str] | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The configured options with ``${VAR}`` replaced from ``environ``, so secrets stay out of
    loopml.yaml. Delta itself also reads ``AWS_*`` variables that no option overrides.

    >>> storage_options({"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "${S}"}, {"S": "x"})
    {'AWS_REGION': 'eu-west-1', 'AWS_SECRET_ACCESS_KEY': 'x'}
    """
    env = os.environ if environ is None else environ
    return {key: _expand(key, str(value), env) for key, value in (configured or {}).items()}


def _expand(key: str, value: str, env: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise LakeError(
                f"storage.storage_options.{key} names the environment variable {name}, "
                "which is not set.",
                hint=f"export {name}=... before running loopml.",
            )
        return env[name]

    return _VAR.sub(one, value)


def _option(options: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in options.items()}
    for name in names:
        for key in (name.lower(), name.lower().removeprefix("aws_")):
            if key in lowered:
                return lowered[key]
    return None


def filesystem(uri: str, options: Mapping[str, str] | None) -> tuple[Any, str]:
    """A pyarrow filesystem for ``uri`` and the path inside it (``bucket/prefix`` for S3)."""
    from pyarrow import fs

    scheme, _, rest = uri.partition("://")
    if scheme not in ("s3", "s3a"):
        raise LakeError(
            f"Listing tables of a {scheme}:// lake is not supported yet (local and s3:// are).",
            hint="Name the table instead, e.g. 'clean/flights'.",
        )
    # what Delta would take from the environment, under the configured options
    opts = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
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
        raise LakeError(f"Cannot open the object store of {uri}: {first_line(exc)}") from exc


def list_tables(uri: str, options: Mapping[str, str] | None, zones: tuple[str, ...],
                dead_letter: str) -> list[str]:
    """Every ``zone/name`` under an object-store lake that holds a ``_delta_log``."""
    from pyarrow import fs

    store, root = filesystem(uri, options)
    root = root.rstrip("/")

    def folders(path: str) -> list[str]:
        try:
            infos = store.get_file_info(fs.FileSelector(path, allow_not_found=True))
        except Exception as exc:  # OSError from the store: unreachable, denied, no bucket
            raise LakeError(
                f"Cannot list the lake at {uri}: {first_line(exc)}",
                hint="Check storage.storage_options (or the AWS_* variables) and the bucket.",
            ) from exc
        return sorted(i.base_name for i in infos if i.type == fs.FileType.Directory)

    bucket = root.split("/", 1)[0]
    try:
        exists = store.get_file_info(bucket).type != fs.FileType.NotFound
    except Exception as exc:  # OSError from the store: unreachable, denied
        raise LakeError(
            f"Cannot reach the lake at {uri}: {first_line(exc)}",
            hint="Check storage.storage_options (or the AWS_* variables) and the endpoint.",
        ) from exc
    if not exists:
        raise LakeError(
            f"The bucket {bucket!r} of the lake {uri} does not exist.",
            hint="Create it, or point storage.lake_uri at an existing bucket.",
        )
    found = []
    for zone in zones:
        for name in folders(f"{root}/{zone}"):
            if zone == dead_letter:
                found += [f"{zone}/{name}/{inner}" for inner in folders(f"{root}/{zone}/{name}")
                          if "_delta_log" in folders(f"{root}/{zone}/{name}/{inner}")]
            elif "_delta_log" in folders(f"{root}/{zone}/{name}"):
                found.append(f"{zone}/{name}")
    return found
