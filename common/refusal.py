"""The one refusal type: an input a stage will not process, and why.

Parsing errors of ingest and route's rejected inputs derive from it (or raise it), so every
transport turns a refusal into a dead letter the same way (``common.deadletters``). Kept in a
module of its own, free of I/O imports, because the pure cores raise it."""

from __future__ import annotations

DETAIL_MAX = 2000
"""Characters of a refusal's detail kept in a dead letter (a pydantic error listing every
field of a large record can run to tens of kilobytes)."""


class Refusal(ValueError):
    """An input a stage will not process; ``reason`` becomes the dead letter's reason code,
    ``detail`` says where and which rule failed (never the offending value: dead letters
    leave the raw topic)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
