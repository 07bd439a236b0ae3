"""``aduan.classified.v1``: a normalized message enriched with what it means and who owns it."""

from enum import StrEnum

from pydantic import Field

from schemas.base import Event
from schemas.messages import Message


class MessageKind(StrEnum):
    complaint = "complaint"
    question = "question"  # question / information request
    aspiration = "aspiration"  # aspiration / suggestion
    praise = "praise"
    spam = "spam"  # spam / advertisement
    political = "political"  # political or off-topic noise
    other = "other"


class Urgency(StrEnum):
    emergency = "emergency"
    high = "high"
    normal = "normal"
    low = "low"


class RegionSource(StrEnum):
    location = "location"  # a shared WhatsApp location
    text = "text"  # a place name found in the text
    account = "account"  # the receiving account's own region


class ClassifiedMessage(Event):
    message: Message
    kind: MessageKind
    category: str = Field(description="taxonomy category id, e.g. 'roads'")
    subcategory: str | None = None
    agency_kind: str = Field(description="generic agency kind, e.g. 'public_works'")
    agency_id: str = Field(description="concrete agency resolved from agency_kind x region")
    region_code: str
    region_source: RegionSource
    urgency: Urgency
    urgency_reason: str | None = None
    confidence: float = Field(
        ge=0.0,
        le=1.0,
        description="with a trained model: the calibrated probability that the routing is right",
    )
    needs_review: bool = Field(
        default=False,
        description="confidence below the deployment's threshold: an operator should check",
    )
    evidence: list[str] = Field(default_factory=list, description="terms and rules that decided")
    classifier_version: str
