"""The project's exceptions.

Every error carries its data as attributes so that the CLI, the web layer and the importers can
turn it into a message for the right field without parsing text.

Hierarchy::

    ImmunoresetError
    ├── InvalidInput (also ValueError)   a value outside its allowed range or vocabulary
    │   └── ImportRefused                 an import with one or more invalid values (all listed)
    ├── NotFound (also LookupError)      a study ID, bag or batch that does not exist (or is hidden)
    ├── PermissionDenied                 the user's role or site does not allow the action
    └── ChainOfIdentityError             a bag/batch/patient link that must not be made
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ChainOfIdentityError",
    "ImmunoresetError",
    "ImportRefused",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "yaml_path",
]


class ImmunoresetError(Exception):
    """Base class of every error the project raises on purpose."""


class InvalidInput(ImmunoresetError, ValueError):
    """A value that is out of range, of the wrong type, or not in the allowed vocabulary.

    Attributes
    ----------
    field : str
        The name of the offending input (``temperature_c``, ``oxygen_device`` …).
    value : Any
        The value that was given.
    allowed : str
        The allowed range or vocabulary, in words (``"25–45 °C"``, ``"one of: a, b"``).
    row, column : int | None, str | None
        Where an import found it (1-based data row; column name), when it came from a file.
    file : str | None
        The import file, when it came from one.
    """

    def __init__(
        self,
        field: str,
        value: Any,
        allowed: str,
        *,
        row: int | None = None,
        column: str | None = None,
        file: str | None = None,
        message: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.row = row
        self.column = column
        self.file = file
        self.message = message or f"{field} must be {allowed}; got {value!r}"
        super().__init__(self._render())

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only location fields: rebuild through a helper so errors cross processes
        return (
            _rebuild_invalid_input,
            (self.field, self.value, self.allowed, self.row, self.column, self.file, self.message),
        )

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        prefix = f"{', '.join(where)}: " if where else ""
        return prefix + self.message

    def located(
        self, *, row: int | None = None, column: str | None = None, file: str | None = None
    ) -> InvalidInput:
        """Return a copy that also says where (file, row, column) the value came from."""
        return InvalidInput(
            self.field,
            self.value,
            self.allowed,
            row=row if row is not None else self.row,
            column=column or self.column or self.field,
            file=file or self.file,
            message=self.message,
        )


def _rebuild_invalid_input(
    field: str,
    value: Any,
    allowed: str,
    row: int | None,
    column: str | None,
    file: str | None,
    message: str,
) -> InvalidInput:
    return InvalidInput(field, value, allowed, row=row, column=column, file=file, message=message)


#: How many errors an :class:`ImportRefused` message lists (all are kept in ``errors``).
MAX_LISTED = 50


class ImportRefused(InvalidInput):
    """An import refused as a whole: every invalid value found, each located; nothing written.

    ``errors`` holds the individual :class:`InvalidInput` errors (each naming where it came
    from: file, row, record, field, value). The message lists them all, one a line, so a data
    manager can fix a file in one pass instead of one error per attempt.
    """

    def __init__(self, errors: Iterable[InvalidInput], *, what: str = "import") -> None:
        self.errors = list(errors)
        first = self.errors[0]
        lines = [f"{what} refused, nothing written: {len(self.errors)} error(s)"]
        lines += [f"  {e}" for e in self.errors[:MAX_LISTED]]
        if len(self.errors) > MAX_LISTED:
            lines.append(f"  … and {len(self.errors) - MAX_LISTED} more")
        super().__init__(
            first.field,
            first.value,
            first.allowed,
            row=first.row,
            column=first.column,
            file=first.file,
            message="\n".join(lines),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (ImportRefused, (self.errors,))

    def _render(self) -> str:
        return self.message


class NotFound(ImmunoresetError, LookupError):
    """Something asked for by ID does not exist, or the user may not see it."""

    def __init__(self, kind: str, key: Any) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class PermissionDenied(ImmunoresetError):
    """The user's role or site membership does not allow this action."""

    def __init__(self, user: str, action: str, why: str) -> None:
        self.user = user
        self.action = action
        self.why = why
        super().__init__(f"{user} may not {action}: {why}")


class ChainOfIdentityError(ImmunoresetError):
    """A link between patient, apheresis, batch, bag and infusion that must not be made."""

    def __init__(self, message: str, *, bag_id: str | None = None, study_id: str | None = None):
        self.bag_id = bag_id
        self.study_id = study_id
        super().__init__(message)


# --------------------------------------------------------------------------- checking helpers
def check_range(
    field: str,
    value: Any,
    lo: float | None,
    hi: float | None,
    unit: str = "",
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
    allow_none: bool = False,
) -> Any:
    """Return ``value`` if it is a real number within [lo, hi]; raise :class:`InvalidInput`.

    Booleans and strings are refused (a ``True`` is not a temperature), NaN is refused.
    """
    if value is None:
        if allow_none:
            return None
        raise InvalidInput(field, value, _describe(lo, hi, unit, integer, lo_open, hi_open))
    kind = type(value)
    if (kind is not float and kind is not int) and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        plain = _plain_number(value)
        if plain is None:
            raise InvalidInput(field, value, _describe(lo, hi, unit, integer, lo_open, hi_open))
        value = plain
    ok = value == value  # NaN fails
    if ok and integer and not (isinstance(value, int) or float(value).is_integer()):
        ok = False
    if ok and lo is not None and (value < lo or (lo_open and value == lo)):
        ok = False
    if ok and hi is not None and (value > hi or (hi_open and value == hi)):
        ok = False
    if not ok:
        # the message is built only on failure: this check runs millions of times on import
        raise InvalidInput(field, value, _describe(lo, hi, unit, integer, lo_open, hi_open))
    return int(value) if integer else value


def _plain_number(value: Any) -> Any:
    """A NumPy scalar as a Python number; None for anything that is not a real number."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return None
    if isinstance(value, np.integer | np.floating) and not isinstance(value, np.bool_):
        return value.item()
    return None


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise listing the allowed words."""
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        hint = ""
        if isinstance(value, str):
            import difflib

            close = difflib.get_close_matches(value, options, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        raise InvalidInput(
            field,
            value,
            "one of: " + ", ".join(options),
            message=f"{field} must be one of: {', '.join(options)}; got {value!r}{hint}",
        )
    return value


def _describe(
    lo: float | None, hi: float | None, unit: str, integer: bool, lo_open: bool, hi_open: bool
) -> str:
    kind = "a whole number" if integer else "a number"
    u = f" {unit}" if unit else ""
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"within {_fmt(lo)}–{_fmt(hi)}{u}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '≥'} {_fmt(lo)}{u}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '≤'} {_fmt(hi)}{u}")
    return f"{kind} " + " and ".join(parts) if parts else kind


def _fmt(x: float) -> str:
    return f"{x:g}"


_TYPE_TAGS = re.compile(
    r"^(float|int|str|bool|literal\[.*\]|function-.*|constrained-.*|tagged-union.*)$"
)


def yaml_path(loc: tuple[Any, ...]) -> str:
    """YAML path (``arms[1].dose_per_kg``) from a pydantic error location.

    Union member tags are dropped, and so is pydantic's ``[key]`` tag of a bad mapping key (the
    key itself names the place). Used by every YAML reader (trial designs, fit specs).
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]" or _TYPE_TAGS.match(str(part)):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out
