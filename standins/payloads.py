"""Build RemoteExecutionContext bodies exactly as Dataverse serializes them (research/dataverse.md §1a, shared/samples):
key/value lists, `__type` tags, `\\/Date(ms)\\/` dates. Used by the terminal command and by tests."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Mapping

from core import jsonutil
from standins import LOCAL_ORGANIZATION_ID

_CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"


def entity_reference(logical_name: str, record_id: str) -> dict:
    return {"__type": f"EntityReference:{_CONTRACTS}", "Id": record_id, "KeyAttributes": [],
            "LogicalName": logical_name, "Name": None, "RowVersion": None}


def entity(logical_name: str, record_id: str, attributes: Mapping[str, Any]) -> dict:
    return {"__type": f"Entity:{_CONTRACTS}", "Attributes": [{"key": k, "value": _wire(v)} for k, v in
                                                              attributes.items()],
            "EntityState": None, "FormattedValues": [], "Id": record_id, "KeyAttributes": [],
            "LogicalName": logical_name, "RelatedEntities": [], "RowVersion": None}


def money(value: Decimal | str) -> dict:
    return {"__type": f"Money:{_CONTRACTS}", "Value": Decimal(value)}


def option(value: int) -> dict:
    return {"__type": f"OptionSetValue:{_CONTRACTS}", "Value": value}


def _wire(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return f"/Date({int(value.timestamp() * 1000)})/"
    return value


def context(message: str, table: str, record_id: str, *, inputs: Mapping[str, Any] | None = None,
            pre_image: Mapping[str, Any] | None = None, post_image: Mapping[str, Any] | None = None,
            user_id: str = "75c2dd85-e89e-e711-8122-000d3aa2331c", depth: int = 1, mode: int = 1,
            stage: int = 40, organization_id: str = LOCAL_ORGANIZATION_ID) -> dict:
    now = f"/Date({int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)})/"
    return {
        "BusinessUnitId": "5f1c2a8e-3b5d-4e7f-9a1b-2c3d4e5f6a7b", "CorrelationId": str(uuid.uuid4()), "Depth": depth,
        "InitiatingUserId": user_id,
        "InputParameters": [{"key": k, "value": v} for k, v in (inputs or {}).items()],
        "IsExecutingOffline": False, "IsInTransaction": mode == 0, "IsOfflinePlayback": False, "IsolationMode": 1,
        "MessageName": message, "Mode": mode, "OperationCreatedOn": now, "OperationId": str(uuid.uuid4()),
        "OrganizationId": organization_id, "OrganizationName": "contoso",
        "OutputParameters": [],
        "OwningExtension": {"Id": str(uuid.uuid4()), "KeyAttributes": [], "LogicalName": "sdkmessageprocessingstep",
                            "Name": f"W365: {message} of {table}", "RowVersion": None},
        "ParentContext": None,
        "PostEntityImages": ([{"key": "PostImage", "value": entity(table, record_id, post_image)}]
                             if post_image is not None else []),
        "PreEntityImages": ([{"key": "PreImage", "value": entity(table, record_id, pre_image)}]
                            if pre_image is not None else []),
        "PrimaryEntityId": record_id, "PrimaryEntityName": table, "RequestId": None, "SecondaryEntityName": "none",
        "SharedVariables": [], "Stage": stage, "UserId": user_id,
    }


def custom_api(message: str, table: str, record_id: str, parameters: Mapping[str, Any] | None = None, *,
               request_id: str | None = None, user_id: str = "75c2dd85-e89e-e711-8122-000d3aa2331c") -> dict:
    """A ribbon button's Custom API call: Target reference, a client-made RequestId, the parameters."""
    inputs = {"Target": entity_reference(table, record_id), "RequestId": request_id or str(uuid.uuid4()),
              **(parameters or {})}
    return context(message, table, record_id, inputs=inputs, user_id=user_id, mode=1, stage=40)


def table_event(message: str, table: str, record_id: str, attributes: Mapping[str, Any], *,
                pre_image: Mapping[str, Any] | None = None, user_id: str = "75c2dd85-e89e-e711-8122-000d3aa2331c",
                depth: int = 1) -> dict:
    """A Create or Update step: Target is the Entity with the changed attributes."""
    return context(message, table, record_id, inputs={"Target": entity(table, record_id, attributes)},
                   pre_image=pre_image, user_id=user_id, depth=depth)


def dumps(body: Mapping[str, Any]) -> bytes:
    """As DataContractJsonSerializer writes: `/` escaped as `\\/`, decimals as exact numbers."""
    return jsonutil.dumps(body, separators=(",", ":")).replace("/", "\\/").encode()
