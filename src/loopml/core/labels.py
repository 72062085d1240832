"""Class labels: the one rule for the positive class, and matching a label someone sends back.

Every stage that needs the positive class (explore, train, evaluate, serve, monitor, loop) asks
``positive_label`` here, with the classes as the model knows them; training records the answer
in the model bundle, and later stages read it from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopml.core.errors import TargetError

# Spellings of "the interesting class", looked for in this order when none is configured.
POSITIVE_NAMES = ("true", "1", "yes", "y", "positive", "pos")


def label_text(value: Any) -> str:
    """A label as comparable text: stripped and lower-case, ``True`` as ``true``, ``1.0`` as ``1``.

    >>> label_text(True), label_text(1.0), label_text(" Yes ")
    ('true', '1', 'yes')
    """
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def match_label(value: Any, classes: Sequence[Any]) -> Any | None:
    """The element of ``classes`` that ``value`` names, or None when it names none.

    An exact match wins; otherwise labels compare as ``label_text`` (so ``"YES"`` names
    ``"yes"``, ``"1"`` names ``1`` and ``"true"`` names ``True``).

    >>> match_label("YES", ["no", "yes"]), match_label("1", [0, 1]), match_label("maybe", ["no"])
    ('yes', 1, None)
    """
    if value is None:
        return None
    for c in classes:
        if type(c) is type(value) and c == value:
            return c
    text = label_text(value)
    for c in classes:
        if label_text(c) == text:
            return c
    return None


def positive_label(
    classes: Sequence[Any], configured: Any = None, *, counts: Sequence[int] | None = None
) -> Any | None:
    """The positive class of a classification target: the one rule every stage uses.

    ``configured`` (``problem.positive_label``) wins and must name a class. Otherwise a binary
    target's positive class is the one spelled like ``true``/``1``/``yes``/``positive``; failing
    that, the rarer class when ``counts`` are given, else the last class in sorted order. A
    target with more than two classes has no positive class (None) unless one is configured.

    >>> positive_label(["no", "yes"]), positive_label([0, 1]), positive_label([False, True])
    ('yes', 1, True)
    >>> positive_label(["churn", "stay"], counts=[10, 90]), positive_label(["a", "b", "c"])
    ('churn', None)
    """
    distinct = sorted(set(classes), key=label_text)
    if configured is not None:
        found = match_label(configured, distinct)
        if found is None:
            raise TargetError(
                f"problem.positive_label {configured!r} is not one of the target's classes "
                f"{[c for c in distinct][:20]}.",
                hint="Set problem.positive_label in loopml.yaml to one of the listed classes, "
                "or remove it to let loopml choose.",
            )
        return found
    if len(distinct) != 2:
        return None
    for name in POSITIVE_NAMES:
        for c in distinct:
            if label_text(c) == name:
                return c
    if counts is not None:
        by_class = dict(zip(classes, counts, strict=True))
        return min(distinct, key=lambda c: (by_class.get(c, 0), label_text(c)))
    return distinct[-1]


def positive_index(classes: Sequence[Any], positive: Any) -> int | None:
    """The position of ``positive`` in ``classes`` (the model's class order), or None.

    >>> positive_index(("no", "yes"), "yes"), positive_index(("a", "b", "c"), None)
    (1, None)
    """
    if positive is None:
        return None
    found = match_label(positive, classes)
    if found is None:
        return None
    return list(classes).index(found)
