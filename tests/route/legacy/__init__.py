"""Route's pure core as it was before the speed work of issue 17 (commit 18c79c3), frozen.

The property tests in ``tests/route/test_core_equivalence.py`` drive this copy and the
current core with the same random inputs and require the same states and events: the
optimised core (compiled policy lookup, integer calendar arithmetic, compact state encoding,
direct event construction) must decide exactly what the old one decided. Never edit these
modules except to follow a deliberate behaviour change, and say so in the commit.

Deliberate changes since: when issue 17 was merged with main, ``clocks.py`` and ``policy.py``
were replaced by main's versions of that day (the message kind as a policy match field and
in the state, questions and aspirations tracked until answered: issue 15; notify's
``auto_acknowledged`` command: issue 13), with one change the merge made to both cores:
acknowledgement digests are kept in their own state field, not in the ring of seen ids."""
