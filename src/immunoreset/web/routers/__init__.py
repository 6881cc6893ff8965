"""One router per resource: auth, dashboard, patients, batches, audit, reports, API, API docs."""
