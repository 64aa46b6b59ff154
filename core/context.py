"""What a Dataverse pipeline step hands us, as frozen values the use cases can read.

dataverse/context.py parses the RemoteExecutionContext wire format into these; handlers never see the key/value lists,
`/Date(...)/` strings or `__type` tags.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class EntityRef:
    logical_name: str
    id: str
    name: str | None = None


@dataclass(frozen=True)
class EntityImage:
    """An Entity (Target of Create/Update, or a pre/post image): its attributes with values already converted:
    Money -> Decimal, OptionSetValue -> int, EntityReference -> EntityRef, dates -> aware datetime."""
    logical_name: str
    id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)


@dataclass(frozen=True)
class PluginContext:
    message_name: str
    primary_entity_name: str
    primary_entity_id: str
    input_parameters: Mapping[str, Any] = field(default_factory=dict)
    pre_images: Mapping[str, EntityImage] = field(default_factory=dict)
    post_images: Mapping[str, EntityImage] = field(default_factory=dict)
    initiating_user_id: str = ""
    user_id: str = ""
    depth: int = 1
    correlation_id: str = ""
    operation_id: str = ""
    mode: int = 1                     # 0 sync, 1 async
    stage: int = 40
    organization_name: str = ""
    organization_id: str = ""         # the environment that sent it (a restored copy keeps everything else)
    size_exceeded: bool = False       # x-ms-dynamics-msg-size-exceeded: inputs and images were dropped; re-read

    @property
    def target(self) -> EntityRef | EntityImage | None:
        return self.input_parameters.get("Target")

    @property
    def request_id(self) -> str | None:
        value = self.input_parameters.get("RequestId")
        return str(value) if value is not None else None

    def param(self, name: str, default: Any = None) -> Any:
        return self.input_parameters.get(name, default)

    def pre_image(self) -> EntityImage | None:
        return next(iter(self.pre_images.values()), None)

    def post_image(self) -> EntityImage | None:
        return next(iter(self.post_images.values()), None)
