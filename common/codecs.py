"""orjson codecs: one fast JSON path for aiokafka processors and faust alike."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def dumps(value: Any) -> bytes:
    """Serialise a model or plain data; datetimes become RFC 3339 with offset."""
    if isinstance(value, BaseModel):
        return orjson.dumps(value.model_dump(mode="json", exclude_none=False))
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def decode_model(model: type[M], data: bytes) -> M:
    """Validate a topic record against its model; raises pydantic.ValidationError or
    orjson.JSONDecodeError (a subclass of ValueError) on bad input."""
    return model.model_validate_json(data)


def register_faust_codec() -> None:
    """Register ``orjson`` as a faust serializer name (``value_serializer="orjson"``)."""
    from faust.serializers import codecs

    class OrjsonCodec(codecs.Codec):
        def _dumps(self, obj: Any) -> bytes:
            return dumps(obj)

        def _loads(self, s: bytes) -> Any:
            return orjson.loads(s)

    codecs.register("orjson", OrjsonCodec())
