"""One module per platform; each exposes ``parse(body, ctx) -> ParseResult``.

``parse_delivery`` is the one entry point the HTTP service, ``python -m services.ingest.parse``
and the dead-letter replay use."""

from collections.abc import Callable

from schemas.messages import Platform
from services.ingest.platforms import facebook, generic, instagram, whatsapp, x
from services.ingest.platforms.base import DeliveryContext, MalformedDelivery, ParseResult

PARSERS: dict[Platform, Callable[[bytes, DeliveryContext], ParseResult]] = {
    Platform.instagram: instagram.parse,
    Platform.facebook: facebook.parse,
    Platform.whatsapp: whatsapp.parse,
    Platform.x: x.parse,
    Platform.generic: generic.parse,
}


def parse_delivery(platform: Platform, body: bytes, ctx: DeliveryContext) -> ParseResult:
    """Turn one delivery body into messages and per-entry rejections.

    Raises MalformedDelivery when the body as a whole cannot be parsed; never anything else
    (property-tested with arbitrary bytes and JSON)."""
    parser = PARSERS.get(platform)
    if parser is None:
        raise MalformedDelivery("unsupported_platform", f"no parser for platform {platform}")
    return parser(body, ctx)
