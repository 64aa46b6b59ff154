"""An in-memory Dataverse Web API v9.2 for tests and local mode, built from core.footprint. See http.py."""
from standins.dataverse.http import DataverseStandIn, StandInConnectionError

__all__ = ["DataverseStandIn", "StandInConnectionError"]
