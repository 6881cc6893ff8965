"""Quality control of a batch against a release specification, and the release decision.

Each attribute's result is compared with its limit exactly as written in the specification:
"≥ 80 %" passes at 80.0 and fails at 79.99; "< 5 EU/mL" fails at 5.0. A missing result is
``pending``. A batch may be released only when no release-stage (blocking) attribute is pending
and every failed attribute is covered by a documented, approved :class:`Deviation`. The decision
keeps the specification's id and version and the QC it was based on, so evaluating later results
against a newer specification never changes an earlier decision.

Source
------
Limits come from the specification data (:mod:`immunoreset.manufacturing.spec`; the default is
built from peer-data.md §4, *Front Immunol* 2024;15:1328368, Table 1). The rules that a failed
attribute needs a documented deviation (who, why) and that the decision records who released the
batch against which specification version are those of issue 4.

Settings
--------
* Four-eyes rule (project choice, no source): a deviation's ``approved_by`` must differ from its
  ``raised_by``.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from immunoreset.errors import ImmunoresetError, InvalidInput, check_range
from immunoreset.manufacturing.spec import ReleaseSpec, SpecAttribute

__all__ = [
    "QC_STATUSES",
    "AttributeResult",
    "BatchQc",
    "Deviation",
    "ReleaseDecision",
    "ReleaseRefused",
    "evaluate_attribute",
    "evaluate_batch",
    "release_decision",
]

#: Status of one attribute or of a whole batch's QC.
QC_STATUSES: tuple[str, ...] = ("pass", "fail", "pending")

QcValue = float | int | str | None


class ReleaseRefused(ImmunoresetError):
    """A batch that must not be released (failed attribute without deviation, or pending).

    Attributes
    ----------
    batch_id : str | None
    failed : tuple[str, ...]
        Failed attributes not covered by a deviation.
    pending : tuple[str, ...]
        Release-stage attributes without a result.
    """

    def __init__(
        self,
        message: str,
        *,
        batch_id: str | None,
        failed: tuple[str, ...] = (),
        pending: tuple[str, ...] = (),
    ) -> None:
        self.batch_id = batch_id
        self.failed = failed
        self.pending = pending
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class AttributeResult:
    """The outcome of one attribute: ``status`` pass / fail / pending and why.

    Attributes
    ----------
    attribute : str
    status : str
        One of :data:`QC_STATUSES`.
    value : float | str | None
        The result as evaluated (numbers as float, words lower case); ``None`` when pending.
    unit : str
    limit : str
        The limit as written, e.g. ``"≥ 80 %"``.
    blocking : bool
        Whether the attribute must pass before release.
    reason : str
        One line, e.g. ``"endotoxin 5 EU/mL is not < 5 EU/mL"``.
    """

    attribute: str
    status: str
    value: float | str | None
    unit: str
    limit: str
    blocking: bool
    reason: str

    @property
    def reasons(self) -> tuple[str, ...]:
        return (self.reason,)


def _passes_min(a: SpecAttribute, x: float) -> bool:
    lower = -math.inf if a.lower is None else a.lower
    return bool((operator.ge if a.lower_inclusive else operator.gt)(x, lower))


def _passes_max(a: SpecAttribute, x: float) -> bool:
    upper = math.inf if a.upper is None else a.upper
    return bool((operator.le if a.upper_inclusive else operator.lt)(x, upper))


_PASSES: Mapping[str, Callable[[SpecAttribute, Any], bool]] = {
    "min": _passes_min,
    "max": _passes_max,
    "range": lambda a, x: _passes_min(a, x) and _passes_max(a, x),
    "equals": lambda a, x: x == a.expected,
}


def _clean(attr: SpecAttribute, result: Any) -> float | str:
    if attr.numeric:
        if isinstance(result, str):
            raise InvalidInput(attr.name, result, f"a number in {attr.unit or 'its unit'}")
        lo, hi = attr.result_range if attr.result_range is not None else (None, None)
        value = check_range(attr.name, result, lo, hi, attr.unit)
        if not math.isfinite(value):
            raise InvalidInput(attr.name, result, "a finite number")
        return float(value)
    word = result.strip().lower() if isinstance(result, str) else result
    if not isinstance(word, str) or word not in attr.allowed_results:
        raise InvalidInput(attr.name, result, "one of: " + ", ".join(attr.allowed_results))
    return word


def evaluate_attribute(attr: SpecAttribute, result: QcValue) -> AttributeResult:
    """Evaluate one result against its attribute's limit.

    Parameters
    ----------
    attr : SpecAttribute
        From a :class:`~immunoreset.manufacturing.spec.ReleaseSpec`.
    result : float | str | None
        A number in ``attr.unit`` for numeric limits (within ``attr.result_range`` when the
        specification gives one), one of ``attr.allowed_results`` (case-insensitive) for
        ``equals`` limits, or ``None`` when the result is not yet available (pending).

    Returns
    -------
    AttributeResult

    Raises
    ------
    InvalidInput
        A word for a numeric attribute, a number for a categorical one, NaN, a bool, or a value
        outside the plausible range.

    Examples
    --------
    >>> from immunoreset.manufacturing.spec import default_spec
    >>> spec = default_spec()
    >>> evaluate_attribute(spec.attribute("cd3_viability"), 80.0).status
    'pass'
    >>> evaluate_attribute(spec.attribute("endotoxin"), 5.0).reason
    'endotoxin 5 EU/mL is not < 5 EU/mL'
    """
    if not isinstance(attr, SpecAttribute):
        raise InvalidInput("attr", attr, "a SpecAttribute")
    common: dict[str, Any] = {
        "attribute": attr.name,
        "unit": attr.unit,
        "limit": attr.limit_text,
        "blocking": attr.blocking,
    }
    if result is None:
        when = "before release" if attr.blocking else "post-release"
        return AttributeResult(
            status="pending",
            value=None,
            reason=f"{attr.name}: no result yet (due {when}; limit {attr.limit_text})",
            **common,
        )
    value = _clean(attr, result)
    ok = _PASSES[attr.limit_type](attr, value)
    shown = f"{value:g}{' ' + attr.unit if attr.unit else ''}" if attr.numeric else value
    verb = "is" if ok else "is not"
    return AttributeResult(
        status="pass" if ok else "fail",
        value=value,
        reason=f"{attr.name} {shown} {verb} {attr.limit_text}",
        **common,
    )


@dataclass(frozen=True, slots=True)
class BatchQc:
    """All attribute results of one batch against one specification version.

    Attributes
    ----------
    spec_id : str
    spec_version : int
    batch_id : str | None
    status : str
        ``"fail"`` if any attribute failed, else ``"pending"`` if any result is missing
        (post-release ones included), else ``"pass"``.
    attributes : tuple[AttributeResult, ...]
        In specification order.
    """

    spec_id: str
    spec_version: int
    batch_id: str | None
    status: str
    attributes: tuple[AttributeResult, ...]

    @property
    def spec_key(self) -> str:
        return f"{self.spec_id}-v{self.spec_version}"

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of failed attributes."""
        return tuple(r.attribute for r in self.attributes if r.status == "fail")

    @property
    def pending(self) -> tuple[str, ...]:
        """Names of attributes without a result (any stage)."""
        return tuple(r.attribute for r in self.attributes if r.status == "pending")

    @property
    def blocking_pending(self) -> tuple[str, ...]:
        """Release-stage attributes without a result: these block release."""
        return tuple(r.attribute for r in self.attributes if r.status == "pending" and r.blocking)

    @property
    def post_release_pending(self) -> tuple[str, ...]:
        """Post-release attributes still awaited."""
        return tuple(
            r.attribute for r in self.attributes if r.status == "pending" and not r.blocking
        )

    @property
    def releasable(self) -> bool:
        """``True`` when nothing failed and no release-stage result is missing."""
        return not self.failed and not self.blocking_pending

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(r.reason for r in self.attributes)

    def result(self, name: str) -> AttributeResult:
        """The result of attribute ``name``."""
        for r in self.attributes:
            if r.attribute == name:
                return r
        raise InvalidInput(
            "attribute", name, "one of: " + ", ".join(a.attribute for a in self.attributes)
        )


