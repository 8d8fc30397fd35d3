"""Versioned event models and the envelope they travel in on NATS JetStream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

SUBJECT_PREFIX = "gameplane."
STREAM_NAME = "GAMEPLANE"

_REGISTRY: dict[tuple[str, int], type[Event]] = {}


class Event(BaseModel):
    """Base of every event payload. Subclasses set `event_type` ("<service>.<name>") and `event_version`.

    A breaking change is a new class with a higher version; consumers pick by (type, version).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    event_type: ClassVar[str] = ""
    event_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.event_type:
            _REGISTRY[(cls.event_type, cls.event_version)] = cls

    @classmethod
    def subject(cls) -> str:
        return SUBJECT_PREFIX + cls.event_type


class Envelope(BaseModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    data: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event, producer: str, event_id: uuid.UUID | None = None) -> Envelope:
        return cls(id=event_id or uuid.uuid4(), type=event.event_type, version=event.event_version,
                   producer=producer, data=event.model_dump(mode="json"))

    def open(self) -> Event:
        model = _REGISTRY.get((self.type, self.version))
        if model is None:
            raise LookupError(f"unknown event {self.type} v{self.version}")
        return model.model_validate(self.data)

    @property
    def subject(self) -> str:
        return SUBJECT_PREFIX + self.type


def event_class(event_type: str, version: int = 1) -> type[Event]:
    return _REGISTRY[(event_type, version)]
