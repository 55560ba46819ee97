"""Checks of the arguments of the public functions, made before anything is computed: a value of
the wrong type or out of range is an :class:`InvalidArgumentError` naming the argument and the
value as given (cut when long), never a ``TypeError`` or ``OverflowError`` from deep inside.

Integers are Python integers (or anything with ``__index__``, such as numpy's), never ``bool``: a
flag passed where a count is expected is a mistake, not 0 or 1.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from kube_engine._core import InvalidArgumentError, Snapshot, UnknownNameError

#: The largest value of an unsigned 64-bit count or seed.
U64 = 2**64 - 1
#: The largest value of a signed 32-bit one (CP-SAT's seeds and worker counts).
I32 = 2**31 - 1
#: The most seconds any wait takes: about 68 years, within every clock and socket timeout.
MAX_SECONDS = float(2**31)
#: The longest piece of a value shown in a message.
SHOWN = 100


def shown(value: Any) -> str:
    """``value``'s repr, cut to :data:`SHOWN` characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def invalid(argument: str, message: str) -> InvalidArgumentError:
    """``argument`` (or a path into one: ``prices['n1']``) is unusable."""
    err = InvalidArgumentError(message)
    err.argument = _root(argument)
    return err


def unknown(argument: str, message: str) -> UnknownNameError:
    """``argument`` names something the snapshot does not have."""
    err = UnknownNameError(message)
    err.argument = _root(argument)
    return err


def _root(path: str) -> str:
    return re.split(r"[\[.]", path, maxsplit=1)[0]


def integer(argument: str, value: Any, low: int = 0, high: int | None = U64) -> int:
    """``value`` as an int in ``low..high`` (``high`` None: no upper bound)."""
    if not isinstance(value, bool):
        try:
            number = operator.index(value)
        except TypeError:
            pass
        else:
            if low <= number and (high is None or number <= high):
                return number
    within = f"at least {low}" if high is None else f"in {low}..{high}"
    raise invalid(argument, f"{argument} must be an integer {within}, got {shown(value)}")


def optional_integer(argument: str, value: Any, low: int = 0, high: int | None = U64) -> int | None:
    return None if value is None else integer(argument, value, low, high)


def number(
    argument: str,
    value: Any,
    *,
    positive: bool = False,
    infinite: bool = False,
    high: float = math.inf,
) -> float:
    """``value`` as a float that is at least 0 (more than 0 when ``positive``), finite unless
    ``infinite``, at most ``high``; NaN never."""
    if not isinstance(value, bool) and isinstance(value, numbers.Real):
        try:
            x = float(value)
        except OverflowError:  # an int beyond any float
            x = math.copysign(math.inf, value)
        if (x > 0 if positive else x >= 0) and (infinite or math.isfinite(x)) and x <= high:
            return x
    bound = "more than 0" if positive else "at least 0"
    kind = "a number" if infinite else "a finite number"
    most = f" and at most {high:g}" if high < math.inf else ""
    raise invalid(argument, f"{argument} must be {kind} {bound}{most}, got {shown(value)}")


def flag(argument: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(argument, f"{argument} must be True or False, got {shown(value)}")
    return value


def text(argument: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(argument, f"{argument} must be a string, got {shown(value)}")
    return value


def optional_text(argument: str, value: Any) -> str | None:
    return None if value is None else text(argument, value)


def choice(argument: str, value: Any, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(choices)
        raise invalid(argument, f"{argument} must be one of {listed}, got {shown(value)}")
    return value


def names(argument: str, value: Any) -> list[str]:
    """Names, from any iterable (a lone string is a mistake: it is not a list of its letters)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise invalid(argument, f"{argument} must be a list of names, got {shown(value)}")
    out = list(value)
    for item in out:
        if not isinstance(item, str):
            raise invalid(argument, f"{argument} must hold names (strings), got {shown(item)}")
    return out


def local_storage(argument: str, value: Any) -> bool | list[str]:
    """``allow_local_storage``: a bool, or the kinds of volume (the core checks their names)."""
    return value if isinstance(value, bool) else names(argument, value)


def snapshot(value: Any, argument: str = "snapshot") -> Snapshot:
    if not isinstance(value, Snapshot):
        raise invalid(argument, f"{argument} must be a Snapshot, got {shown(value)}")
    return value


def mapping(argument: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise invalid(argument, f"{argument} must be a mapping, got {shown(value)}")
    return value
