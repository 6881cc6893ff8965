"""Small hand-built courses for tests (not the demo generator, so tests stay independent of it)."""

from __future__ import annotations

import datetime as dt

from immunoreset import course as c

DAY0 = dt.date(2024, 3, 1)


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


def patient(study_id: str = "RM-001", site: str = "ROME", **kw) -> c.Patient:
    values = dict(
        study_id=study_id,
        site=site,
        sex="F",
        birth_year=2012,
        birth_month=5,
        diagnosis="SLE",
        icd10="M32.1",
        diagnosis_date=dt.date(2021, 2, 1),
        prior_therapy_lines=4,
        synthetic=True,
    )
    values.update(kw)
    return c.Patient(**values)


def small_course(study_id: str = "RM-001", site: str = "ROME") -> c.Course:
    """A course with one record of every type, a fever day and a few labs."""
    tag = study_id.replace("-", "")
    return c.Course(
        patient=patient(study_id, site),
        anthropometrics=(c.Anthropometric(date=day(-7), weight_kg=38.5, height_cm=146.0),),
        apheresis=(
            c.Apheresis(apheresis_id=f"AP-{tag}", date=day(-35), cd3_cells=2.1e9, volume_ml=180.0),
        ),
        batches=(
            c.Batch(
                batch_id=f"BT-{tag}",
                apheresis_id=f"AP-{tag}",
                platform="CliniMACS Prodigy",
                process_start=day(-34),
                harvest_date=day(-22),
                operator="op07",
                status="released",
            ),
        ),
        bags=(
            c.Bag(
                bag_id=f"BG-{tag}-1",
                batch_id=f"BT-{tag}",
                car_t_cells=4.0e7,
                volume_ml=20.0,
                status="infused",
                location="LN2 tank A / rack 1",
                expiry=day(340),
            ),
            c.Bag(
                bag_id=f"BG-{tag}-2",
                batch_id=f"BT-{tag}",
                car_t_cells=4.0e7,
                volume_ml=20.0,
                status="stored_for_redosing",
                location="LN2 tank A / rack 1",
                expiry=day(340),
            ),
        ),
        lymphodepletion=(
            c.Lymphodepletion(date=day(-5), drug="fludarabine", dose_mg_m2=30.0),
            c.Lymphodepletion(date=day(-4), drug="cyclophosphamide", dose_mg_m2=500.0),
        ),
        infusions=(c.Infusion(date=DAY0, bag_ids=(f"BG-{tag}-1",), dose_cells_per_kg=1.0e6),),
        daily_assessments=(
            c.DailyAssessment(date=day(1), temperature_max_c=37.2, ice_score=10),
            c.DailyAssessment(
                date=day(2),
                temperature_max_c=38.6,
                oxygen_device="nasal_cannula",
                oxygen_flow_l_min=2.0,
                ice_score=10,
                vasopressors=(),
            ),
        ),
        labs=(
            c.LabResult(date=day(-7), analyte="cd19_b_cells", value=420.0, unit="cells/uL"),
            c.LabResult(date=day(7), analyte="cd19_b_cells", value=0.0, unit="cells/uL"),
            c.LabResult(date=day(2), analyte="anc", value=480.0, unit="cells/uL"),
            c.LabResult(
                date=day(1),
                analyte="car_t_flow",
                value=0.1,
                unit="cells/uL",
                lloq=0.1,
                below_lloq=True,
            ),
        ),
        disease_assessments=(
            c.DiseaseAssessment(
                date=day(-7),
                instrument="sledai2k",
                score=10.0,
                items={"arthritis": 1, "rash": 1, "low_complement": 1, "increased_dna_binding": 1},
            ),
        ),
        medications=(
            c.Medication(
                drug="prednisone",
                drug_class="glucocorticoid",
                dose=10.0,
                dose_unit="mg/day",
                start=dt.date(2022, 1, 1),
                stop=day(-10),
            ),
        ),
        adverse_events=(
            c.AdverseEvent(
                term="cytokine release syndrome",
                category="crs",
                grade=2,
                onset=day(2),
                resolution=day(3),
                serious=False,
                related=True,
            ),
        ),
        infections=(
            c.Infection(
                onset=day(12),
                site="upper_respiratory",
                organism_class="viral",
                ctcae_grade=2,
                organism="RSV",
            ),
        ),
        followup_visits=(
            c.FollowUpVisit(visit="D28", date=day(28), items=("cbc_differential", "igg")),
        ),
        followup=c.FollowUp(last_contact=day(400), status="alive"),
    )
