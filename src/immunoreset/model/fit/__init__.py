"""Nonlinear mixed-effects estimation (FOCE-I) of the project's models; see ``docs/fit.md``.

Modules: ``data`` (padded population data from a NONMEM-style table), ``models`` (structural
models by name: ``immune_reset``, ``stein2019``, ``pk_1cmt_oral``), ``foce`` (the estimator),
``results`` (parameter/individual/prediction tables, CWRES, VPC), ``workflow`` (output files,
HTML report, reading a fit back), ``forecast`` (one patient's MAP forecast with prediction
intervals), ``simulate`` (simulated data sets for simulation–estimation).
"""

__all__: list[str] = []
