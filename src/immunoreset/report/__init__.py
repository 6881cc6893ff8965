"""The case-series report: cohort tables, figures and the HTML/PDF report.

* :mod:`~immunoreset.report.tables` — one analysis pass over the cohort
  (:func:`~immunoreset.report.tables.analyse_cohort`) and the tables a case series reports
  (Table 1, manufacturing and dosing, safety, efficacy, follow-up).
* :mod:`~immunoreset.report.figures` — matplotlib figures for the report and plotly JSON for
  the web app.
* :mod:`~immunoreset.report.case_series` — :func:`~immunoreset.report.case_series.build_report`
  writes one self-contained HTML file and its PDF (WeasyPrint).

Heavy libraries (matplotlib, plotly, WeasyPrint) are imported inside the functions that use them.
"""

from __future__ import annotations

__all__: list[str] = []
