"""Fit specification files (``immunoreset fit --spec FILE.yaml``) ↔ :class:`FitSpec`.

A YAML document declares what :func:`~immunoreset.model.fit.foce.fit_foce` estimates: the
model, the estimated parameters (initial typical value, BSV SD on the log scale, 0 = none),
block or diagonal Ω, covariate effects (power of a continuous covariate, categorical levels),
the residual error model per observation compartment and fixed parameter values. Keys are
documented in ``docs/fit.md`` (section *Spec files*); ``examples/fit-immune-reset.yaml`` is a
worked example. Validation is by pydantic (unknown keys refused); every problem is an
``InvalidInput`` whose field is the YAML path (``parameters[1].omega``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from immunoreset.errors import InvalidInput, yaml_path
from immunoreset.model.fit.data import FitData
from immunoreset.model.fit.foce import (
    CovariateEffect,
    ErrorSpec,
    FitSpec,
    ParameterSpec,
    default_spec,
)
from immunoreset.model.fit.models import MODELS, get_model

__all__ = ["dump_spec", "load_spec", "parse_spec", "resolve_spec"]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
_Pos = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class _Parameter(BaseModel):
    model_config = _STRICT
    name: str
    #: initial typical value (natural scale); the model's default when absent
    initial: _Pos | None = None
    #: BSV: SD of η on the log scale (≈ CV), 0 = no random effect
    omega: Annotated[float, Field(ge=0.0, le=5.0)] = 0.3


class _Covariate(BaseModel):
    model_config = _STRICT
    parameter: str
    covariate: str
    kind: Literal["power", "categorical"] = "power"
    reference: Annotated[float, Field(allow_inf_nan=False)] | None = None
    levels: tuple[float, ...] | None = None


class _Error(BaseModel):
    model_config = _STRICT
    cmt: Annotated[int, Field(ge=1, le=99)]
    kind: Literal["additive", "proportional", "combined", "log"]
    #: additive SD (data units), or the SD on the log scale for ``log``
    add: _Pos | None = None
    #: proportional SD (fraction of the prediction)
    prop: _Pos | None = None


class _Spec(BaseModel):
    model_config = _STRICT
    model: str = "immune_reset"
    parameters: tuple[_Parameter, ...] | None = None
    omega_block: bool = False
    covariates: tuple[_Covariate, ...] = ()
    errors: tuple[_Error, ...] = ()
    fixed: dict[str, _Pos] = {}


def _lists_to_tuples(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_lists_to_tuples(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _lists_to_tuples(v) for k, v in obj.items()}
    return obj


def parse_spec(data: Any, *, source: str | None = None) -> FitSpec:
    """Validate a parsed YAML document into a :class:`FitSpec`.

    Without ``parameters`` the model's default estimated set is used; ``errors`` may list only
    some compartments (the others keep the model's defaults, see :func:`resolve_spec`).

    Raises
    ------
    InvalidInput
        ``field`` is the YAML path of the first problem (``parameters[1].omega``).
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("spec", type(data).__name__, "a mapping of keys", file=source)
    try:
        raw = _Spec.model_validate(_lists_to_tuples(dict(data)))
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = yaml_path(tuple(first["loc"])) or "spec"
        if first["type"] == "extra_forbidden":
            raise InvalidInput(
                loc,
                first.get("input"),
                "a key of the fit spec",
                file=source,
                message=f"{loc} is not a known key of a fit spec (the keys are in docs/fit.md, "
                "section Spec files)",
            ) from None
        if first["type"] == "missing":
            raise InvalidInput(loc, None, "given (required)", file=source) from None
        msg = first["msg"]
        allowed = (msg[0].lower() + msg[1:]).removeprefix("input should be ")
        raise InvalidInput(loc, first.get("input"), allowed, file=source) from None
    if raw.model not in MODELS:
        raise InvalidInput("model", raw.model, "one of: " + ", ".join(MODELS), file=source)
    m = get_model(raw.model)

    def check_name(field: str, name: str, allowed: tuple[str, ...], what: str) -> None:
        if name not in allowed:
            raise InvalidInput(field, name, f"{what}: " + ", ".join(allowed), file=source)

    if raw.parameters is None:
        params = default_spec(raw.model).parameters
    else:
        if not raw.parameters:
            raise InvalidInput("parameters", [], "at least one estimated parameter", file=source)
        params = []
        for i, p in enumerate(raw.parameters):
            check_name(f"parameters[{i}].name", p.name, m.parameters, f"a parameter of {m.name}")
            if p.name in [q.name for q in params]:
                raise InvalidInput(f"parameters[{i}].name", p.name, "listed once", file=source)
            hi = m.upper.get(p.name, math.inf)
            if p.initial is not None and p.initial > hi:
                raise InvalidInput(f"parameters[{i}].initial", p.initial, f"≤ {hi:g}", file=source)
            params.append(ParameterSpec(p.name, p.initial, p.omega))
        params = tuple(params)
    est = tuple(p.name for p in params)
    covs = []
    for i, c in enumerate(raw.covariates):
        check_name(f"covariates[{i}].parameter", c.parameter, est, "an estimated parameter")
        if c.kind == "power" and c.levels is not None:
            raise InvalidInput(f"covariates[{i}].levels", list(c.levels),
                               "absent for a power effect", file=source)  # fmt: skip
        if c.kind == "power" and c.reference is not None and c.reference <= 0:
            raise InvalidInput(f"covariates[{i}].reference", c.reference,
                               "> 0 for a power effect", file=source)  # fmt: skip
        covs.append(CovariateEffect(c.parameter, c.covariate, c.kind, c.reference, c.levels))
    errors = []
    seen: set[int] = set()
    for i, e in enumerate(raw.errors):
        outs = tuple(str(k) for k in m.outputs)
        check_name(f"errors[{i}].cmt", str(e.cmt), outs, f"an observation compartment of {m.name}")
        if e.cmt in seen:
            raise InvalidInput(f"errors[{i}].cmt", e.cmt, "listed once", file=source)
        seen.add(e.cmt)
        needs_add = e.kind in ("additive", "combined", "log")
        needs_prop = e.kind in ("proportional", "combined")
        if not needs_add and e.add is not None:
            raise InvalidInput(f"errors[{i}].add", e.add, f"absent for {e.kind}", file=source)
        if not needs_prop and e.prop is not None:
            raise InvalidInput(f"errors[{i}].prop", e.prop, f"absent for {e.kind}", file=source)
        d = m.default_errors.get(e.cmt)
        add = e.add if e.add is not None else (d.add if d is not None and d.add else 1.0)
        prop = e.prop if e.prop is not None else (d.prop if d is not None and d.prop else 0.1)
        errors.append(ErrorSpec(e.cmt, e.kind, add, prop))
    for name in raw.fixed:
        check_name(f"fixed.{name}", name, m.parameters, f"a parameter of {m.name}")
        if name in est:
            raise InvalidInput(f"fixed.{name}", name, "not also estimated", file=source)
    return FitSpec(
        model=raw.model,
        parameters=params,
        errors=tuple(errors),
        covariates=tuple(covs),
        omega_block=raw.omega_block,
        fixed=dict(raw.fixed),
    )


def resolve_spec(spec: FitSpec, data: FitData) -> FitSpec:
    """The spec for ``data``: model-default errors for observed compartments it does not name.

    Raises
    ------
    InvalidInput
        An error model for a compartment without observations, or a covariate not in the data.
    """
    present = data.cmts()
    base = {e.cmt: e for e in default_spec(spec.model, data).errors}
    for i, e in enumerate(spec.errors):
        if e.cmt not in present:
            raise InvalidInput(
                f"errors[{i}].cmt",
                e.cmt,
                "a compartment with observations in the data ("
                + ", ".join(map(str, present))
                + ")",
            )
        base[e.cmt] = e
    cols = tuple(data.covariates.columns)
    for i, c in enumerate(spec.covariates):
        if c.covariate not in cols:
            raise InvalidInput(
                f"covariates[{i}].covariate",
                c.covariate,
                "a numeric column of the data (" + (", ".join(cols) or "none") + ")",
            )
    return FitSpec(
        model=spec.model,
        parameters=spec.parameters,
        errors=tuple(base[c] for c in sorted(base)),
        covariates=spec.covariates,
        omega_block=spec.omega_block,
        fixed=spec.fixed,
    )


def load_spec(path: str | Path) -> FitSpec:
    """Read and validate a fit spec YAML file (:func:`parse_spec`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidInput("spec", str(p), f"a readable YAML file ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput("spec", str(p), f"valid YAML (parse error{where})") from None
    return parse_spec(data, source=str(p))


def dump_spec(spec: FitSpec) -> str:
    """The spec as YAML text that :func:`parse_spec` reads back to an equal spec."""
    doc: dict[str, Any] = {"model": spec.model}
    doc["parameters"] = [
        {"name": p.name, **({"initial": p.initial} if p.initial is not None else {}),
         "omega": p.omega}
        for p in spec.parameters
    ]  # fmt: skip
    doc["omega_block"] = spec.omega_block
    doc["covariates"] = [
        {
            "parameter": c.parameter,
            "covariate": c.covariate,
            "kind": c.kind,
            **({"reference": c.reference} if c.reference is not None else {}),
            **({"levels": list(c.levels)} if c.levels is not None else {}),
        }
        for c in spec.covariates
    ]
    errs = []
    for e in spec.errors:
        d: dict[str, Any] = {"cmt": e.cmt, "kind": e.kind}
        if e.kind in ("additive", "combined", "log"):
            d["add"] = e.add
        if e.kind in ("proportional", "combined"):
            d["prop"] = e.prop
        errs.append(d)
    doc["errors"] = errs
    doc["fixed"] = dict(spec.fixed)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
