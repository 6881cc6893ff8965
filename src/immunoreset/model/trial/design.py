"""Virtual-trial design: the pydantic schema of a design YAML, checked before anything runs.

A design names the arms (dose per kg or flat dose, lymphodepletion regimen and intensity or
none, an optional redosing rule), the population (age range, sex mix, growth reference,
diagnosis mix, baseline B-cell and disease-activity distributions), patients per arm,
replicates, the parameter source (default parameters or a ``fit.json``, with their
uncertainty) and a success rule over the endpoints of :data:`ENDPOINTS`.
``examples/pediatric-dose-finding.yaml`` is a documented example.

Every mistake is reported as :class:`~immunoreset.errors.InvalidInput` whose ``field`` is
the YAML path (``arms[1].dose_per_kg``, ``success.conditions[0].endpoint``) and whose
message says what is allowed. Types are strict (a quoted ``"5"`` is not a number, an unknown
key is an error, never ignored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from immunoreset.errors import InvalidInput, yaml_path
from immunoreset.model.equations import ImmuneParams
from immunoreset.model.trial.growth import AGE_RANGE_Y, REFERENCES
from immunoreset.vocab import DIAGNOSES

__all__ = [
    "ENDPOINTS",
    "REGIMENS",
    "Arm",
    "Condition",
    "Lymphodepletion",
    "Parameters",
    "Population",
    "Redose",
    "Solver",
    "SuccessRule",
    "TrialDesign",
    "dump_design",
    "load_design",
    "parse_design",
]

#: Per-patient endpoints of a virtual trial: name -> (kind, unit, definition).
#: Month 6 = day 182 and month 12 = day 365 (the solver's endpoint days). The B-cell levels
#: named in brackets are the design's ``b_thresholds`` (defaults shown).
ENDPOINTS: MappingProxyType[str, tuple[str, str, str]] = MappingProxyType(
    {
        "b_clear_d7": (
            "binary",
            "",
            "blood CD19+ B cells < 1 cells/µL (clear) at some time in days 0–7",
        ),
        "recon_m6": (
            "binary",
            "",
            "B cells back to ≥ 10 cells/µL (recon) after clearance by day 182",
        ),
        "recon_m12": (
            "binary",
            "",
            "B cells back to ≥ 10 cells/µL (recon) after clearance by day 365",
        ),
        "seroconversion_m6": (
            "binary",
            "",
            "autoantibody titre at day 182 ≤ seroconversion_fraction × baseline",
        ),
        "redosed": ("binary", "", "a second infusion was given by the arm's redosing rule"),
        "cmax": ("continuous", "cells/uL", "CAR T peak in blood (whole course)"),
        "tmax": ("continuous", "d", "day of the CAR T peak"),
        "auc_0_28": ("continuous", "cells*d/uL", "CAR T AUC from day 0 to day 28"),
        "day_b_clear": ("continuous", "d", "first day B cells < 1 cells/µL (clear; NaN: never)"),
        "aplasia_days": (
            "continuous",
            "d",
            "B-cell aplasia duration: return (≥ 10/µL, recon) minus clearance; censored at the "
            "horizon when no return; 0 when never cleared",
        ),
        "ab_pct_m6": ("continuous", "%", "autoantibody change from baseline at day 182"),
        "disease_m6": ("continuous", "points", "disease activity (SLEDAI-2K-like) at day 182"),
        "disease_change_m6": ("continuous", "points", "disease activity change at day 182"),
    }
)

#: Lymphodepletion regimens: name -> (days relative to infusion, description and source).
#: ``intensity`` scales the model's depletion (log-kill) and cytokine surge relative to the
#: calibrated regimen (1 = the Flu/Cy the model was calibrated on; UNCONFIRMED mapping of
#: other doses to intensities).
REGIMENS: MappingProxyType[str, tuple[tuple[float, ...], str]] = MappingProxyType(
    {
        "flu-cy": (
            (-5.0, -4.0, -3.0),
            "fludarabine 25 mg/m²/d days −5…−3 + cyclophosphamide 1000 mg/m² (Erlangen as "
            "commonly reported, UNCONFIRMED; clinical spec §11.1)",
        ),
        "none": ((), "no lymphodepletion"),
    }
)

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
PosFloat = Annotated[float, Field(gt=0.0)]


class Lymphodepletion(BaseModel):
    """Lymphodepletion before an infusion: a regimen of :data:`REGIMENS` and its intensity."""

    model_config = _STRICT
    regimen: str = "flu-cy"
    #: Relative intensity (0 < x ≤ 2); 1 = the calibrated regimen. Not allowed with "none".
    intensity: Annotated[float, Field(gt=0.0, le=2.0)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Lymphodepletion:
        if self.regimen not in REGIMENS:
            raise _field_error("regimen", self.regimen, "one of: " + ", ".join(REGIMENS))
        if self.regimen == "none" and self.intensity is not None:
            raise _field_error("intensity", self.intensity, "absent when regimen is none")
        return self

    @property
    def effective_intensity(self) -> float:
        """Intensity used by the simulator (0 for none, default 1)."""
        if self.regimen == "none":
            return 0.0
        return 1.0 if self.intensity is None else self.intensity


class Redose(BaseModel):
    """Second infusion rule.

    ``trigger``:
      * ``scheduled`` — every patient at ``at_day``;
      * ``no_clearance`` — at ``at_day`` when B cells have not fallen below 1 cells/µL by then;
      * ``b_cell_return`` — ``lag_days`` after B cells return (≥ 10 cells/µL) when that
        happens before ``before_day``.
    The dose is the arm's unless ``dose_per_kg`` or ``flat_dose`` is given; with
    ``lymphodepletion: true`` the arm's regimen is repeated before the second infusion.
    """

    model_config = _STRICT
    trigger: Literal["scheduled", "no_clearance", "b_cell_return"]
    at_day: Annotated[float, Field(ge=7.0, le=3650.0)] | None = None
    before_day: Annotated[float, Field(gt=0.0, le=3650.0)] | None = None
    lag_days: Annotated[float, Field(ge=0.0, le=365.0)] = 0.0
    dose_per_kg: Annotated[float, Field(gt=0.0, le=1e9)] | None = None
    flat_dose: Annotated[float, Field(gt=0.0, le=1e11)] | None = None
    lymphodepletion: bool = False

    @model_validator(mode="after")
    def _check(self) -> Redose:
        if self.trigger in ("scheduled", "no_clearance") and self.at_day is None:
            raise _field_error("at_day", None, f"a day (7–3650) for trigger {self.trigger}")
        if self.trigger == "b_cell_return" and self.before_day is None:
            raise _field_error("before_day", None, "a day (> 0) for trigger b_cell_return")
        if self.trigger != "b_cell_return" and self.before_day is not None:
            raise _field_error("before_day", self.before_day, "only with b_cell_return")
        if self.trigger == "b_cell_return" and self.at_day is not None:
            raise _field_error("at_day", self.at_day, "absent for b_cell_return (use lag_days)")
        if self.dose_per_kg is not None and self.flat_dose is not None:
            raise _field_error("flat_dose", self.flat_dose, "absent when dose_per_kg is given")
        return self


class Arm(BaseModel):
    """One arm: a name, exactly one of ``dose_per_kg`` / ``flat_dose``, lymphodepletion."""

    model_config = _STRICT
    name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.+-]+$")]
    #: CAR+ T cells per kg body weight (0 < x ≤ 1e9).
    dose_per_kg: Annotated[float, Field(gt=0.0, le=1e9)] | None = None
    #: CAR+ T cells, whatever the weight (0 < x ≤ 1e11).
    flat_dose: Annotated[float, Field(gt=0.0, le=1e11)] | None = None
    lymphodepletion: Lymphodepletion = Lymphodepletion()
    redose: Redose | None = None
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> Arm:
        if (self.dose_per_kg is None) == (self.flat_dose is None):
            raise _field_error(
                "dose_per_kg", self.dose_per_kg, "exactly one of dose_per_kg or flat_dose"
            )
        return self


class Distribution(BaseModel):
    """A log-normal baseline: typical value and ω (SD of log)."""

    model_config = _STRICT
    typical: float | Literal["by-age"]
    omega: Annotated[float, Field(ge=0.0, le=2.0)] = 0.3


class Population(BaseModel):
    """Who is enrolled: ages (uniform), sex mix, growth reference, diagnoses, baselines."""

    model_config = _STRICT
    #: [lo, hi] years, uniform; within the growth reference (2–20 y).
    age_years: tuple[float, float] = (6.0, 17.0)
    female_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    growth_reference: str = "uk-who"
    #: Correlation of height and weight z-scores (UNCONFIRMED default 0.7).
    height_weight_correlation: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.7
    diagnosis_mix: dict[str, Annotated[float, Field(ge=0.0)]] = {"SLE": 1.0}
    #: Baseline CD19+ B cells (cells/µL): "by-age" = the model's age bands (LHSC), or a number.
    baseline_b_cells: Distribution = Distribution(typical="by-age", omega=0.3)
    #: Baseline disease activity, SLEDAI-2K-like points.
    baseline_disease: Distribution = Distribution(typical=12.6, omega=0.3)

    @model_validator(mode="after")
    def _check(self) -> Population:
        lo, hi = self.age_years
        glo, ghi = AGE_RANGE_Y
        if not (glo <= lo <= hi <= ghi):
            raise _field_error(
                "age_years",
                list(self.age_years),
                f"[lo, hi] with {glo:g} ≤ lo ≤ hi ≤ {ghi:g} y (growth reference range)",
            )
        if self.growth_reference not in REFERENCES:
            raise _field_error(
                "growth_reference", self.growth_reference, "one of: " + ", ".join(REFERENCES)
            )
        for k in self.diagnosis_mix:
            if k not in DIAGNOSES:
                raise _field_error(
                    f"diagnosis_mix.{k}", k, "a diagnosis, one of: " + ", ".join(DIAGNOSES)
                )
        if sum(self.diagnosis_mix.values()) <= 0:
            raise _field_error("diagnosis_mix", self.diagnosis_mix, "weights with sum > 0")
        b = self.baseline_b_cells.typical
        if b != "by-age" and not (isinstance(b, float | int) and 1.0 <= b <= 5000.0):
            raise _field_error("baseline_b_cells.typical", b, "'by-age' or 1–5000 cells/µL")
        d = self.baseline_disease.typical
        if not isinstance(d, float | int) or not 0.0 < d <= 105.0:
            raise _field_error("baseline_disease.typical", d, "a number of points in (0, 105]")
        return self


class Parameters(BaseModel):
    """Where the model parameters come from and how uncertain they are.

    ``fit``: path (relative to the design file) of a population-estimates JSON
    (:mod:`immunoreset.model.trial.estimates`); absent = the default parameters
    (:class:`~immunoreset.model.equations.ImmuneParams`, ``population.OMEGA``).
    ``rse``: used only without a fit — relative standard error of typical values (log-scale
    SD), e.g. ``{k_kill: 0.2}``; absent = no parameter uncertainty.
    ``uncertainty``: ``sample`` (each replicate draws its typical values) or ``none``.
    """

    model_config = _STRICT
    fit: str | None = None
    rse: dict[str, Annotated[float, Field(ge=0.0, le=2.0)]] = {}
    uncertainty: Literal["sample", "none"] = "sample"

    @model_validator(mode="after")
    def _check(self) -> Parameters:
        names = ImmuneParams.names()
        for k in self.rse:
            if k not in names:
                raise _field_error(f"rse.{k}", k, "a model parameter, one of: " + ", ".join(names))
        if self.fit is not None and self.rse:
            raise _field_error("rse", self.rse, "absent when a fit is given (its covariance)")
        return self


class Condition(BaseModel):
    """One condition of a success rule, on one arm and one endpoint.

    Proportion conditions (binary endpoint, or continuous with ``responder``): the proportion
    of responders must be ≥ ``min_proportion`` and/or the lower bound of its two-sided
    ``ci.level`` interval (``ci.method``) must be > ``ci.lower_above``.
    Statistic conditions (continuous endpoint with ``statistic``): the arm's median or mean
    must satisfy ``compare`` (e.g. ``{le: 180}``).
    """

    model_config = _STRICT
    arm: str
    endpoint: str
    responder: dict[Literal["lt", "le", "gt", "ge"], float] | None = None
    min_proportion: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    ci: ConfidenceBound | None = None
    statistic: Literal["median", "mean"] | None = None
    compare: dict[Literal["lt", "le", "gt", "ge"], float] | None = None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if self.endpoint not in ENDPOINTS:
            raise _field_error("endpoint", self.endpoint, "one of: " + ", ".join(ENDPOINTS))
        kind = ENDPOINTS[self.endpoint][0]
        for name in ("responder", "compare"):
            value = getattr(self, name)
            if value is not None and len(value) != 1:
                raise _field_error(name, value, "exactly one of lt, le, gt, ge")
        if self.statistic is not None:
            if kind != "continuous":
                raise _field_error("statistic", self.statistic, "only for continuous endpoints")
            if self.compare is None:
                raise _field_error("compare", None, "a comparison such as {le: 180}")
            if self.responder or self.min_proportion is not None or self.ci is not None:
                raise _field_error("statistic", self.statistic, "alone (no responder/proportion)")
            return self
        if self.compare is not None:
            raise _field_error("compare", self.compare, "only with statistic")
        if kind == "binary" and self.responder is not None:
            raise _field_error("responder", self.responder, "absent for a binary endpoint")
        if kind == "continuous" and self.responder is None:
            raise _field_error("responder", None, "a threshold such as {le: 4} (or use statistic)")
        if self.min_proportion is None and self.ci is None:
            raise _field_error("min_proportion", None, "min_proportion and/or ci")
        return self


class ConfidenceBound(BaseModel):
    """Lower bound of a two-sided confidence interval of a proportion."""

    model_config = _STRICT
    level: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.90
    method: Literal["clopper-pearson", "wilson"] = "clopper-pearson"
    lower_above: Annotated[float, Field(ge=0.0, lt=1.0)]


Condition.model_rebuild()


class SuccessRule(BaseModel):
    """The trial succeeds when ``all`` (or ``any``) of its conditions hold."""

    model_config = _STRICT
    combine: Literal["all", "any"] = "all"
    conditions: Annotated[list[Condition], Field(min_length=1)]


class Solver(BaseModel):
    """Method and tolerances of the compiled solver (RMS norm).

    Method ``auto`` (default): DOP853 where accuracy bounds the step (the CAR T expansion),
    RODAS4 (L-stable Rosenbrock, exact Jacobian) where DOP853 would be held at its stability
    limit (the CD19 killing in weeks 1–4, programme ``A`` once B cells are back), switched on
    stiffness estimates (:mod:`immunoreset.model.solver`). ``dop853``, ``rodas4`` and ``dp5``
    run one method throughout.

    Tolerances rtol 1e-6, atol 1e-8: the defaults of rxode2/nlmixr2's ``rxSolve`` (the
    simulator's own defaults, 1e-8/1e-10, are for single-patient accuracy). Measured against
    rtol 1e-10 on 1,200 children with and without lymphodepletion
    (``tests/model/trial/test_tolerance.py``): endpoint days within 0.03 d, CAR T Cmax within
    0.02 cells/µL, autoantibody change within 0.001 percentage points — far below the Monte
    Carlo error of a trial of 100 children per arm. With ``auto`` a child-year costs about
    1,950 right-hand-side evaluations and 100 Jacobians, against 3,300 evaluations with
    DOP853 alone at the same tolerance and 5,300 at rtol 1e-8 (``docs/trial.md``). The one
    ill-conditioned endpoint is the end of aplasia when B cells plateau at the 50/µL threshold.
    """

    model_config = _STRICT
    method: Literal["auto", "dop853", "rodas4", "dp5"] = "auto"
    rtol: Annotated[float, Field(ge=1e-13, le=1e-2)] = 1e-6
    atol: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-8


class TrialDesign(BaseModel):
    """A virtual trial: arms × patients per arm × replicates, and the rule it must meet."""

    model_config = _STRICT
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    replicates: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    patients_per_arm: Annotated[int, Field(ge=1, le=10_000)]
    #: Sizes (patients per arm) at which the probability of success is also computed (the
    #: trials of each size are the first patients of the simulated arms).
    size_curve: list[Annotated[int, Field(ge=1, le=10_000)]] = []
    horizon_days: Annotated[float, Field(ge=365.0, le=3650.0)] = 365.0
    sample_days: list[Annotated[float, Field(ge=0.0)]] = [
        0, 3, 5, 7, 10, 14, 21, 28, 42, 56, 91, 120, 150, 182, 240, 300, 365
    ]  # fmt: skip
    #: Autoantibody titre (relative to baseline) at or below which a patient seroconverts.
    seroconversion_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    population: Population = Population()
    arms: Annotated[list[Arm], Field(min_length=1, max_length=26)]
    parameters: Parameters = Parameters()
    solver: Solver = Solver()
    #: B-cell endpoint thresholds, cells/µL (defaults: clear 1, detect 1, recon 10, aplasia 50;
    #: :data:`immunoreset.model.solver.B_THRESHOLDS`); clear ≤ detect and clear ≤ recon.
    b_thresholds: dict[
        Literal["clear", "detect", "recon", "aplasia"],
        Annotated[float, Field(gt=0.0, le=1e5)],
    ] = {}
    success: SuccessRule

    @model_validator(mode="after")
    def _check(self) -> TrialDesign:
        from immunoreset.model.solver import B_THRESHOLDS

        lv = dict(B_THRESHOLDS) | self.b_thresholds
        for key in ("detect", "recon"):
            if lv[key] < lv["clear"]:
                raise _field_error(f"b_thresholds.{key}", lv[key], f"≥ clear ({lv['clear']:g})")
        names = [a.name for a in self.arms]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise _field_error(f"arms[{i}].name", n, "a name not used by another arm")
        for i, a in enumerate(self.arms):
            r = a.redose
            if r is None:
                continue
            if r.at_day is not None and r.at_day > self.horizon_days:
                raise _field_error(
                    f"arms[{i}].redose.at_day", r.at_day, f"≤ horizon_days {self.horizon_days:g}"
                )
            if r.lymphodepletion and a.lymphodepletion.regimen == "none":
                raise _field_error(
                    f"arms[{i}].redose.lymphodepletion", True, "false when the arm has none"
                )
        for i, c in enumerate(self.success.conditions):
            if c.arm not in names:
                raise _field_error(
                    f"success.conditions[{i}].arm", c.arm, "one of the arms: " + ", ".join(names)
                )
        days = self.sample_days
        if len(set(days)) != len(days) or any(d > self.horizon_days for d in days):
            raise _field_error("sample_days", days, f"distinct days within 0–{self.horizon_days:g}")
        return self

    @property
    def simulated_per_arm(self) -> int:
        """Patients simulated per arm and replicate (the largest trial size asked for)."""
        return max([self.patients_per_arm, *self.size_curve])

    @property
    def sizes(self) -> tuple[int, ...]:
        """Trial sizes evaluated (sorted, including ``patients_per_arm``)."""
        return tuple(sorted({self.patients_per_arm, *self.size_curve}))


class _FieldError(ValueError):
    def __init__(self, loc: str, value: Any, allowed: str) -> None:
        self.loc = loc
        self.value = value
        self.allowed = allowed
        super().__init__(f"{loc} must be {allowed}; got {value!r}")


def _field_error(loc: str, value: Any, allowed: str) -> _FieldError:
    return _FieldError(loc, value, allowed)


def _to_invalid(err: ValidationError, source: str | None) -> InvalidInput:
    first = err.errors(include_url=False)[0]
    loc = yaml_path(tuple(first["loc"]))
    ctx = first.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _FieldError):
        loc = f"{loc}.{inner.loc}" if loc else inner.loc
        return InvalidInput(loc or "design", inner.value, inner.allowed, file=source)
    kind = first["type"]
    value = first.get("input")
    if kind == "extra_forbidden":
        return InvalidInput(
            loc,
            value,
            "a key of the design schema",
            file=source,
            message=f"{loc} is not a known key here (check its spelling; the keys are "
            "documented in examples/README.md)",
        )
    elif kind == "missing":
        allowed = "given (required)"
        value = None
    else:
        allowed = first["msg"][0].lower() + first["msg"][1:]
        allowed = allowed.removeprefix("input should be ").removeprefix("value error, ")
    return InvalidInput(loc or "design", value, allowed, file=source)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e6`` / ``1.0e6`` as floats (YAML 1.2 style)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _lists_to_tuples(data: Any) -> Any:
    # strict mode wants a tuple for age_years; YAML only has lists
    if isinstance(data, dict):
        pop = data.get("population")
        if isinstance(pop, dict) and isinstance(pop.get("age_years"), list):
            data = {**data, "population": {**pop, "age_years": tuple(pop["age_years"])}}
    return data


def parse_design(data: Mapping[str, Any], *, source: str | None = None) -> TrialDesign:
    """Validate a mapping (a parsed YAML document) as a :class:`TrialDesign`.

    Raises
    ------
    InvalidInput
        ``field`` is the YAML path of the first problem (``arms[1].dose_per_kg``).
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("design", type(data).__name__, "a mapping of keys", file=source)
    try:
        return TrialDesign.model_validate(_lists_to_tuples(dict(data)))
    except ValidationError as err:
        raise _to_invalid(err, source) from None


def load_design(path: str | Path) -> TrialDesign:
    """Read and validate a design YAML file; a ``parameters.fit`` path must exist.

    Raises
    ------
    InvalidInput
        Unreadable file, bad YAML, or any schema problem (field = YAML path).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidInput("design", str(p), "a readable YAML file", message=str(err)) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        raise InvalidInput(
            "design", str(p), "valid YAML", file=str(p), message=f"not valid YAML: {err}"
        ) from None
    design = parse_design(data, source=str(p))
    fit = design.parameters.fit
    if fit is not None and not (p.parent / fit).is_file():
        raise InvalidInput("parameters.fit", fit, "an existing fit.json file", file=str(p))
    return design


def dump_design(design: TrialDesign) -> str:
    """Return the design as YAML text that :func:`parse_design` reads back to an equal design."""
    data = design.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