def evaluate_batch(
    spec: ReleaseSpec, results: Mapping[str, QcValue], *, batch_id: str | None = None
) -> BatchQc:
    """Evaluate a batch's QC results against every attribute of ``spec``.

    Parameters
    ----------
    spec : ReleaseSpec
    results : Mapping[str, float | str | None]
        Attribute name -> result. Attributes left out, or given as ``None``, are pending.
    batch_id : str, optional
        The batch, carried into the result and the release decision.

    Returns
    -------
    BatchQc

    Raises
    ------
    InvalidInput
        An attribute name the specification does not have (the allowed names are listed), or a
        result of the wrong kind or outside its plausible range.

    Examples
    --------
    >>> from immunoreset.manufacturing.spec import default_spec
    >>> qc = evaluate_batch(default_spec(), {"cd3_viability": 92.5, "endotoxin": 0.5})
    >>> qc.status, qc.failed, len(qc.blocking_pending)
    ('pending', (), 5)
    """
    if not isinstance(spec, ReleaseSpec):
        raise InvalidInput("spec", spec, "a ReleaseSpec")
    if not isinstance(results, Mapping):
        raise InvalidInput("results", results, "a mapping of attribute name to result")
    if batch_id is not None and (not isinstance(batch_id, str) or not batch_id.strip()):
        raise InvalidInput("batch_id", batch_id, "a non-empty text or None")
    unknown = [k for k in results if k not in spec.names]
    if unknown:
        raise InvalidInput(
            "results",
            unknown[0],
            f"an attribute of {spec.key}: " + ", ".join(spec.names),
        )
    rows = tuple(evaluate_attribute(a, results.get(a.name)) for a in spec.attributes)
    statuses = {r.status for r in rows}
    status = "fail" if "fail" in statuses else "pending" if "pending" in statuses else "pass"
    return BatchQc(
        spec_id=spec.spec_id,
        spec_version=spec.version,
        batch_id=batch_id,
        status=status,
        attributes=rows,
    )


