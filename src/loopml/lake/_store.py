"""Object stores: the storage options a lake on ``s3://`` needs, and listing its tables.

Delta (delta-rs) takes its options as ``AWS_*`` keys and reads the same variables from the
environment; listing folders, which Delta has no call for, goes through pyarrow's own S3
filesystem configured from the same options (``loopml.core.objectstore``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopml.core.errors import LakeError, first_line


def storage_options(
    configured: Mapping[str, str] | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The lake's configured options with ``${VAR}`` replaced from ``environ`` (default: the
    process environment), so secrets stay out of loopml.yaml.

    >>> storage_options({"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "${S}"}, {"S": "x"})
    {'AWS_REGION': 'eu-west-1', 'AWS_SECRET_ACCESS_KEY': 'x'}
    """
    from loopml.core.objectstore import expand_options

    return expand_options(configured, environ, where="storage.storage_options", error=LakeError)


def filesystem(uri: str, options: Mapping[str, str] | None) -> tuple[Any, str]:
    """A pyarrow filesystem for ``uri`` and the path inside it (``bucket/prefix`` for S3)."""
    from loopml.core.objectstore import s3_filesystem

    return s3_filesystem(uri, options, error=LakeError)


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
