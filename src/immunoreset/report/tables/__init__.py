"""Cohort tables of a CD19 CAR T case series: Table 1, manufacturing, safety, efficacy, follow-up.

One module per report section (``cohort`` = the analysis and Table 1, ``manufacturing``,
``safety``, ``efficacy``, ``followup``), over ``settings``, ``frames``, ``stats``, ``format``
and ``summary``; every public name is importable from here.

One pass, :func:`analyse_cohort`, turns a list of :class:`~immunoreset.course.Course` into
long-format frames (every lab value and disease score of every patient, built once) and runs the
cohort forms of the kinetics analyses on them (:func:`~immunoreset.kinetics.nca.compute_nca_cohort`,
:func:`~immunoreset.kinetics.bcells.aplasia_cohort`,
:func:`~immunoreset.kinetics.titres.percent_change_cohort`): one compiled pass over all patients,
no Python loop per sample. Per-patient loops remain only where they are cheap (toxicity from
daily grades, remission criteria, time off therapy).

Every table is a tidy :class:`pandas.DataFrame` with the columns of :data:`STAT_COLUMNS` (one
row per statistic) and a display form (:func:`display_table`: ``section``, ``characteristic``,
``value`` as a clinician writes them: ``n/N (%; 95 % CI)``, ``median (range)``).

Sources of the definitions used
-------------------------------
* CRS and ICANS grades: Lee DW, et al. ASTCT consensus grading. *Biol Blood Marrow Transplant*
  2019;25(4):625–638 (via :mod:`immunoreset.clinical.episodes`).
* ICAHT: Rejeski K, et al. *Blood* 2023;142(10):865–877; CTCAE v5.0 cytopenias.
* Exact binomial (Clopper–Pearson) confidence intervals: Clopper CJ, Pearson ES. *Biometrika*
  1934;26:404–413, via ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``.
* NCA: PKNCA conventions (Denney W, et al. *J Pharmacokinet Pharmacodyn* 2015;42(1):11–107).
* Kaplan–Meier: Kaplan EL, Meier P. *J Am Stat Assoc* 1958;53(282):457–481 (lifelines).
* DORIS 2021 remission: van Vollenhoven RF, et al. *Lupus Sci Med* 2021;8:e000538. LLDAS:
  Franklyn K, et al. *Ann Rheum Dis* 2016;75(9):1615–1621.
* Total Improvement Score: Rider LG, et al. *Arthritis Rheumatol* 2017;69(5):911–923.
* Case-series facts reported (the shape of these tables): Becilli, Metzler, Bracaglia et al.,
  *Nature Medicine* 2026 (abstract; project spec ``peer-data.md`` §1).

Project choices (UNCONFIRMED as standards; each one is an :class:`AnalysisSettings` field and
is printed in the report's methods): LLOQ used when a CAR T result carries none; months =
days / 30.4375; prednisone equivalents; the enzyme improvement formula of the TIS; which
assessment the remission criteria are evaluated on (the last SLEDAI-2K after infusion).
"""

from __future__ import annotations

from immunoreset.report.tables.cohort import CohortAnalysis, _as_analysis, analyse_cohort, table_one
from immunoreset.report.tables.efficacy import table_efficacy
from immunoreset.report.tables.followup import table_followup
from immunoreset.report.tables.format import display_table
from immunoreset.report.tables.manufacturing import table_manufacturing
from immunoreset.report.tables.safety import table_safety
from immunoreset.report.tables.settings import (
    DAYS_PER_MONTH,
    DEFAULT_ANALYSIS,
    PREDNISONE_EQUIVALENT,
    STAT_COLUMNS,
    TITRE_ANALYTES,
    AnalysisSettings,
)
from immunoreset.report.tables.stats import clopper_pearson
from immunoreset.report.tables.summary import cohort_summary_rich, cohort_tables

__all__ = [
    "DAYS_PER_MONTH",
    "DEFAULT_ANALYSIS",
    "PREDNISONE_EQUIVALENT",
    "STAT_COLUMNS",
    "TITRE_ANALYTES",
    "AnalysisSettings",
    "CohortAnalysis",
    "_as_analysis",
    "analyse_cohort",
    "clopper_pearson",
    "cohort_summary_rich",
    "cohort_tables",
    "display_table",
    "table_efficacy",
    "table_followup",
    "table_manufacturing",
    "table_one",
    "table_safety",
]