def _person(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "a non-empty name or user ID")
    if len(value) > 200:
        raise InvalidInput(field, value, "at most 200 characters")
    return value.strip()


def _when(field: str, value: Any) -> dt.date:
    if not isinstance(value, dt.date):
        raise InvalidInput(field, value, "a date or date-time")
    return value


@dataclass(frozen=True, slots=True)
class Deviation:
    """A documented deviation that allows release despite failed attributes.

    Attributes
    ----------
    attributes : tuple[str, ...]
        The failed attributes it covers (each must be named).
    raised_by : str
        Who documented it.
    reason : str
        Why release is justified (the risk assessment in words).
    approved_by : str
        Who approved it (QA / qualified person); must differ from ``raised_by``.
    date : datetime.date
        When it was approved.
    reference : str | None
        The deviation report's number in the site's quality system.
    """

    attributes: tuple[str, ...]
    raised_by: str
    reason: str
    approved_by: str
    date: dt.date
    reference: str | None = None

    def __post_init__(self) -> None:
        attrs = self.attributes
        if isinstance(attrs, str) or not isinstance(attrs, tuple | list) or not attrs:
            raise InvalidInput("attributes", attrs, "a non-empty list of attribute names")
        for name in attrs:
            _person("attributes", name)
        object.__setattr__(self, "attributes", tuple(attrs))
        _person("raised_by", self.raised_by)
        _person("reason", self.reason)
        _person("approved_by", self.approved_by)
        if self.approved_by.strip() == self.raised_by.strip():
            raise InvalidInput("approved_by", self.approved_by, "someone other than raised_by")
        _when("date", self.date)
        if self.reference is not None:
            _person("reference", self.reference)


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    """A batch's release: who, when, against which specification version, on which QC.

    Attributes
    ----------
    batch_id : str | None
    spec_id : str
    spec_version : int
    released_by : str
    when : datetime.date | datetime.datetime
    qc : BatchQc
        The QC snapshot the decision was based on.
    deviation : Deviation | None
    grade : str
        ``"released"`` or ``"released_with_deviation"``.
    reasons : tuple[str, ...]
    """

    batch_id: str | None
    spec_id: str
    spec_version: int
    released_by: str
    when: dt.date
    qc: BatchQc
    deviation: Deviation | None
    grade: str
    reasons: tuple[str, ...]

    @property
    def spec_key(self) -> str:
        return f"{self.spec_id}-v{self.spec_version}"

    @property
    def post_release_pending(self) -> tuple[str, ...]:
        """Post-release results still awaited at the time of release."""
        return self.qc.post_release_pending


