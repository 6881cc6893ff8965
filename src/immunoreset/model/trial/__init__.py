"""Virtual trials of the immune-reset model: designs, virtual children, replicates, reports.

Modules: ``design`` (pydantic schema of a design YAML), ``growth`` (height/weight for age and
sex from rcpchgrowth's UK-WHO and CDC references), ``estimates`` (typical values, Ω and the
covariance of the estimates; reads a fit's JSON), ``cohort`` (virtual patients of one arm and
their endpoints), ``rules`` (success rules, Clopper–Pearson/Wilson bounds), ``run``
(replicates in-process or on Dask, streamed to Parquet), ``report`` (summary.csv, plots,
trial.html). See ``examples/README.md``.
"""

__all__: list[str] = []
