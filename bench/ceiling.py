"""The ceiling: a bare aiokafka consume → orjson decode/encode → produce loop.

Same broker, same input records, same commit-after-produce discipline as the processors,
but no validation and no work: what the broker and client allow on this machine.
With ``ADUAN_BENCH_WORK=classify`` the loop also runs the classification function itself
(no dead letters, no metrics): the ceiling for classify as its issue defines it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

import orjson
from aiokafka import ConsumerRecord

from common.codecs import dumps
from common.kafka import run_batch_processor, topic_name
from common.produce import Output
from common.registry import load_registry
from common.runtime import run_until_signalled
from common.settings import Settings
from common.topics import CLASSIFIED, MESSAGES
from schemas.messages import Message
from services.classify.classifier import load_classifier


async def main(stop: asyncio.Event) -> None:
    settings = Settings()
    out_topic = topic_name(CLASSIFIED, settings)

    def handle(records: Sequence[ConsumerRecord]) -> list[Output]:
        outputs = []
        for r in records:
            doc = orjson.loads(r.value)
            doc["ceiling"] = True
            outputs.append(Output(out_topic, r.key, orjson.dumps(doc)))
        return outputs

    if os.environ.get("ADUAN_BENCH_WORK") == "classify":
        classifier = load_classifier(load_registry(settings.registry_file))

        def handle(records: Sequence[ConsumerRecord]) -> list[Output]:
            messages = [Message.model_validate_json(r.value) for r in records]
            results = classifier.classify_many(messages)
            return [
                Output(out_topic, r.key, dumps(c)) for r, c in zip(records, results, strict=True)
            ]

    await run_batch_processor(
        name="ceiling",
        settings=settings,
        input_topics=[topic_name(MESSAGES, settings)],
        group_id=os.environ.get("ADUAN_CONSUMER_GROUP_PREFIX", "aduan") + "-ceiling",
        handle=handle,
        stop=stop,
        batched=False,  # the ceiling is a bare per-record aiokafka loop, by definition
    )


if __name__ == "__main__":
    run_until_signalled(main)
