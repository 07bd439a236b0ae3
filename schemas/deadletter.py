"""``aduan.deadletter.v1``: input that could not be processed, with the precise reason.

Records from the raw topic are referenced by position, never copied: the raw topic is the
only place allowed to hold unmasked personal data."""

from pydantic import Field

from schemas.base import Event, UtcDatetime


class DeadLetter(Event):
    stage: str = Field(description="ingest, classify or route")
    reason: str = Field(description="short machine-readable code, e.g. 'bad_signature'")
    detail: str = Field(description="human-readable explanation")
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    source_key: str | None = None
    entry_index: int | None = Field(default=None, description="position of the entry in a batch")
    payload_b64: str | None = Field(
        default=None, description="the failed record's bytes, absent when they are raw data"
    )
    failed_at: UtcDatetime
