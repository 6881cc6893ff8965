"""GMP records of the registry and the audited operations over them.

Tables (on the registry's one :data:`~immunoreset.registry.schema.metadata`, so Alembic sees
them): release specifications a site loaded (``release_specs``), QC results per batch and
attribute (``qc_results``), release decisions with a snapshot of the specification they were
made against (``release_decisions``), hospital-exemption authorisations
(``he_authorisations``) and the reports they require (``he_reports``). Every row carries
``created_at``/``updated_at`` and a soft-delete stamp; nothing here is ever hard-deleted.

:class:`Gmp` wraps a :class:`~immunoreset.registry.repository.Registry`. Each operation takes an
:class:`~immunoreset.registry.access.Actor`; the site rule is applied through the patient who
owns the batch or bag (a batch of another site is "not found"), writes need a writing role, and
every change writes ``audit_log`` rows in the same transaction. Refusals — a chain-of-identity
violation at the bedside, a release refused on QC — are written to the audit trail with action
``refused`` (and the reason code) before the error is raised.

The logic itself is in :mod:`immunoreset.manufacturing` (pure functions); the stores only read
and write records and hand them over, one module per record: :mod:`.specs`, :mod:`.qc`,
:mod:`.signatures`, :mod:`.deviations`, :mod:`.release`, :mod:`.infusion` (with the
chain-of-identity checks), :mod:`.authorisations`
(hospital exemption) and :mod:`.metrics`, over the shared :mod:`._base`. The tables are defined
in :mod:`immunoreset.registry.schema`. :class:`Gmp` is the facade every caller uses.

Source
------
Issue 4 (point-of-care manufacturing): chain of identity, release against a versioned
specification, dose from bags, hospital-exemption authorisations, program metrics.

Settings
--------
* The **specification that applies to a batch** is the one its site's ``qa`` users loaded
  last, else the program-wide one an admin loaded last (``release_specs``), else the shipped
  ``default-v1``. A loaded ``(spec_id, version)`` is immutable within its site (or the
  program): loading different content under the same pair is refused.
* **Release and deviation approval are electronic signatures** of a ``qa`` user of the batch's
  site who re-enters their password (:mod:`.signatures`; 21 CFR Part 11 §11.50/§11.70, EU GMP
  Annex 11 §14); deviations are raised by registry users and approved by another
  (:mod:`.deviations`).
* A batch that has been released is evaluated against the specification it was released
  against (the snapshot stored with the decision), never a newer one.
* The infused dose, when not given, is the sum of the bags' CAR+ T cells over the weight (whole
  bags; give ``dose_cells_per_kg`` for a partial draw). The weight, when not given, is the
  patient's most recent weight on or before the infusion date.
"""

from __future__ import annotations

from immunoreset.registry.gmp._base import DECISION_KINDS
from immunoreset.registry.gmp.authorisations import AuthorisationStore
from immunoreset.registry.gmp.infusion import InfusionStore
from immunoreset.registry.gmp.metrics import MetricsStore, ProgramMetrics
from immunoreset.registry.gmp.qc import QcStore
from immunoreset.registry.gmp.release import ReleaseStore
from immunoreset.registry.gmp.specs import SpecStore
from immunoreset.registry.schema import (
    he_authorisations,
    he_reports,
    qc_results,
    release_decisions,
    release_specs,
)

__all__ = [
    "DECISION_KINDS",
    "Gmp",
    "ProgramMetrics",
    "he_authorisations",
    "he_reports",
    "qc_results",
    "release_decisions",
    "release_specs",
]


class Gmp(ReleaseStore, InfusionStore, QcStore, MetricsStore, SpecStore, AuthorisationStore):
    """Audited GMP operations over a registry (QC, release, infusion, trace, authorisations).

    The facade of the record stores (subclasses listed before the stores they build on, so the
    method order is consistent): ``Gmp(registry).record_qc(...)``, ``.raise_deviation(...)``,
    ``.approve_deviation(...)``, ``.release(...)``, ``.infuse(...)``, ``.trace(...)``,
    ``.add_authorisation(...)``, ``.program_metrics(...)``.

    Parameters
    ----------
    registry : Registry
        The registry whose database holds the GMP tables (created by its migrations).
    """
