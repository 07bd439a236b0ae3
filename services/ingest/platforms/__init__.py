"""One module per platform; each exposes ``parse(body, ctx) -> ParseResult``."""

from collections.abc import Callable

from schemas.messages import Platform
from services.ingest.parsing import DeliveryContext, ParseResult
from services.ingest.platforms import facebook, generic, instagram, whatsapp, x

PARSERS: dict[Platform, Callable[[bytes, DeliveryContext], ParseResult]] = {
    Platform.instagram: instagram.parse,
    Platform.facebook: facebook.parse,
    Platform.whatsapp: whatsapp.parse,
    Platform.x: x.parse,
    Platform.generic: generic.parse,
}