def release_decision(
    qc: BatchQc,
    *,
    released_by: str,
    when: dt.date,
    deviation: Deviation | None = None,
) -> ReleaseDecision:
    """Release a batch on its QC, or refuse.

    Parameters
    ----------
    qc : BatchQc
        From :func:`evaluate_batch`.
    released_by : str
        The person releasing (qualified person / QA).
    when : datetime.date | datetime.datetime
        Date or time of release.
    deviation : Deviation, optional
        Needed when any attribute failed; must name every failed attribute.

    Returns
    -------
    ReleaseDecision
        Records the specification id and version of ``qc``.

    Raises
    ------
    ReleaseRefused
        A release-stage attribute is pending, or an attribute failed and no deviation covers it.
    InvalidInput
        Wrong types or empty names. (Event order, e.g. a deviation dated before the QC, is the
        registry's to check.)

    Examples
    --------
    >>> import datetime as dt
    >>> from immunoreset.manufacturing.spec import default_spec
    >>> results = {"cd3_viability": 90, "cd3_purity": 95, "car_transduction": 30,
    ...            "endotoxin": 0.5, "sterility_interim": "negative",
    ...            "mycoplasma_interim": "negative", "dose_deviation": 3}
    >>> d = release_decision(evaluate_batch(default_spec(), results, batch_id="B-1"),
    ...                      released_by="qp.rossi", when=dt.date(2025, 3, 1))
    >>> d.grade, d.spec_key, d.post_release_pending
    ('released', 'default-v1', ('vcn', 'sterility_final', 'mycoplasma_final'))
    """
    if not isinstance(qc, BatchQc):
        raise InvalidInput("qc", qc, "a BatchQc from evaluate_batch")
    released_by = _person("released_by", released_by)
    _when("when", when)
    if deviation is not None and not isinstance(deviation, Deviation):
        raise InvalidInput("deviation", deviation, "a Deviation or None")
    who = f"batch {qc.batch_id}" if qc.batch_id else "batch"
    if qc.blocking_pending:
        raise ReleaseRefused(
            f"{who} cannot be released against {qc.spec_key}: release results pending for "
            + ", ".join(qc.blocking_pending),
            batch_id=qc.batch_id,
            pending=qc.blocking_pending,
            failed=qc.failed,
        )
    covered = set(deviation.attributes) if deviation is not None else set()
    uncovered = tuple(name for name in qc.failed if name not in covered)
    if uncovered:
        lines = [qc.result(n).reason for n in uncovered]
        hint = (
            "the deviation does not cover them"
            if deviation is not None
            else "no documented deviation (who, why, approved by)"
        )
        raise ReleaseRefused(
            f"{who} cannot be released against {qc.spec_key}: failed "
            + "; ".join(lines)
            + f" — {hint}",
            batch_id=qc.batch_id,
            failed=uncovered,
        )
    reasons = [f"released by {released_by} on {when.isoformat()} against {qc.spec_key}"]
    if qc.failed and deviation is not None:
        ref = f" {deviation.reference}" if deviation.reference else ""
        reasons.append(
            f"deviation{ref} raised by {deviation.raised_by}, approved by "
            f"{deviation.approved_by}: {deviation.reason} (covers {', '.join(qc.failed)})"
        )
    if qc.post_release_pending:
        reasons.append("post-release results awaited: " + ", ".join(qc.post_release_pending))
    return ReleaseDecision(
        batch_id=qc.batch_id,
        spec_id=qc.spec_id,
        spec_version=qc.spec_version,
        released_by=released_by,
        when=when,
        qc=qc,
        deviation=deviation,
        grade="released_with_deviation" if qc.failed else "released",
        reasons=tuple(reasons),
    )
