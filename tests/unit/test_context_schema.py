"""dataverse/context.py validates the RemoteExecutionContext with a pydantic-core schema written out by hand (no
pydantic model build on the first request). This holds it against the pydantic model it stands for: on any JSON-like
input, both accept with the same values or both refuse with the same first error (location, type and words)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataverse.context import _wire_model


class _KeyValue(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str = Field(max_length=256)
    value: Any = None


class _WireContext(BaseModel):
    model_config = ConfigDict(extra="ignore")
    MessageName: str = Field(min_length=1, max_length=256)
    PrimaryEntityName: str = Field(default="none", max_length=128)
    PrimaryEntityId: str = Field(default="", max_length=64)
    InputParameters: list[_KeyValue] = Field(default_factory=list, max_length=200)
    PreEntityImages: list[_KeyValue] = Field(default_factory=list, max_length=20)
    PostEntityImages: list[_KeyValue] = Field(default_factory=list, max_length=20)
    InitiatingUserId: str = Field(default="", max_length=64)
    UserId: str = Field(default="", max_length=64)
    Depth: int = Field(default=1, ge=0, le=1000)
    CorrelationId: str = Field(default="", max_length=64)
    OperationId: str = Field(default="", max_length=64)
    Mode: int = Field(default=1, ge=0, le=1)
    Stage: int = Field(default=40, ge=0, le=100)
    OrganizationName: str = Field(default="", max_length=256)
    OrganizationId: str = Field(default="", max_length=64)


FIELDS = list(_WireContext.model_fields)


def _plain(value: Any) -> Any:
    if isinstance(value, (BaseModel,)) or hasattr(value, "__pydantic_fields_set__"):
        return {name: _plain(getattr(value, name)) for name in ("key", "value") if hasattr(value, name)} \
            if not hasattr(value, "MessageName") else {name: _plain(getattr(value, name)) for name in FIELDS}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _outcome(validate, raw: dict) -> tuple:
    try:
        return ("ok", _plain(validate(raw)))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return ("refused", first["type"], tuple(first["loc"]), first["msg"])


def _same(raw: dict) -> None:
    assert _outcome(_wire_model().validate_python, raw) == _outcome(_WireContext.model_validate, raw)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 2000), st.text(max_size=300),
                    st.decimals(allow_nan=False, allow_infinity=False, places=2), st.sampled_from(["", "1", "40", "x"]))
json_like = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                         max_leaves=6)
pair = st.one_of(st.fixed_dictionaries({"key": st.one_of(st.text(max_size=260), scalars)},
                                       optional={"value": json_like, "extra": scalars}), json_like)
field_values = {
    "MessageName": st.one_of(st.text(max_size=260), scalars),
    "InputParameters": st.one_of(st.lists(pair, max_size=4), json_like),
    "PreEntityImages": st.one_of(st.lists(pair, max_size=3), json_like),
    "Depth": st.one_of(st.integers(-3, 1003), scalars), "Mode": st.one_of(st.integers(-1, 2), scalars),
    "Stage": st.one_of(st.integers(-1, 101), scalars),
}
contexts = st.fixed_dictionaries({}, optional={**{name: st.one_of(st.text(max_size=140), scalars) for name in FIELDS},
                                               **field_values, "Unknown": json_like})


@settings(max_examples=400, deadline=None)
@given(contexts)
def test_the_schema_validates_as_the_model_would(raw):
    _same(raw)


@pytest.mark.parametrize("raw", [
    {"MessageName": "w365_ChargeInvoice", "InputParameters": [{"key": "Amount", "value": Decimal("40.00")}],
     "Depth": Decimal("1.0"), "Mode": "1", "Stage": 40.0},
    {"MessageName": ""}, {}, {"MessageName": "x", "InputParameters": [{"value": 1}]},
    {"MessageName": "x", "InputParameters": ["not a pair"]}, {"MessageName": "x", "Depth": True},
    {"MessageName": "x", "InputParameters": [{"key": "k"}] * 201}, {"MessageName": "x" * 257},
])
def test_the_edges_the_platform_tests_rely_on(raw):
    _same(raw)
