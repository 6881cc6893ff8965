"""One generic test: every public calculator refuses bad input with InvalidInput naming the field.

The cases (out-of-range, wrong-type and unknown-word inputs for every public function) are data
in ``bad_input_cases_toxicity.py`` and ``bad_input_cases_scores.py``, beside the calculators'
own tests; this test runs them all the same way.
"""

from __future__ import annotations

import inspect

import pytest

from immunoreset.errors import InvalidInput
from tests.clinical.bad_input_cases_safety import CASES as SAFETY_CASES
from tests.clinical.bad_input_cases_scores import CASES as SCORE_CASES
from tests.clinical.bad_input_cases_toxicity import CASES as TOXICITY_CASES

CASES = [*TOXICITY_CASES, *SCORE_CASES, *SAFETY_CASES]


@pytest.mark.parametrize(("case", "func", "kwargs", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_invalid_input_naming_field(case, func, kwargs, field):
    kwargs = dict(kwargs)
    args = kwargs.pop("__args__", ())
    with pytest.raises(InvalidInput) as info:
        func(*args, **kwargs)
    err = info.value
    assert err.field == field, f"{case}: field {err.field!r} != {field!r}"
    assert isinstance(err, ValueError)
    assert err.allowed, f"{case}: no allowed range/vocabulary stated"
    assert field.split(".")[0] in str(err)


def test_every_public_calculator_is_covered():
    """Each public function of each calculator module appears in the cases."""
    from immunoreset import clinical

    covered = {c[1] for c in CASES}
    missing = []
    for name in (
        "crs",
        "icans",
        "icaht",
        "hematotox",
        "ctcae",
        "sledai",
        "lupus_remission",
        "cmas",
        "mmt8",
        "myositis_response",
        "mrss",
        "criss",
        "dosing",
        "iec_hs",
        "ticaht",
        "infections",
        "igg",
        "followup",
        "course_safety",
    ):
        module = __import__(f"{clinical.__name__}.{name}", fromlist=["__all__"])
        for fname in getattr(module, "__all__", ()):
            obj = getattr(module, fname)
            if inspect.isfunction(obj) and obj not in covered:
                params = inspect.signature(obj).parameters
                if params:  # functions without inputs need no bad-input case
                    missing.append(f"{name}.{fname}")
    assert not missing, f"no bad-input case for: {', '.join(missing)}"
