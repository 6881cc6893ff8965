"""Program metrics of the visible batches and courses (success, vein-to-vein, bags, QC)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from immunoreset import course as c
from immunoreset.manufacturing.qc import BatchQc, evaluate_batch
from immunoreset.manufacturing.spec import ReleaseSpec
from immunoreset.registry.gmp._base import DECISION_KINDS, _cached_spec, _chunks, _stored_value
from immunoreset.registry.gmp.specs import SpecStore
from immunoreset.registry.schema import qc_results, release_decisions

if TYPE_CHECKING:
    import pandas as pd

    from immunoreset.manufacturing.metrics import BagsPerBatch, SuccessRate, VeinToVein
    from immunoreset.registry.access import Actor


@dataclass(frozen=True, slots=True)
class ProgramMetrics:
    """Program metrics of the batches and courses the actor may see.

    Attributes
    ----------
    success : SuccessRate
        Manufacturing success rate with its exact confidence interval.
    vein_to_vein : VeinToVein
        Apheresis-to-infusion days, median and range.
    bags_per_batch : BagsPerBatch
    qc : pandas.DataFrame
        Per-attribute QC distributions
        (:func:`~immunoreset.manufacturing.metrics.qc_distributions`).
    n_decisions : Mapping[str, int]
        Release decisions recorded, by decision kind.
    reasons : tuple[str, ...]
    """

    success: SuccessRate
    vein_to_vein: VeinToVein
    bags_per_batch: BagsPerBatch
    qc: pd.DataFrame
    n_decisions: Mapping[str, int]
    reasons: tuple[str, ...]


class MetricsStore(SpecStore):
    """Program metrics of the visible batches and courses (success, vein-to-vein, bags, QC)."""

    def _manufacturing_courses(self, actor: Actor) -> list[c.Course]:
        """Visible courses holding only the manufacturing records (fast at 10,000 patients)."""
        from immunoreset.registry import schema as s

        with self.engine.connect() as conn:
            prows = {r["id"]: r for r in self.registry._visible_patients(conn, actor, None)}
            parts: dict[str, dict[int, list[Any]]] = {}
            for name in ("apheresis", "batches", "bags", "infusions"):
                ent = s.ENTITIES[name]
                t = ent.table
                grouped: dict[int, list[Any]] = {}
                rows = conn.execute(
                    select(t).where(t.c.deleted_at.is_(None)).order_by(t.c.id)
                ).mappings()
                for row in rows:
                    if row["patient_id"] in prows:
                        grouped.setdefault(row["patient_id"], []).append(ent.from_row(row))
                parts[name] = grouped
        return [
            c.Course(
                patient=s.PATIENT_ENTITY.from_row(prow),
                apheresis=tuple(parts["apheresis"].get(pid, ())),
                batches=tuple(parts["batches"].get(pid, ())),
                bags=tuple(parts["bags"].get(pid, ())),
                infusions=tuple(parts["infusions"].get(pid, ())),
            )
            for pid, prow in prows.items()
        ]

    def program_metrics(self, actor: Actor) -> ProgramMetrics:
        """Success rate, vein-to-vein time, bags per batch and QC distributions of the batches
        and courses the actor may see (:mod:`immunoreset.manufacturing.metrics`)."""
        from immunoreset.manufacturing import metrics as m

        courses = self._manufacturing_courses(actor)
        batches = [b for co in courses for b in co.batches]
        site_of = {b.batch_id: co.patient.site for co in courses for b in co.batches}
        bags = [g for co in courses for g in co.bags]
        ids = [b.batch_id for b in batches]
        qcs: list[BatchQc] = []
        counts = dict.fromkeys(DECISION_KINDS, 0)
        with self.engine.connect() as conn:
            current = {site: self._current_spec(conn, site) for site in set(site_of.values())}
            results: dict[str, dict[str, float | str]] = {}
            snapshots: dict[str, ReleaseSpec] = {}
            for part in _chunks(ids, 500):
                for r in conn.execute(
                    select(qc_results).where(
                        and_(qc_results.c.batch_id.in_(part), qc_results.c.deleted_at.is_(None))
                    )
                ).mappings():
                    results.setdefault(r["batch_id"], {})[r["attribute"]] = _stored_value(r)
                t = release_decisions
                for r in conn.execute(
                    select(t)
                    .where(and_(t.c.batch_id.in_(part), t.c.deleted_at.is_(None)))
                    .order_by(t.c.id)
                ).mappings():
                    counts[r["decision"]] = counts.get(r["decision"], 0) + 1
                    if r["decision"] != "refused":
                        snapshots[r["batch_id"]] = _cached_spec(r["spec_snapshot"])
        for b in batches:
            if b.batch_id not in results:
                continue
            spec = snapshots.get(b.batch_id) or current[site_of[b.batch_id]]
            vals = {k: v for k, v in results[b.batch_id].items() if k in spec.names}
            qcs.append(evaluate_batch(spec, vals, batch_id=b.batch_id))
        success = m.manufacturing_success(batches)
        v2v = m.vein_to_vein(courses)
        bpb = m.bags_per_batch(batches, bags)
        reasons = [
            *success.reasons,
            *(v2v.reasons[:1]),
            f"{len(qcs)} batches with QC results; decisions: "
            + ", ".join(f"{k} {v}" for k, v in counts.items()),
        ]
        return ProgramMetrics(
            success=success,
            vein_to_vein=v2v,
            bags_per_batch=bpb,
            qc=m.qc_distributions(qcs),
            n_decisions=counts,
            reasons=tuple(reasons),
        )
