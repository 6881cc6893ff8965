"""Settings of the web app, read from ``IMMUNORESET_*`` environment variables.

=========================================  ===============  ========================================
variable                                   default          meaning
=========================================  ===============  ========================================
``IMMUNORESET_ENVIRONMENT``                ``production``   ``development``: random per-process key
``IMMUNORESET_SECRET_KEY``                 (none)           signs cookies and CSRF tokens, ≥ 32 ch.
``IMMUNORESET_SECURE_COOKIES``             on outside dev   ``Secure`` cookie flag (HTTPS only)
``IMMUNORESET_SESSION_MAX_AGE``            ``28800``        session lifetime, s (60–604800)
``IMMUNORESET_BAG_EXPIRY_WARNING_DAYS``    ``30``           "bag expiring" alert horizon, days
``IMMUNORESET_TODAY``                      (the date)       fixed "today" for demos and tests
``IMMUNORESET_DB_URL``                     (none)           SQLite path or SQLAlchemy URL
``IMMUNORESET_PAGE_SIZE``                  ``50``           dashboard patients per page
``IMMUNORESET_HSTS_SECONDS``               ``0``            ``Strict-Transport-Security`` max-age
                                                            (0: no header; set it behind HTTPS)
``IMMUNORESET_LOGIN_FREE_FAILURES``        ``5``            failures (per address and account)
                                                            before the login delay starts
``IMMUNORESET_LOGIN_MAX_DELAY_S``          ``900``          longest login delay, s (doubling)
``IMMUNORESET_TOKEN_DAYS``                 ``90``           lifetime of a new API token, days
``IMMUNORESET_FIT_DIR``                    (none)           folder of a population fit
                                                            (``immunoreset fit --out``): forecast
                                                            band on the patient page's B cells
``IMMUNORESET_FIT_LLOQ``                   (none)           LLOQs for records without one, as
                                                            ``forecast --lloq``: ``4=1.0 2=0.05``
=========================================  ===============  ========================================

Secrets never have working defaults outside development: :class:`WebSettings` refuses to be
built in production without a secret key of at least 32 characters.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MIN_SECRET_LENGTH", "WebSettings"]

MIN_SECRET_LENGTH = 32


class WebSettings(BaseSettings):
    """Web-app settings (environment prefix ``IMMUNORESET_``; see the module table)."""

    model_config = SettingsConfigDict(env_prefix="IMMUNORESET_", extra="ignore")

    environment: Literal["development", "production"] = "production"
    secret_key: str | None = Field(default=None, repr=False)
    secure_cookies: bool | None = None
    session_max_age: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    login_free_failures: int = Field(default=5, ge=1, le=100)
    login_max_delay_s: int = Field(default=900, ge=1, le=24 * 3600)
    token_days: int = Field(default=90, ge=1, le=3650)
    hsts_seconds: int = Field(default=0, ge=0, le=2 * 365 * 24 * 3600)
    bag_expiry_warning_days: int = Field(default=30, ge=0, le=365)
    today: dt.date | None = None
    db_url: str | None = None
    page_size: int = Field(default=50, ge=5, le=500)
    fit_dir: Path | None = None
    fit_lloq: str = ""

    @model_validator(mode="after")
    def _refuse_insecure(self) -> WebSettings:
        if self.secret_key is None or self.secret_key == "":
            if self.environment != "development":
                raise ValueError(
                    "IMMUNORESET_SECRET_KEY is not set: set a random secret of at least "
                    f"{MIN_SECRET_LENGTH} characters (e.g. `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'`), or IMMUNORESET_ENVIRONMENT=development "
                    "for a throwaway per-process key"
                )
            self.secret_key = secrets.token_urlsafe(48)
        elif len(self.secret_key) < MIN_SECRET_LENGTH and self.environment != "development":
            raise ValueError(
                f"IMMUNORESET_SECRET_KEY must have at least {MIN_SECRET_LENGTH} characters"
            )
        if self.secure_cookies is None:
            self.secure_cookies = self.environment != "development"
        return self

    @property
    def key(self) -> bytes:
        """The secret key as bytes (always set once validated)."""
        return (self.secret_key or "").encode()

    def current_date(self) -> dt.date:
        """``today`` when fixed, else the server's date."""
        return self.today or dt.date.today()
