"""What a setting may be: small declarative constraints and the one function that checks them.

Modelled on scikit-learn's ``_parameter_constraints``: each setting names its constraint once,
in a table (``pipeline.settings.CONSTRAINTS``), and ``check`` turns a value that breaks it into
a one-line ``ConfigError`` naming the config key. Nothing here knows a particular setting.
The models' hyper-parameters are not here: the estimators keep scikit-learn's own table
(``pipeline.models.base.MLPBase._parameter_constraints``), and the settings translate its
errors into config keys.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    options: tuple

    def problem(self, value: Any) -> str | None:
        if any(value == o and type(value) is type(o) for o in self.options):
            return None
        return f"{value!r} is not one of {', '.join(map(str, self.options))}"


@dataclass(frozen=True)
class Number:
    """A real (or, with ``integer``, a whole) number in an interval; bounds are optional."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else ""
        if self.low > -math.inf and self.high < math.inf:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            bounds = f"in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low > -math.inf:
            bounds = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            bounds = "finite"
        return f"{kind} {bounds}".strip()

    def problem(self, value: Any) -> str | None:
        kinds = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"must be {self.describe() if self.integer else 'a number ' + self.describe()}"
        too_low = value < self.low or (self.low_open and value == self.low)
        too_high = value > self.high or (self.high_open and value == self.high)
        if math.isnan(value) or math.isinf(value) or too_low or too_high:
            return f"must be {self.describe()}"
        return None


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class Text:
    """A string; with ``optional``, also null."""

    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) or (self.optional and value is None):
            return None
        return "must be a string" + (" or null" if self.optional else "")


@dataclass(frozen=True)
class ListOf:
    """A list whose every item meets ``item``; ``non_empty`` refuses []."""

    item: Choice | Number | Text
    non_empty: bool = False

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list | tuple):
            return "must be a list"
        if self.non_empty and not value:
            return "must not be empty"
        for entry in value:
            found = self.item.problem(entry)
            if found:
                return f"has an invalid entry {entry!r} ({found})"
        return None


@dataclass(frozen=True)
class Optional:
    """null (meaning "the default"), or a value that meets ``inner``."""

    inner: Choice | Number | Text

    def problem(self, value: Any) -> str | None:
        return None if value is None else self.inner.problem(value)


Constraint = Choice | Number | Flag | Text | ListOf | Optional


def check(key: str, value: Any, constraint: Constraint) -> None:
    """Raise ``ConfigError`` (``key`` named first) when ``value`` breaks ``constraint``."""
    found = constraint.problem(value)
    if found is None:
        return
    if found.startswith(("must", "has")):
        raise ConfigError(f"{key} {found}, got {value!r}")
    raise ConfigError(f"{key}: {found}")


def check_all(table: Mapping[str, Constraint], values: Mapping[str, Any], prefix: str = "") -> None:
    """Check every ``values[name]`` against ``table[name]`` (keys reported as ``prefix+name``)."""
    for name, value in values.items():
        if name in table:
            check(prefix + name, value, table[name])
