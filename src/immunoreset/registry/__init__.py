"""The registry: tables, migrations, audited repository, access rules, CSV import/export."""

from immunoreset.registry.access import Actor, system_actor
from immunoreset.registry.repository import Registry, SaveStats

__all__ = ["Actor", "Registry", "SaveStats", "system_actor"]
