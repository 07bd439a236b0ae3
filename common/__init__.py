"""Plumbing shared by every aduan processor: settings, topic catalog, Kafka, codecs, metrics."""
