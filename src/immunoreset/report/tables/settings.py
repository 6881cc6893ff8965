"""Analysis settings of the case-series tables: the project's documented choices and constants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from immunoreset.clinical import ctcae
from immunoreset.clinical.settings import (
    DEFAULT_SETTINGS,
    ICAHT_DURATION_MODES,
    ToxicitySettings,
)
from immunoreset.errors import InvalidInput, check_choice, check_range
from immunoreset.kinetics.nca import BLQ_RULES

#: Mean days per month (365.25 / 12): months = days / 30.4375.
DAYS_PER_MONTH = 30.4375

#: Autoantibody analytes followed as % of baseline (:data:`immunoreset.vocab.ANALYTES`).
TITRE_ANALYTES: tuple[str, ...] = (
    "anti_dsdna",
    "anti_scl70",
    "anti_tif1g",
    "anti_mda5",
    "anti_jo1",
)

#: mg of prednisone per mg of the drug (conventional equivalence: prednisone 5 mg =
#: prednisolone 5 mg = methylprednisolone 4 mg = dexamethasone 0.75 mg = hydrocortisone 20 mg
#: = deflazacort 6 mg). A glucocorticoid not listed makes DORIS/LLDAS "not assessable".
PREDNISONE_EQUIVALENT: Mapping[str, float] = MappingProxyType(
    {
        "prednisone": 1.0,
        "prednisolone": 1.0,
        "methylprednisolone": 1.25,
        "dexamethasone": 5.0 / 0.75,
        "hydrocortisone": 0.25,
        "deflazacort": 5.0 / 6.0,
    }
)

#: Columns of every tidy table.
STAT_COLUMNS: tuple[str, ...] = (
    "section",
    "item",
    "level",
    "kind",
    "n",
    "total",
    "percent",
    "ci_low",
    "ci_high",
    "median",
    "min",
    "max",
    "unit",
    "note",
)

_ASSAY_ANALYTE = {"flow": "car_t_flow", "qpcr": "car_t_qpcr"}
_LD_ABBREV = {"fludarabine": "Flu", "cyclophosphamide": "Cy", "bendamustine": "Benda"}
# TIS core-set measure -> candidate instruments (first found is used), and direction.
_TIS_MEASURES: dict[str, tuple[tuple[str, ...], bool]] = {
    "physician_global": (("md_global",), False),
    "patient_global": (("patient_global",), False),
    "strength": (("cmas", "mmt8"), True),
    "function": (("chaq", "haq_di"), False),
    "extramuscular": (("extramuscular",), False),
}
_TIS_POPULATION = {"JDM": "jdm", "DM": "adult", "ASyS": "adult"}


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """Every threshold and choice of the cohort analysis (all printed in the report's methods).

    Attributes
    ----------
    clearance_threshold : float
        B cells cleared when strictly below this (cells/µL, > 0; default 1, issue 5).
    reconstitution_threshold : float
        B cells reconstituted at or above this (cells/µL; default 10, issue 5).
    blq_rule : str
        NCA below-LLOQ rule (:data:`immunoreset.kinetics.nca.BLQ_RULES`; PKNCA default).
    auc_end : float
        End of the AUC window (study day; default 28 → AUC0–28).
    default_lloq : Mapping[str, float]
        LLOQ used for a CAR T result that carries none, per assay (flow cells/µL, qPCR
        copies/µg). UNCONFIRMED values (no assay in the spec gives them): flow 0.1, qPCR 10.
    ctcae_version : str
        CTCAE version of the cytopenia grades (``"5.0"`` or ``"6.0"``).
    icaht_duration_mode : str
        Early-ICAHT counting, ``"cumulative"`` or ``"longest_joined"``.
    toxicity : ToxicitySettings
        The CRS/ICANS/ICAHT calculators' documented choices (CAPD age cut etc.).
    confidence : float
        Level of the exact binomial CIs (0.5–0.999; default 0.95).
    titre_months, score_months : tuple[int, ...]
        Months after infusion at which titres (default 1, 3, 6, 12) and disease scores
        (default 6, 12) are compared with baseline.
    ck_uln : float
        Upper limit of normal of creatine kinase (U/L) for the TIS enzyme measure (only the
        ``"excess_over_uln"`` method uses it).
    enzyme_method : str
        TIS enzyme improvement formula (UNCONFIRMED; see
        :data:`immunoreset.clinical.myositis_response.ENZYME_METHODS`).
    max_lines : int
        Cohorts larger than this are drawn as medians with 5–95 % bands, not one line each.
    max_swimmers : int
        At most this many patients in the swimmer plot.
    """

    clearance_threshold: float = 1.0
    reconstitution_threshold: float = 10.0
    blq_rule: str = "keep_first_last"
    auc_end: float = 28.0
    default_lloq: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"flow": 0.1, "qpcr": 10.0})
    )
    ctcae_version: str = "5.0"
    icaht_duration_mode: str = "cumulative"
    toxicity: ToxicitySettings = DEFAULT_SETTINGS
    confidence: float = 0.95
    titre_months: tuple[int, ...] = (1, 3, 6, 12)
    score_months: tuple[int, ...] = (6, 12)
    ck_uln: float = 200.0
    enzyme_method: str = "relative_to_baseline"
    max_lines: int = 60
    max_swimmers: int = 60

    def __post_init__(self) -> None:
        from immunoreset.clinical.myositis_response import ENZYME_METHODS

        check_range(
            "clearance_threshold", self.clearance_threshold, 0, 1000, "cells/uL", lo_open=True
        )
        check_range(
            "reconstitution_threshold",
            self.reconstitution_threshold,
            self.clearance_threshold,
            100_000,
            "cells/uL",
        )
        check_choice("blq_rule", self.blq_rule, BLQ_RULES)
        check_range("auc_end", self.auc_end, 1, 3650, "days")
        if not isinstance(self.default_lloq, Mapping) or set(self.default_lloq) != set(
            _ASSAY_ANALYTE
        ):
            raise InvalidInput("default_lloq", self.default_lloq, "an LLOQ for flow and qpcr")
        for assay, v in self.default_lloq.items():
            check_range(f"default_lloq.{assay}", v, 0, 1e6, lo_open=True)
        object.__setattr__(self, "default_lloq", MappingProxyType(dict(self.default_lloq)))
        check_choice("ctcae_version", self.ctcae_version, ctcae.CTCAE_VERSIONS)
        check_choice("icaht_duration_mode", self.icaht_duration_mode, ICAHT_DURATION_MODES)
        if not isinstance(self.toxicity, ToxicitySettings):
            raise InvalidInput("toxicity", self.toxicity, "a ToxicitySettings")
        check_range("confidence", self.confidence, 0.5, 0.999)
        for name in ("titre_months", "score_months"):
            months = getattr(self, name)
            if not isinstance(months, tuple) or not months:
                raise InvalidInput(name, months, "a non-empty tuple of whole months 1–240")
            for m in months:
                check_range(name, m, 1, 240, "months", integer=True)
        check_range("ck_uln", self.ck_uln, 0, 100_000, "U/L", lo_open=True)
        check_choice("enzyme_method", self.enzyme_method, ENZYME_METHODS)
        check_range("max_lines", self.max_lines, 1, 10_000, integer=True)
        check_range("max_swimmers", self.max_swimmers, 1, 500, integer=True)


#: The defaults of issue 5.
DEFAULT_ANALYSIS = AnalysisSettings()
