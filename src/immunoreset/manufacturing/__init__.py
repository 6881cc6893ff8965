"""Point-of-care CAR T manufacturing: release specification and QC, chain of identity, dose
planning from bags, hospital-exemption authorisations and program metrics.

Pure functions over domain objects (:mod:`immunoreset.course`) and plain data; the registry stores
the records and calls these. Modules:

* :mod:`~immunoreset.manufacturing.spec` — versioned release specifications (YAML data).
* :mod:`~immunoreset.manufacturing.qc` — attribute and batch QC, release decisions, deviations.
* :mod:`~immunoreset.manufacturing.chain` — chain-of-identity checks and traces.
* :mod:`~immunoreset.manufacturing.bags` — dose and volume per bag.
* :mod:`~immunoreset.manufacturing.authorisation` — hospital exemption and required reports.
* :mod:`~immunoreset.manufacturing.metrics` — success rate, vein-to-vein time, bags, QC
  (pandas/scipy; not re-exported here so importing the package stays light).
"""

from immunoreset.manufacturing.authorisation import (
    HospitalExemption,
    ReportingRules,
    RequiredReport,
    overdue,
    standard_reports,
)
from immunoreset.manufacturing.bags import DosePlan, plan_dose
from immunoreset.manufacturing.chain import (
    ChainTrace,
    ChainViolation,
    check_infusion,
    format_trace,
    trace,
    trace_course,
)
from immunoreset.manufacturing.qc import (
    AttributeResult,
    BatchQc,
    Deviation,
    ReleaseDecision,
    ReleaseRefused,
    evaluate_attribute,
    evaluate_batch,
    release_decision,
)
from immunoreset.manufacturing.spec import (
    ReleaseSpec,
    SpecAttribute,
    default_spec,
    load_spec,
    parse_spec,
)

__all__ = [
    "AttributeResult",
    "BatchQc",
    "ChainTrace",
    "ChainViolation",
    "Deviation",
    "DosePlan",
    "HospitalExemption",
    "ReleaseDecision",
    "ReleaseRefused",
    "ReleaseSpec",
    "ReportingRules",
    "RequiredReport",
    "SpecAttribute",
    "check_infusion",
    "default_spec",
    "evaluate_attribute",
    "evaluate_batch",
    "format_trace",
    "load_spec",
    "overdue",
    "parse_spec",
    "plan_dose",
    "release_decision",
    "standard_reports",
    "trace",
    "trace_course",
]
