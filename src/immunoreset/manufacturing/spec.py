"""Release specifications of CAR T drug product, held as versioned data (YAML), not code.

A release specification lists the quality attributes a batch is tested for, each with its method,
unit and acceptance limit, and whether the result must be known and passing *before* release
(``stage: release``) or arrives after release (``stage: post_release``, e.g. the final sterility
result and the vector copy number in the Front Immunol 2024 process). A site loads its own file;
the package ships ``default-v1`` (``specs/default-v1.yaml``).

Source
------
Default specification built from the project specification ``peer-data.md`` §4 (analog data, not
zorpo-cel; zorpo-cel release specifications are UNCONFIRMED):

* CD20 CAR T point-of-care process, *Front Immunol* 2024 Sep 25;15:1328368,
  doi:10.3389/fimmu.2024.1328368, PMC11461191, Table 1 — limits of ``default-v1``.
* ARI-0001 (Barcelona, academic CD19 CAR), PMC6319086, Table 2 — alternatives, given as
  comments in the YAML file.

YAML layout
-----------
::

    spec_id: default             # letters, digits, . _ - (no spaces)
    version: 1                   # whole number >= 1; the pair (spec_id, version) is unique
    effective: 2026-11-25        # date from which the site applies it
    title: ...
    source_notes: [..., ...]
    attributes:
      - name: cd3_viability
        description: ...
        method: flow cytometry (7-AAD)
        unit: "%"
        limit_type: min          # min | max | range | equals
        lower: 80                # min and range
        lower_inclusive: true    # ">= 80" (true) or "> 80" (false)
        upper: ...               # max and range
        upper_inclusive: ...
        expected: negative       # equals only
        allowed_results: [negative, positive]   # equals only: every word a lab may report
        result_range: [0, 100]   # numeric only, optional: plausible results (else InvalidInput)
        stage: release           # release (blocks release) | post_release
        source: ...
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from immunoreset.errors import InvalidInput, check_choice

__all__ = [
    "LIMIT_TYPES",
    "STAGES",
    "ReleaseSpec",
    "SpecAttribute",
    "available_specs",
    "default_spec",
    "load_spec",
    "parse_spec",
    "spec_to_dict",
]

#: Kinds of acceptance limit: name -> what the limit needs.
LIMIT_TYPES: Mapping[str, str] = {
    "min": "a lower limit (lower, lower_inclusive)",
    "max": "an upper limit (upper, upper_inclusive)",
    "range": "both limits (lower, upper and their inclusiveness)",
    "equals": "an expected word (expected) among allowed_results",
}

#: When a result is due: name -> whether a pending result blocks release.
STAGES: Mapping[str, bool] = {"release": True, "post_release": False}

_SPEC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BUILTIN = "specs"
_TOP_KEYS = ("spec_id", "version", "effective", "title", "source_notes", "attributes")
_ATTR_KEYS = (
    "name",
    "description",
    "method",
    "unit",
    "limit_type",
    "lower",
    "lower_inclusive",
    "upper",
    "upper_inclusive",
    "expected",
    "allowed_results",
    "result_range",
    "stage",
    "source",
)


@dataclass(frozen=True, slots=True)
class SpecAttribute:
    """One quality attribute of a release specification and its acceptance limit.

    Attributes
    ----------
    name : str
        Machine name (``cd3_viability``), lower-case letters, digits and ``_``.
    description, method, unit, source : str
        What is measured, how, in which unit (``""`` for categorical results) and where the limit
        comes from.
    limit_type : str
        One of :data:`LIMIT_TYPES`.
    lower, upper : float | None
        Limits of ``min`` / ``max`` / ``range`` attributes, in ``unit``.
    lower_inclusive, upper_inclusive : bool
        Whether a result equal to the limit passes (``≥`` / ``≤``) or fails (``>`` / ``<``).
    expected : str | None
        The passing word of an ``equals`` attribute (``"negative"``).
    allowed_results : tuple[str, ...]
        Every word a lab may report for an ``equals`` attribute (lower case).
    result_range : tuple[float, float] | None
        Plausible numeric results; anything outside is refused as a data-entry error.
    stage : str
        ``"release"`` (must pass before release) or ``"post_release"``.
    """

    name: str
    description: str
    method: str
    unit: str
    limit_type: str
    lower: float | None
    upper: float | None
    lower_inclusive: bool
    upper_inclusive: bool
    expected: str | None
    allowed_results: tuple[str, ...]
    result_range: tuple[float, float] | None
    stage: str
    source: str

    @property
    def numeric(self) -> bool:
        """``True`` for numeric limits (min, max, range), ``False`` for ``equals``."""
        return self.limit_type != "equals"

    @property
    def blocking(self) -> bool:
        """``True`` when the result must be known and passing before release."""
        return STAGES[self.stage]

    @property
    def limit_text(self) -> str:
        """The limit as written, e.g. ``"≥ 80 %"``, ``"< 5 EU/mL"``, ``"negative"``."""
        return _LIMIT_TEXT[self.limit_type](self)


def _unit(a: SpecAttribute) -> str:
    return f" {a.unit}" if a.unit else ""


def _lo(a: SpecAttribute) -> str:
    return f"{'≥' if a.lower_inclusive else '>'} {a.lower:g}"


def _hi(a: SpecAttribute) -> str:
    return f"{'≤' if a.upper_inclusive else '<'} {a.upper:g}"


_LIMIT_TEXT: Mapping[str, Callable[[SpecAttribute], str]] = {
    "min": lambda a: _lo(a) + _unit(a),
    "max": lambda a: _hi(a) + _unit(a),
    "range": lambda a: f"{_lo(a)} and {_hi(a)}{_unit(a)}",
    "equals": lambda a: str(a.expected),
}


@dataclass(frozen=True, slots=True)
class ReleaseSpec:
    """A versioned release specification: identity, provenance and its attributes.

    ``key`` (``"default-v1"``) names the exact version; a release decision stores
    ``spec_id`` and ``version`` so a batch keeps the specification it was released against.
    """

    spec_id: str
    version: int
    effective: dt.date
    title: str
    source_notes: tuple[str, ...]
    attributes: tuple[SpecAttribute, ...]

    @property
    def key(self) -> str:
        """``"<spec_id>-v<version>"``, e.g. ``"default-v1"``."""
        return f"{self.spec_id}-v{self.version}"

    @property
    def names(self) -> tuple[str, ...]:
        """Attribute names in specification order."""
        return tuple(a.name for a in self.attributes)

    def attribute(self, name: str) -> SpecAttribute:
        """The attribute called ``name``; :class:`InvalidInput` listing the names otherwise."""
        check_choice("attribute", name, self.names)
        return next(a for a in self.attributes if a.name == name)


# --------------------------------------------------------------------------- parsing
def _where(index: int, raw: Mapping[str, Any]) -> str:
    name = raw.get("name")
    return f"attributes[{name}]" if isinstance(name, str) and name else f"attributes[{index}]"


def _req_text(field: str, value: Any, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "a non-empty text")
    if pattern is not None and not pattern.match(value):
        raise InvalidInput(field, value, f"text matching {pattern.pattern}")
    return value.strip()


def _opt_number(field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(field, value, "a finite number")
    return float(value)


def _bool(field: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(field, value, "true or false")
    return value


def _parse_attribute(index: int, raw: Any) -> SpecAttribute:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"attributes[{index}]", raw, "a mapping of attribute keys")
    where = _where(index, raw)
    unknown = sorted(set(map(str, raw)) - set(_ATTR_KEYS))
    if unknown:
        raise InvalidInput(
            f"{where}.{unknown[0]}", raw[unknown[0]], "one of: " + ", ".join(_ATTR_KEYS)
        )
    name = _req_text(f"{where}.name", raw.get("name"), pattern=_NAME)
    limit_type = check_choice(f"{where}.limit_type", raw.get("limit_type"), LIMIT_TYPES)
    stage = check_choice(f"{where}.stage", raw.get("stage"), STAGES)
    unit = raw.get("unit", "")
    if not isinstance(unit, str):
        raise InvalidInput(f"{where}.unit", unit, "a text (empty for categorical results)")
    lower = _opt_number(f"{where}.lower", raw.get("lower"))
    upper = _opt_number(f"{where}.upper", raw.get("upper"))
    needs = _NEEDS[limit_type]
    for key, value in (("lower", lower), ("upper", upper)):
        if (key in needs) != (value is not None):
            want = f"given for limit_type {limit_type}" if key in needs else "absent"
            raise InvalidInput(
                f"{where}.{key}", raw.get(key), f"{want} ({LIMIT_TYPES[limit_type]})"
            )
    if lower is not None and upper is not None and lower >= upper:
        raise InvalidInput(f"{where}.upper", upper, f"greater than lower ({lower:g})")
    expected = raw.get("expected")
    allowed_raw = raw.get("allowed_results")
    allowed: tuple[str, ...] = ()
    if limit_type == "equals":
        if not isinstance(allowed_raw, list | tuple) or len(allowed_raw) < 2:
            raise InvalidInput(
                f"{where}.allowed_results", allowed_raw, "a list of at least 2 words"
            )
        allowed = tuple(_req_text(f"{where}.allowed_results", w).lower() for w in allowed_raw)
        if len(set(allowed)) != len(allowed):
            raise InvalidInput(f"{where}.allowed_results", allowed_raw, "distinct words")
        expected = check_choice(f"{where}.expected", _norm_word(expected), allowed)
    else:
        for key in ("expected", "allowed_results"):
            if raw.get(key) is not None:
                raise InvalidInput(f"{where}.{key}", raw[key], "absent for a numeric limit")
    result_range = _parse_range(f"{where}.result_range", raw.get("result_range"), limit_type)
    if result_range is not None:
        for key, value in (("lower", lower), ("upper", upper)):
            if value is not None and not result_range[0] <= value <= result_range[1]:
                raise InvalidInput(
                    f"{where}.{key}",
                    value,
                    f"within result_range {result_range[0]:g}–{result_range[1]:g}",
                )
    return SpecAttribute(
        name=name,
        description=_req_text(f"{where}.description", raw.get("description")),
        method=_req_text(f"{where}.method", raw.get("method")),
        unit=unit.strip(),
        limit_type=limit_type,
        lower=lower,
        upper=upper,
        lower_inclusive=_bool(f"{where}.lower_inclusive", raw.get("lower_inclusive"), True),
        upper_inclusive=_bool(f"{where}.upper_inclusive", raw.get("upper_inclusive"), True),
        expected=expected,
        allowed_results=allowed,
        result_range=result_range,
        stage=stage,
        source=_req_text(f"{where}.source", raw.get("source")),
    )


_NEEDS: Mapping[str, frozenset[str]] = {
    "min": frozenset({"lower"}),
    "max": frozenset({"upper"}),
    "range": frozenset({"lower", "upper"}),
    "equals": frozenset(),
}


def _norm_word(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _parse_range(field: str, value: Any, limit_type: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if limit_type == "equals":
        raise InvalidInput(field, value, "absent for a categorical (equals) attribute")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise InvalidInput(field, value, "a pair [lowest, highest] of numbers")
    lo = _opt_number(field, value[0])
    hi = _opt_number(field, value[1])
    if lo is None or hi is None or lo >= hi:
        raise InvalidInput(field, value, "a pair [lowest, highest] with lowest < highest")
    return (lo, hi)


def parse_spec(data: Any) -> ReleaseSpec:
    """Validate a specification given as plain data (a mapping as read from YAML).

    Parameters
    ----------
    data : Mapping
        Keys ``spec_id``, ``version`` (int ≥ 1), ``effective`` (date), ``title``,
        ``source_notes`` (list of text), ``attributes`` (list of attribute mappings, see the
        module docstring).

    Returns
    -------
    ReleaseSpec

    Raises
    ------
    InvalidInput
        Naming the attribute and key, e.g. ``attributes[endotoxin].limit_type``.

    Examples
    --------
    >>> spec = parse_spec(spec_to_dict(default_spec()))
    >>> spec.key
    'default-v1'
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("spec", data, "a mapping with keys " + ", ".join(_TOP_KEYS))
    unknown = sorted(set(map(str, data)) - set(_TOP_KEYS))
    if unknown:
        raise InvalidInput(unknown[0], data[unknown[0]], "one of: " + ", ".join(_TOP_KEYS))
    spec_id = _req_text("spec_id", data.get("spec_id"), pattern=_SPEC_ID)
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 10_000:
        raise InvalidInput("version", version, "a whole number within 1–10000")
    effective = data.get("effective")
    if isinstance(effective, dt.datetime) or not isinstance(effective, dt.date):
        raise InvalidInput("effective", effective, "a calendar date (YYYY-MM-DD)")
    title = _req_text("title", data.get("title"))
    notes_raw = data.get("source_notes", [])
    if not isinstance(notes_raw, list | tuple):
        raise InvalidInput("source_notes", notes_raw, "a list of texts")
    notes = tuple(_req_text("source_notes", n) for n in notes_raw)
    raw_attrs = data.get("attributes")
    if not isinstance(raw_attrs, list | tuple) or not raw_attrs:
        raise InvalidInput("attributes", raw_attrs, "a non-empty list of attributes")
    attrs = tuple(_parse_attribute(i, a) for i, a in enumerate(raw_attrs))
    names = [a.name for a in attrs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"attributes[{dupes[0]}].name", dupes[0], "a name used only once")
    return ReleaseSpec(
        spec_id=spec_id,
        version=version,
        effective=effective,
        title=title,
        source_notes=notes,
        attributes=attrs,
    )


