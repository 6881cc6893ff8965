"""Standards out and in: FHIR R4 bundles, CDISC SDTM (XPT + Define-XML 2.1), REDCap.

Exports are pure functions over :class:`~immunoreset.course.Course` objects (and the
registry's manufacturing records); the ``export_*`` wrappers load the actor's visible
courses and write the export to the audit trail. Imports build courses and write them through
the registry's one validated, audited, all-or-nothing import path
(:func:`immunoreset.registry.csvio.import_courses`). Mapping tables (codes, units, domains,
instruments) are data in ``codes.yaml`` and in each module's tables; docs/interop.md documents
them.
"""
