"""Column-wise reads of the exports: ``read_coded`` gives the rows and values of
``read_columns`` (itself tested through the SDTM exports against the object path)."""

from __future__ import annotations

import numpy as np
import pytest

from immunoreset.interop._columns import read_coded, read_columns
from immunoreset.registry import schema as s
from tests.interop.conftest import ADMIN


@pytest.mark.parametrize(
    "entity", ["labs", "daily_assessments", "disease_assessments", "medications", "bags"]
)
def test_read_coded_gives_the_values_of_read_columns(synthetic_registry, entity) -> None:
    sids = [co.study_id for co in synthetic_registry.iter_courses(ADMIN)]
    fields = [sp.name for sp in s.ENTITIES[entity].specs]
    plain = read_columns(synthetic_registry, entity, sids, fields)
    pidx, coded = read_coded(synthetic_registry, entity, sids, fields)
    assert len(pidx) == len(plain) > 0
    np.testing.assert_array_equal(pidx, plain.pidx)
    for name in fields:
        codes, values = coded[name]
        assert len(set(map(repr, values[:-1]))) == len(values) - 1, name  # distinct
        got = [values[k] for k in codes.tolist()]
        want = plain[name].tolist()
        for g, w in zip(got, want, strict=True):
            # read_columns leaves NULL as None; read_coded gives the decoder's value of NULL
            assert g == w or (w is None and g in (None, (), {})), (name, g, w)


def test_read_coded_keeps_only_the_given_patients_in_their_order(synthetic_registry) -> None:
    """A share of the patients, reversed: rows only of them, grouped in the given order."""
    courses = list(synthetic_registry.iter_courses(ADMIN))
    few = [co.study_id for co in courses[::-9]]
    pidx, coded = read_coded(synthetic_registry, "labs", few, ["date", "analyte"])
    by_sid = {co.study_id: co for co in courses}
    assert len(pidx) == sum(len(by_sid[sid].labs) for sid in few)
    assert (np.diff(pidx) >= 0).all()
    codes, values = coded["date"]
    for i, sid in enumerate(few):
        dates = [values[k] for k in codes[pidx == i].tolist()]
        assert dates == [r.date for r in by_sid[sid].labs]


def test_float_nulls_apart_from_a_stored_nan() -> None:
    """NULL (None) is −1; a stored NaN (PostgreSQL keeps one) is a value of its own; −0.0
    stays apart from 0.0 (bits compared)."""
    from immunoreset.interop._columns import _factorize

    codes, values = _factorize([1.5, None, 1.5, -0.0, 0.0, None], "float")
    assert codes[1] == codes[5] == -1 and codes[0] == codes[2] != codes[3] != codes[4]
    assert [repr(values[k]) for k in codes[[0, 3, 4]]] == ["1.5", "-0.0", "0.0"]
    codes, values = _factorize([float("nan"), None, 2.0, float("nan")], "float")
    assert codes[1] == -1 and codes[0] == codes[3] >= 0 and codes[2] >= 0
    assert np.isnan(values[codes[0]]) and values[codes[2]] == 2.0


def test_rows_in_order_need_no_sort_and_others_are_sorted() -> None:
    """_in_order is true exactly when np.lexsort would leave the rows as they are."""
    from immunoreset.interop._columns import _in_order

    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        pidx = np.sort(rng.integers(0, 4, n))
        ranks = [rng.integers(-1, 3, n) for _ in range(int(rng.integers(1, 3)))]
        if rng.random() < 0.5:  # make them sorted
            perm = np.lexsort([*ranks, pidx])
            pidx, ranks = pidx[perm], [r[perm] for r in ranks]
        identity = (np.lexsort([*ranks, pidx]) == np.arange(n)).all()
        assert _in_order(pidx, ranks) == identity
