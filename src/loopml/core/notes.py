"""Comments on the ``problem.exclude`` items of ``loopml.yaml``: why each column is left out
(``loopml init`` writes them; a later save keeps them). YAML loaders drop comments, so they are
read and written as text, on the lines of the one list they belong to."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

_EXCLUDE_KEY = re.compile(r"^(\s*)exclude:\s*$")
_ITEM = re.compile(r"^(\s*)- (.*?)(?:\s+#\s?(.*))?$")


def _exclude_items(text: str) -> Iterator[tuple[int, re.Match[str]]]:
    """(line number, match) of each item of the ``exclude:`` list under ``problem:``."""
    lines = text.splitlines()
    in_problem = False
    for i, line in enumerate(lines):
        if line and not line[0].isspace():
            in_problem = line.rstrip() == "problem:"
            continue
        key = _EXCLUDE_KEY.match(line) if in_problem else None
        if key is None:
            continue
        for j in range(i + 1, len(lines)):
            item = _ITEM.match(lines[j])
            if item is None or len(item.group(1)) < len(key.group(1)):
                break
            yield j, item
        return


def exclude_notes(text: str) -> dict[str, str]:
    r"""The comments on the ``problem.exclude`` items of a ``loopml.yaml`` text, by column.

    >>> exclude_notes("problem:\n  exclude:\n  - dep_delay  # known after departure\n  - x\n")
    {'dep_delay': 'known after departure'}
    """
    import yaml

    found = {}
    for _, item in _exclude_items(text):
        if item.group(3):
            try:
                name = yaml.safe_load(item.group(2))
            except yaml.YAMLError:
                continue
            found[str(name)] = item.group(3).strip()
    return found


def with_exclude_notes(text: str, notes: Mapping[str, str]) -> str:
    import yaml

    lines = text.splitlines()
    for j, item in _exclude_items(text):
        name = str(yaml.safe_load(item.group(2)))
        note = " ".join(str(notes.get(name, "")).split())
        if note:
            lines[j] = f"{item.group(1)}- {item.group(2)}  # {note}"
    return "\n".join(lines) + "\n"
