"""The registry: SQLAlchemy tables, Alembic migrations, audited repository, access rules, CSV I/O."""

from immunoreset.registry.access import Actor, system_actor
from immunoreset.registry.repository import Registry, SaveStats

__all__ = ["Actor", "Registry", "SaveStats", "system_actor"]
