"""Issue 13 item 5: infusions that cannot have happened are refused with a reason code,
audited like chain-of-identity refusals, and nothing is written (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from immunoreset.manufacturing import ChainViolation
from immunoreset.registry import Registry
from immunoreset.registry.gmp import Gmp
from tests.factories import day, small_course
from tests.manufacturing.factories import PASSING_RELEASE
from tests.registry.gmp.factories import ADMIN, add_batch, last_audit, release


@pytest.fixture
def fresh(registry: Registry, gmp: Gmp) -> str:
    """RM-002: a course without infusion, one batch released on day -20 with two bags."""
    course = small_course("RM-002")
    course = type(course)(
        **{**{f: getattr(course, f) for f in course.__dataclass_fields__}, "infusions": ()}
    )
    registry.save_course(ADMIN, course, reason="entry")
    add_batch(
        registry,
        "BT-P",
        study_id="RM-002",
        bags=(("BG-P-1", "quarantined", day(300)), ("BG-P-2", "quarantined", day(300))),
    )
    gmp.record_qc(ADMIN, "BT-P", PASSING_RELEASE, "QC")
    release(gmp, "BT-P", when=day(-20))
    return "RM-002"


def _state(registry: Registry) -> tuple[object, ...]:
    course = registry.load_course(ADMIN, "RM-002")
    return course.infusions, course.bags


@pytest.mark.parametrize(
    ("kwargs", "reason", "words"),
    [
        ({"on_date": day(-21)}, "before_release", "before batch BT-P's release"),
        ({"on_date": day(-30)}, "before_harvest", "before batch BT-P's harvest"),
        ({"on_date": day(10), "today": day(5)}, "future_date", "after today"),
        # 4e7 cells over 40 kg hold 1e6/kg; 5e6/kg cannot have come from this bag
        ({"dose_cells_per_kg": 5e6, "weight_kg": 40.0}, "dose_exceeds_bag", "the bags hold"),
    ],
)
def test_implausible_infusion_refused_and_audited(
    registry: Registry, gmp: Gmp, fresh: str, kwargs: dict, reason: str, words: str
) -> None:
    before = _state(registry)
    args = {"on_date": day(0), "weight_kg": 40.0, "today": day(400), **kwargs}
    with pytest.raises(ChainViolation) as err:
        gmp.infuse(ADMIN, fresh, ["BG-P-1"], **args)
    assert err.value.reason == reason and words in str(err.value)
    entry = last_audit(registry, fresh)
    assert (entry["action"], entry["table_name"]) == ("refused", "infusions")
    assert entry["reason"].startswith(f"implausible infusion ({reason})")
    assert _state(registry) == before


def test_unplanned_second_infusion_refused(registry: Registry, gmp: Gmp, fresh: str) -> None:
    gmp.infuse(ADMIN, fresh, ["BG-P-1"], on_date=day(0), weight_kg=40.0, today=day(400))
    before = _state(registry)
    with pytest.raises(ChainViolation) as err:
        gmp.infuse(ADMIN, fresh, ["BG-P-2"], on_date=day(28), weight_kg=40.0, today=day(400))
    assert err.value.reason == "unplanned_infusion"
    assert _state(registry) == before
    assert last_audit(registry, fresh)["action"] == "refused"


def test_plausible_infusion_with_exact_dose_is_recorded(
    registry: Registry, gmp: Gmp, fresh: str
) -> None:
    inf = gmp.infuse(
        ADMIN,
        fresh,
        ["BG-P-1"],
        on_date=day(-20),
        weight_kg=40.0,
        dose_cells_per_kg=1e6,
        today=day(-20),
    )
    assert inf.dose_cells_per_kg == 1e6  # release day itself, today, dose = what the bag holds