def spec_to_dict(spec: ReleaseSpec) -> dict[str, Any]:
    """Plain data of ``spec`` (the YAML layout), for storing a snapshot beside a decision."""
    if not isinstance(spec, ReleaseSpec):
        raise InvalidInput("spec", spec, "a ReleaseSpec")
    attrs = []
    for a in spec.attributes:
        row: dict[str, Any] = {
            "name": a.name,
            "description": a.description,
            "method": a.method,
            "unit": a.unit,
            "limit_type": a.limit_type,
            "stage": a.stage,
            "source": a.source,
        }
        if a.lower is not None:
            row["lower"] = a.lower
            row["lower_inclusive"] = a.lower_inclusive
        if a.upper is not None:
            row["upper"] = a.upper
            row["upper_inclusive"] = a.upper_inclusive
        if a.limit_type == "equals":
            row["expected"] = a.expected
            row["allowed_results"] = list(a.allowed_results)
        if a.result_range is not None:
            row["result_range"] = list(a.result_range)
        attrs.append(row)
    return {
        "spec_id": spec.spec_id,
        "version": spec.version,
        "effective": spec.effective,
        "title": spec.title,
        "source_notes": list(spec.source_notes),
        "attributes": attrs,
    }


# --------------------------------------------------------------------------- loading
def available_specs() -> tuple[str, ...]:
    """Keys of the specifications shipped with the package (``"default-v1"`` …)."""
    folder = resources.files("immunoreset.manufacturing").joinpath(_BUILTIN)
    return tuple(
        sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
    )


