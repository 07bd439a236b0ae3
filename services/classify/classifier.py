"""Classification of a normalized message: kind, category, agency, region, urgency.

Walking-skeleton cut: keyword rules for a handful of categories. Pure: no I/O after load."""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.registry import Registry
from schemas.classified import ClassifiedMessage, MessageKind, RegionSource, Urgency
from schemas.messages import Message

VERSION = "rules-0.1"

# category -> (agency_kind, keywords)
_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "roads": ("public_works", ("jalan rusak", "berlubang", "aspal", "jalan")),
    "drainage_flooding": ("public_works", ("banjir", "genangan", "saluran", "got", "drainase")),
    "waste": ("environment", ("sampah", "tps", "bau")),
    "street_lighting": ("public_works", ("lampu jalan", "pju", "lampu")),
    "trees_parks": ("environment", ("pohon", "taman", "ranting")),
    "water_utility": ("water_utility", ("pdam", "air mati", "air keruh")),
    "parking_traffic": ("transportation", ("parkir", "jukir", "macet", "lampu merah")),
    "population_documents": ("civil_registry", ("ktp", "kartu keluarga", "akta", "dispenduk")),
}
_EMERGENCY = ("kebakaran", "banjir sekarang", "kecelakaan", "pohon tumbang")


@dataclass(frozen=True)
class Classifier:
    registry: Registry
    version: str = VERSION

    def classify(self, message: Message) -> ClassifiedMessage:
        text = (message.text or "").lower()
        best, hits = "other", []
        for category, (_, words) in _RULES.items():
            found = [w for w in words if re.search(rf"\b{re.escape(w)}\b", text)]
            if len(found) > len(hits):
                best, hits = category, found
        agency_kind = _RULES[best][0] if best in _RULES else "secretariat"
        agency = self.registry.find_agency(agency_kind, message.region_code)
        urgent = [w for w in _EMERGENCY if w in text]
        return ClassifiedMessage(
            message=message,
            kind=MessageKind.complaint if hits else MessageKind.other,
            category=best,
            agency_kind=agency_kind,
            agency_id=agency.id if agency else message.agency_id,
            region_code=message.region_code,
            region_source=RegionSource.account,
            urgency=Urgency.emergency if urgent else Urgency.normal,
            urgency_reason=urgent[0] if urgent else None,
            confidence=min(1.0, 0.4 + 0.2 * len(hits)) if hits else 0.2,
            evidence=[f"keyword:{w}" for w in hits] + [f"urgent:{w}" for w in urgent],
            classifier_version=self.version,
        )


def load_classifier(registry: Registry) -> Classifier:
    return Classifier(registry)
