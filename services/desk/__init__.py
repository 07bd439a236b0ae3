"""Desk: the complaint tracking system every agency works from.

A read model in PostgreSQL fed by ``aduan.routes.v1``, ``aduan.sla.v1`` and
``aduan.commands.v1`` (``consumer``, ``store``, ``projection``), a JSON API under ``/api/v1``
(``api``, ``openapi``), the Indonesian web page at ``/desk`` (``web``), and the actions
(acknowledge, resolve, reopen, reroute) written as commands for route (``actions``).
Design and operation: docs/desk.md."""
