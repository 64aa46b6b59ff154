"""Parse Dataverse's RemoteExecutionContext (webhook body or Service Bus JSON message) into core.context values.

The wire format is DataContractJsonSerializer's: Attributes, InputParameters and images are lists of {key, value};
dates are "/Date(ms[+-zzzz])/"; Money, OptionSetValue, EntityReference and Entity are objects tagged with "__type"
(research/dataverse.md §1a). Anything that does not have that shape is refused with BadRequest naming the field.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from decimal import Decimal
from typing import Any


from core.context import EntityImage, EntityRef, PluginContext
from core.errors import BadRequest
from core.text import require_valid_text

MAX_BODY_BYTES = 1024 * 1024          # Dataverse drops images past 256 KB; anything far bigger is not Dataverse
MAX_NESTING = 12                      # Entity -> attribute -> EntityReference is 4 deep; images of images are not sent
_DATE = re.compile(r"^/Date\((-?\d{1,15})([+-]\d{4})?\)/$")


@functools.lru_cache(maxsize=1)
def _wire_model() -> Any:
    """The validator of the fields we read, built on first use. It is pydantic-core's SchemaValidator over a schema
    written out here, the one pydantic would generate for the model below, so it validates and words its errors exactly
    as that model does (tests/unit/test_context_schema.py holds them side by side) without pydantic's model machinery,
    whose import and schema generation cost the first request more than the rest of its work (bench/cold_start.py):

        class _KeyValue(BaseModel):             # extra="ignore"
            key: str = Field(max_length=256)
            value: Any = None

        class _WireContext(BaseModel):          # extra="ignore": Dataverse sends many more fields
            MessageName: str = Field(min_length=1, max_length=256)
            PrimaryEntityName: str = Field(default="none", max_length=128)
            ... (WIRE_FIELDS)
    """
    from pydantic_core import SchemaValidator, core_schema as cs

    def text(max_length: int, min_length: int | None = None) -> Any:
        return cs.str_schema(max_length=max_length, min_length=min_length)

    def model(cls: type, fields: dict[str, Any]) -> Any:
        return cs.model_schema(cls, cs.model_fields_schema(
            {name: cs.model_field(schema) for name, schema in fields.items()}, model_name=cls.__name__,
            extra_behavior="ignore"), extra_behavior="ignore")

    key_value = model(_KeyValue, {"key": text(256), "value": cs.with_default_schema(cs.any_schema(), default=None)})

    def pairs(max_length: int) -> Any:
        return cs.with_default_schema(cs.list_schema(key_value, max_length=max_length), default_factory=list)

    def number(default: int, ge: int, le: int) -> Any:
        return cs.with_default_schema(cs.int_schema(ge=ge, le=le), default=default)

    def optional_text(default: str, max_length: int) -> Any:
        return cs.with_default_schema(text(max_length), default=default)

    return SchemaValidator(model(_WireContext, {
        "MessageName": text(256, min_length=1),
        "PrimaryEntityName": optional_text("none", 128),
        "PrimaryEntityId": optional_text("", 64),
        "InputParameters": pairs(200),
        "PreEntityImages": pairs(20),
        "PostEntityImages": pairs(20),
        "InitiatingUserId": optional_text("", 64),
        "UserId": optional_text("", 64),
        "Depth": number(1, 0, 1000),
        "CorrelationId": optional_text("", 64),
        "OperationId": optional_text("", 64),
        "Mode": number(1, 0, 1),
        "Stage": number(40, 0, 100),
        "OrganizationName": optional_text("", 256),
        "OrganizationId": optional_text("", 64),
    }))


class _KeyValue:
    """One {key, value} pair of InputParameters or an image list, as validated by _wire_model()."""
    key: str
    value: Any


class _WireContext:
    """The RemoteExecutionContext fields we read, as validated by _wire_model()."""


def parse_context(body: bytes, *, size_exceeded: bool = False) -> PluginContext:
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        # parse_float=Decimal: an Amount of 40.00 must stay exactly 40.00.
        raw = json.loads(body.decode("utf-8-sig"), parse_float=Decimal)
    except RecursionError:
        raise BadRequest("The body is nested too deeply to be a RemoteExecutionContext.") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise BadRequest("The body must be a JSON object (a RemoteExecutionContext).")
    _check_depth(raw)
    require_valid_text(raw)
    from pydantic_core import ValidationError

    try:
        wire = _wire_model().validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequest(f"Field {where}: {first['msg']}.") from None
    return PluginContext(
        message_name=wire.MessageName,
        primary_entity_name=wire.PrimaryEntityName.lower(),
        primary_entity_id=_guid_or_empty(wire.PrimaryEntityId, "PrimaryEntityId"),
        input_parameters=_typed_parameters(wire.MessageName, {kv.key: _convert(kv.value, f"InputParameters.{kv.key}")
                                                              for kv in wire.InputParameters}),
        pre_images=_images(wire.PreEntityImages, "PreEntityImages"),
        post_images=_images(wire.PostEntityImages, "PostEntityImages"),
        initiating_user_id=_guid_or_empty(wire.InitiatingUserId, "InitiatingUserId"),
        user_id=_guid_or_empty(wire.UserId, "UserId"),
        depth=wire.Depth,
        correlation_id=wire.CorrelationId,
        operation_id=wire.OperationId,
        mode=wire.Mode,
        stage=wire.Stage,
        organization_name=wire.OrganizationName,
        organization_id=_guid_or_empty(wire.OrganizationId, "OrganizationId"),
        size_exceeded=size_exceeded,
    )


def _typed_parameters(message_name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters a Custom API declares as Guid arrive as text in any of the forms Dataverse accepts (hyphens or
    not, braces, any case): normalised like Target, so the use cases only ever see the canonical form."""
    from core import footprint

    api = next((a for a in footprint.CUSTOM_APIS if a.unique_name.lower() == (message_name or "").lower()), None)
    for parameter in api.parameters if api else ():
        value = parameters.get(parameter.name)
        if parameter.type == "Guid" and value not in (None, ""):
            if isinstance(value, EntityRef):
                value = value.id
            parameters[parameter.name] = _guid_or_empty(value, f"InputParameters.{parameter.name}")
    return parameters


