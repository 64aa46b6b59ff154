"""App settings (CONTRACT §1), read when first needed, never at import."""
from __future__ import annotations

import os
from typing import Mapping

from core.errors import ConfigurationError

# Every setting of CONTRACT §1, and which ones real mode needs before anything can work.
REQUIRED_IN_REAL_MODE = (
    "DATAVERSE_URL", "DATAVERSE_TENANT_ID", "DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET",
    "AUTHORIZENET_LOGIN_ID", "AUTHORIZENET_TRANSACTION_KEY", "AUTHORIZENET_CLIENT_KEY", "AUTHORIZENET_SIGNATURE_KEY",
    "W365_WEBHOOK_KEY", "W365_PUBLIC_BASE_URL",
)
OPTIONAL = ("AUTHORIZENET_ENVIRONMENT", "ServiceBusConnection", "W365_WORK_QUEUE", "W365_MODE")
LOCAL_DEFAULT_BASE_URL = "http://127.0.0.1:7071"


class Settings:
    def __init__(self, values: Mapping[str, str] | None = None):
        self._values = os.environ if values is None else values

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._values.get(name)
        return value if value not in (None, "") else default

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigurationError(f"The app setting {name} is not set.", setting=name)
        return value

    @property
    def is_local(self) -> bool:
        return (self.get("W365_MODE") or "").strip().lower() == "local"

    @property
    def public_base_url(self) -> str:
        if self.is_local:
            return (self.get("W365_PUBLIC_BASE_URL") or LOCAL_DEFAULT_BASE_URL).rstrip("/")
        return self.require("W365_PUBLIC_BASE_URL").rstrip("/")

    @property
    def gateway_environment(self) -> str:
        value = (self.get("AUTHORIZENET_ENVIRONMENT") or "sandbox").strip().lower()
        if value not in ("sandbox", "production"):
            raise ConfigurationError("AUTHORIZENET_ENVIRONMENT must be 'sandbox' or 'production'.",
                                     setting="AUTHORIZENET_ENVIRONMENT")
        return value

    def missing(self) -> list[str]:
        """Names of the settings real mode needs and lacks (local mode needs none). Never their values."""
        if self.is_local:
            return []
        return [name for name in REQUIRED_IN_REAL_MODE if self.get(name) is None]
