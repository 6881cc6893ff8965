"""Clinical calculators: toxicity grades, disease-activity scores and dosing.

One module per scoring system (``crs``, ``icans``, ``sledai``, ``cmas``, ``mrss``, ``dosing`` …);
import the module you need, e.g. ``from immunoreset.clinical.sledai import score_sledai2k``.
Every calculator is a pure function that validates its inputs and returns a value or a small
frozen result object with the reasons behind it.
"""
