"""Route's pure core as it was before the speed work of issue 17 (commit 18c79c3), frozen.

The property tests in ``tests/route/test_core_equivalence.py`` drive this copy and the
current core with the same random inputs and require the same states and events: the
optimised core (compiled policy lookup, integer calendar arithmetic, compact state encoding,
direct event construction) must decide exactly what the old one decided. Never edit these
modules except to follow a deliberate behaviour change, and say so in the commit."""
