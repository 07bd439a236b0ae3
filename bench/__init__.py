"""``make bench``: throughput and latency of aduan's processors against a bare ceiling."""
