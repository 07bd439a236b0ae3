"""One module per platform; each exposes ``parse(body, ctx) -> ParseResult``."""

from collections.abc import Callable

from schemas.messages import Platform
from services.ingest.parsing import DeliveryContext, ParseResult
from services.ingest.platforms import meta

PARSERS: dict[Platform, Callable[[bytes, DeliveryContext], ParseResult]] = {
    Platform.instagram: meta.parse,
}
