"""The web app: FastAPI pages and JSON API over the registry (``immunoreset serve``).

Imports are lazy so that ``immunoreset --help`` does not load FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WebSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from immunoreset.web.app import create_app

        return create_app
    if name == "WebSettings":
        from immunoreset.web.settings import WebSettings

        return WebSettings
    raise AttributeError(name)
