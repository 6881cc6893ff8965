"""Fixtures of the command-line tests, shared with the web and report tests."""

from __future__ import annotations

from tests.report.conftest import demo_registry, published
from tests.web.conftest import registry, template_db

__all__ = ["demo_registry", "published", "registry", "template_db"]