def is_guid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36, 38)


def _guid_or_empty(value: Any, field: str) -> str:
    if value == "":
        return ""
    if not is_guid(value):
        raise BadRequest(f"Field {field} is not a GUID.")
    return str(uuid.UUID(value))


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_NESTING:
        raise BadRequest("The body is nested too deeply to be a RemoteExecutionContext.")
    if isinstance(value, dict):
        for item in value.values():
            _check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_depth(item, depth + 1)


def _images(items: list[Any], field: str) -> dict[str, EntityImage]:
    images = {}
    for kv in items:
        image = _convert(kv.value, f"{field}.{kv.key}")
        if not isinstance(image, EntityImage):
            raise BadRequest(f"Field {field}.{kv.key} is not an Entity.")
        images[kv.key] = image
    return images


def _convert(value: Any, where: str) -> Any:
    """One typed value of the DataContract JSON into a plain Python value."""
    if isinstance(value, str):
        match = _DATE.match(value)
        if match:
            try:
                return dt.datetime.fromtimestamp(int(match.group(1)) / 1000, tz=dt.timezone.utc)
            except (OverflowError, OSError, ValueError):      # 15 digits reach past datetime's year 9999
                raise BadRequest(f"Field {where} is a date out of range.") from None
        return value
    if isinstance(value, list):
        return [_convert(item, where) for item in value]
    if not isinstance(value, dict):
        return value                                  # bool, int, Decimal, None
    type_name = str(value.get("__type", "")).split(":", 1)[0]
    if type_name == "EntityReference":
        ref_id, logical = value.get("Id"), value.get("LogicalName")
        if not is_guid(ref_id) or not isinstance(logical, str) or not logical:
            raise BadRequest(f"Field {where} is not a valid EntityReference.")
        name = value.get("Name")
        return EntityRef(logical.lower(), str(uuid.UUID(ref_id)), name if isinstance(name, str) else None)
    if type_name == "Entity" or ("Attributes" in value and "LogicalName" in value):
        attributes = value.get("Attributes") or []
        if not isinstance(attributes, list) or not all(isinstance(a, dict) and "key" in a for a in attributes):
            raise BadRequest(f"Field {where}.Attributes is not a key/value list.")
        entity_id = value.get("Id") or ""
        if entity_id and not is_guid(entity_id):
            raise BadRequest(f"Field {where}.Id is not a GUID.")
        return EntityImage(str(value.get("LogicalName") or "").lower(), str(uuid.UUID(entity_id)) if entity_id else "",
                           {str(a["key"]): _convert(a.get("value"), f"{where}.{a['key']}") for a in attributes})
    if type_name == "Money":
        return _decimal(value.get("Value"), where)
    if type_name == "OptionSetValue":
        option = value.get("Value")
        if not isinstance(option, int) or isinstance(option, bool):
            raise BadRequest(f"Field {where} is not a valid OptionSetValue.")
        return option
    if type_name == "OptionSetValueCollection":
        return [_convert(item, where) for item in value.get("Value") or []]
    raise BadRequest(f"Field {where} has a value of unknown type {type_name or 'object'}.")


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise BadRequest(f"Field {where} is not a number.")
    return Decimal(value)
