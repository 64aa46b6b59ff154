"""App settings (CONTRACT §1), read when first needed, never at import."""
from __future__ import annotations

import hashlib
import os
from typing import Mapping

from core.errors import ConfigurationError

SERVICE_BUS = "ServiceBusConnection"
SERVICE_BUS_IDENTITY = "ServiceBusConnection__fullyQualifiedNamespace"   # Functions' identity-based connection form
WORK_QUEUE = "W365_WORK_QUEUE"
DATAVERSE_MANAGED_IDENTITY = "DATAVERSE_USE_MANAGED_IDENTITY"
APP_REGISTRATION = ("DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET")   # not needed with the managed identity
# Every setting of CONTRACT §1, and which ones real mode needs before anything can work. Service Bus is required
# there: queued work (the write of an approved charge among it) must survive the process.
REQUIRED_IN_REAL_MODE = (
    "DATAVERSE_URL", "DATAVERSE_TENANT_ID", "DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET",
    "AUTHORIZENET_LOGIN_ID", "AUTHORIZENET_TRANSACTION_KEY", "AUTHORIZENET_CLIENT_KEY", "AUTHORIZENET_SIGNATURE_KEY",
    "W365_WEBHOOK_KEY", "W365_PUBLIC_BASE_URL", SERVICE_BUS, WORK_QUEUE,
)
OPTIONAL = ("AUTHORIZENET_ENVIRONMENT", SERVICE_BUS_IDENTITY, "W365_MODE", "W365_BILLING_SCHEDULE",
            "W365_BILLING_RUN_SHARE", "W365_DUNNING_SCHEDULE", "W365_ACCOUNT_UPDATER_SCHEDULE",
            DATAVERSE_MANAGED_IDENTITY)
# Settings with a default (CONTRACT §1 for the billing schedule). Timer schedules are read by the Functions host itself
# (a timer's %NAME% schedule), so the deployment sets them (infra/main.bicep); the dev host falls back to these.
DEFAULTS = {"W365_BILLING_SCHEDULE": "0 0 6 * * *", "W365_DUNNING_SCHEDULE": "0 30 6 * * *",
            "W365_ACCOUNT_UPDATER_SCHEDULE": "0 0 7 2 * *"}
LOCAL_DEFAULT_BASE_URL = "http://127.0.0.1:7071"

# CONTRACT §1: a secret shorter than this is a placeholder or a typo, not a key (an Authorize.Net transaction key,
# the shortest real one, has 16 characters).
MIN_SECRET_LENGTH = 16
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("      # App Service leaves the reference as the value when it cannot resolve
# SHA-256 of the stand-ins' built-in keys (standins/__init__.py; they are public, in this repository), so real mode
# refuses them without shipping them or importing the stand-ins. tests/unit/test_settings.py keeps this list whole.
STAND_IN_KEY_DIGESTS = frozenset({
    "b3d445621ab4c6d75ef223d6ed27b09f1cea532d8a2adb224ee3e30bf384df67",   # LOCAL_WEBHOOK_KEY
    "320a51c24f02e608082561f54a1e854e93b0169a32192331f0d8ddf2885f02ec",   # LOCAL_SIGNATURE_KEY
    "729a78e3dc6d2403542f354e5636a16c0d72221805383d65b37caaa94aeb1f88",   # LOCAL_GATEWAY_KEY
    "1c7874a30c6bdfe5c6b11ae3d12b40454535c44c4200b318a8f48e9c69c9fbe8",   # LOCAL_PROVIDER_SIGNING_KEY
})


def is_secret(name: str) -> bool:
    """CONTRACT §1's secret settings: `*_KEY`, `*_SECRET` and connection strings."""
    return name.endswith(("_KEY", "_SECRET")) or name == SERVICE_BUS


class Settings:
    def __init__(self, values: Mapping[str, str] | None = None):
        self._values = os.environ if values is None else values

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value, or `default` when the setting is missing or unusable (`problem`)."""
        value = self._values.get(name)
        return default if value is None or self.problem(name) else value

    def problem(self, name: str) -> str | None:
        """Why the setting cannot be used, in words that never repeat its value; None when it can."""
        value = self._values.get(name)
        if value is None or value == "":
            return "is not set"
        if not value.strip():
            return "is blank"
        if value.strip().startswith(KEY_VAULT_REFERENCE):
            return "is an unresolved Key Vault reference (check the app's identity and the vault's access policy)"
        if is_secret(name):
            if len(value.strip()) < MIN_SECRET_LENGTH:
                return f"is shorter than {MIN_SECRET_LENGTH} characters, too short to be a key"
            if not self.is_local and hashlib.sha256(value.encode("utf-8")).hexdigest() in STAND_IN_KEY_DIGESTS:
                return "is a local stand-in's built-in key, which real mode never accepts"
        return None

    def require(self, name: str) -> str:
        problem = self.problem(name)
        if problem:
            raise ConfigurationError(f"The app setting {name} {problem}.", setting=name)
        return self._values[name]

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

    @property
    def service_bus_namespace(self) -> str | None:
        """The identity form of the Service Bus connection (the app's managed identity), when it is the one set."""
        return None if self.get(SERVICE_BUS) else self.get(SERVICE_BUS_IDENTITY)

    @property
    def dataverse_uses_managed_identity(self) -> bool:
        """DATAVERSE_USE_MANAGED_IDENTITY: the app's managed identity is the Dataverse application user, so the app
        registration's client id and secret are not needed (CONTRACT §1)."""
        return (self.get(DATAVERSE_MANAGED_IDENTITY) or "").strip().lower() in ("true", "1", "yes")

    def missing(self) -> list[str]:
        """Names of the settings real mode needs and lacks or cannot use (local mode needs none). Never values."""
        if self.is_local:
            return []
        not_needed = APP_REGISTRATION if self.dataverse_uses_managed_identity else ()
        return [name for name in REQUIRED_IN_REAL_MODE if self.get(name) is None and name not in not_needed
                and not (name == SERVICE_BUS and self.get(SERVICE_BUS_IDENTITY))]