def load_spec(path_or_id: str | Path) -> ReleaseSpec:
    """Load and validate a release specification from a YAML file or a shipped key.

    Parameters
    ----------
    path_or_id : str | pathlib.Path
        A path to a ``.yaml``/``.yml`` file, or the key of a shipped specification
        (:func:`available_specs`, e.g. ``"default-v1"``).

    Returns
    -------
    ReleaseSpec

    Raises
    ------
    InvalidInput
        Unknown key, unreadable file, malformed YAML, or a bad attribute (the error names the
        attribute and key, e.g. ``attributes[endotoxin].upper``). A shipped file whose content
        does not match its key is refused too.

    Examples
    --------
    >>> load_spec("default-v1").attribute("endotoxin").limit_text
    '< 5 EU/mL'
    """
    if isinstance(path_or_id, Path) or (
        isinstance(path_or_id, str) and path_or_id.lower().endswith((".yaml", ".yml"))
    ):
        path = Path(path_or_id)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                "path", str(path), f"a readable YAML file ({exc.strerror})"
            ) from None
        return _from_text(text, str(path))
    keys = available_specs()
    key = check_choice("spec", path_or_id, keys)
    text = (
        resources.files("immunoreset.manufacturing")
        .joinpath(_BUILTIN, f"{key}.yaml")
        .read_text(encoding="utf-8")
    )
    spec = _from_text(text, key)
    if spec.key != key:
        raise InvalidInput("spec_id", spec.key, f"the file's own key {key}")
    return spec


def default_spec() -> ReleaseSpec:
    """The shipped default specification ``default-v1`` (peer-data §4, Front Immunol 2024).

    Examples
    --------
    >>> spec = default_spec()
    >>> spec.attribute("cd3_viability").limit_text
    '≥ 80 %'
    """
    return load_spec("default-v1")


def _from_text(text: str, origin: str) -> ReleaseSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput("spec", origin, f"valid YAML (parse error{where})") from None
    return parse_spec(data)
