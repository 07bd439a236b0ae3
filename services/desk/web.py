"""The agency desk web page at ``/desk``: server-rendered Indonesian HTML, a little plain JS.

Sign-in takes a desk token and opens a session (``auth.create_session``); the queue, a
complaint with its history, and the action forms are rendered here with the same queries
and actions as the JSON API, so the page can show nothing the API would not. Templates are
Jinja2 with autoescaping on (complaint excerpts are citizens' text); every POST form carries
the session's CSRF value; pages are sent with a Content-Security-Policy that allows only
this origin's own script and style files (no inline script)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from pydantic import ValidationError

from common.registry import Registry
from services.desk.actions import BODIES
from services.desk.api import COMPLAINT_ID_MAX, CONTEXT, validation_detail
from services.desk.auth import (
    Principal,
    create_session,
    csrf_ok,
    end_session,
    principal_for_token,
    session_principal,
)
from services.desk.models import ComplaintQuery, HistoryEntry
from services.desk.queries import BadCursor, complaint_detail, list_complaints

HERE = Path(__file__).parent
COOKIE = "aduan_desk"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
DAYS = ("Sen", "Sel", "Rab", "Kam", "Jum", "Sab", "Min")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
CLOCKS = {
    "first_response": "tanggapan pertama",
    "next_response": "tanggapan lanjutan",
    "resolution": "penyelesaian",
}
KINDS = {
    "complaint": "Keluhan",
    "question": "Pertanyaan",
    "aspiration": "Aspirasi",
    "praise": "Apresiasi",
    "spam": "Spam",
    "political": "Politik",
    "other": "Lainnya",
}
URGENCY = {"emergency": "Darurat", "high": "Tinggi", "normal": "Normal", "low": "Rendah"}
STATUS = {"open": "Terbuka", "overdue": "Terlambat", "resolved": "Selesai", "all": "Semua"}
ACTIONS = {
    "acknowledge": "Terima",
    "resolve": "Selesaikan",
    "reopen": "Buka kembali",
    "reroute": "Alihkan",
}
SENT = "Perintah „{}” terkirim. Status berubah setelah route mengonfirmasi."


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """``Sen 23 Nov 14:00 WIB``: the agency's own time zone, Indonesian names."""
    if value is None:
        return "–"
    t = value.astimezone(tz)
    return f"{DAYS[t.weekday()]} {t.day} {MONTHS[t.month - 1]} {t:%H:%M} {t.tzname()}"


def time_left(seconds: float) -> str:
    """``2 jam 5 menit lagi`` or ``terlambat 1 hari 3 jam`` (the JS keeps it current)."""
    late = seconds < 0
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days} hari {hours} jam"
    elif hours:
        text = f"{hours} jam {mins} menit"
    else:
        text = f"{mins} menit"
    return f"terlambat {text}" if late else f"{text} lagi"


def history_line(h: HistoryEntry, registry: Registry) -> str:
    def name(agency_id: str | None) -> str:
        a = registry.agency(agency_id) if agency_id else None
        return a.name if a else (agency_id or "?")

    clock = CLOCKS.get(h.clock or "", h.clock or "")
    if h.source == "commands":
        what = ACTIONS.get(h.event_type, h.event_type)
        target = f" ke {name(h.target_agency_id)}" if h.target_agency_id else ""
        return f"Perintah „{what}”{target} oleh {h.actor or '?'}"
    lines: dict[str, Callable[[], str]] = {
        "routed": lambda: f"Diteruskan ke {name(h.agency_id)}",
        "rerouted": lambda: (
            f"Dialihkan ke {name(h.agency_id)} (bukan wewenang {name(h.previous_agency_id)})"
        ),
        "warning": lambda: f"Peringatan: batas {clock} mendekat",
        "overdue": lambda: f"Terlambat: batas {clock} terlewati",
        "escalated": lambda: (
            f"Eskalasi tingkat {h.escalation_level} ke {_escalation_name(h.escalate_to, name)}"
        ),
        "responded": lambda: f"Ditanggapi ({clock}, {'tepat waktu' if h.met else 'terlambat'})",
        "resolved": lambda: "Diselesaikan",
        "withdrawn": lambda: "Dicabut oleh pelapor",
        "updated": lambda: "Teks aduan diubah oleh pelapor",
        "reopened": lambda: "Dibuka kembali",
        "acknowledged": lambda: "Diterima oleh petugas",
    }
    line = lines.get(h.event_type)
    return line() if line is not None and h.known else f"Peristiwa „{h.event_type}”"


def _escalation_name(target: str | None, name: Callable[[str | None], str]) -> str:
    if target and target.startswith("head:"):
        return f"kepala {name(target.removeprefix('head:'))}"
    return name(target)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(
        CLOCKS=CLOCKS, KINDS=KINDS, URGENCY=URGENCY, STATUS=STATUS, ACTIONS=ACTIONS,
        local_time=local_time, time_left=time_left,
    )  # fmt: skip
    return env


class DeskPages:
    def __init__(self, registry: Registry, session_hours: float, secure_cookies: bool) -> None:
        self.registry = registry
        self.session_hours = session_hours
        self.secure_cookies = secure_cookies
        self.env = environment()

    def render(self, name: str, status: int = 200, **values: Any) -> web.Response:
        html = self.env.get_template(name).render(**values)
        return web.Response(
            text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS
        )

    def zone(self, who: Principal) -> ZoneInfo:
        agency = self.registry.agency(who.agency_id) if who.agency_id else None
        return ZoneInfo(agency.timezone if agency else "Asia/Jakarta")

    def who_label(self, who: Principal) -> str:
        if who.is_admin:
            return f"Admin ({who.label})"
        agency = self.registry.agency(who.agency_id or "")
        return f"{agency.name if agency else who.agency_id} ({who.label})"

    async def signed_in(self, request: web.Request) -> tuple[Principal, str] | None:
        return await session_principal(request.app[CONTEXT].pool, request.cookies.get(COOKIE))

    # --- pages ---------------------------------------------------------------------------
    async def queue(self, request: web.Request) -> web.StreamResponse:
        session = await self.signed_in(request)
        if session is None:
            return self.render("login.html", error=None)
        who, csrf = session
        ctx = request.app[CONTEXT]
        allowed = {k: v for k, v in request.query.items() if k in ("status", "q", "cursor")}
        if not allowed.get("q"):
            allowed.pop("q", None)
        try:
            query = ComplaintQuery.model_validate({**allowed, "limit": ctx.page_size})
            now = ctx.clock()
            page = await list_complaints(ctx.pool, who, query, now)
        except (ValidationError, BadCursor) as exc:
            detail = (
                validation_detail(exc, "filter") if isinstance(exc, ValidationError) else str(exc)
            )
            return self.render("error.html", status=400, message=detail, who=self.who_label(who),
                               csrf=csrf)  # fmt: skip
        return self.render(
            "queue.html", who=self.who_label(who), csrf=csrf, page=page, query=query, now=now,
            tz=self.zone(who), agency=lambda a: self.registry.agency(a),
        )  # fmt: skip

    async def complaint(self, request: web.Request) -> web.StreamResponse:
        session = await self.signed_in(request)
        if session is None:
            raise web.HTTPSeeOther("/desk")
        who, csrf = session
        ctx = request.app[CONTEXT]
        cid = request.match_info["complaint_id"]
        now = ctx.clock()
        detail = None
        if len(cid) <= COMPLAINT_ID_MAX:
            detail = await complaint_detail(ctx.pool, who, cid, now)
        if detail is None:
            return self.render("error.html", status=404, message="Aduan tidak ditemukan.",
                               who=self.who_label(who), csrf=csrf)  # fmt: skip
        message = request.query.get("pesan")
        sent = ACTIONS.get(message.removeprefix("terkirim-")) if message else None
        error = request.query.get("galat")
        targets = sorted(
            (a for a in self.registry.agencies if a.id != detail.agency_id), key=lambda a: a.name
        )
        can_act = who.is_admin or detail.role in ("assigned", "escalation")
        return self.render(
            "complaint.html", who=self.who_label(who), csrf=csrf, c=detail, now=now,
            tz=self.zone(who), sent=SENT.format(sent) if sent else None, error=error,
            targets=targets, can_act=can_act,
            history=[(h, history_line(h, self.registry)) for h in detail.history],
            agency=lambda a: self.registry.agency(a),
        )  # fmt: skip

    async def act(self, request: web.Request) -> web.StreamResponse:
        session = await self.signed_in(request)
        if session is None:
            raise web.HTTPSeeOther("/desk")
        who, csrf = session
        form = await request.post()
        if not csrf_ok(csrf, _field(form, "csrf")):
            return self.render("error.html", status=403, message="Formulir kedaluwarsa; muat "
                               "ulang halaman.", who=self.who_label(who), csrf=csrf)  # fmt: skip
        action = request.match_info["action"]
        cid = request.match_info["complaint_id"]
        values = {k: v for k in ("agency_id", "reason", "note") if (v := _field(form, k))}
        base = f"/desk/aduan/{cid}"
        try:
            body = BODIES[action].model_validate(values)
        except ValidationError as exc:
            raise web.HTTPSeeOther(base + "?" + _q(galat=_form_error(exc))) from None
        ctx = request.app[CONTEXT]
        outcome = await ctx.actions.perform(
            who, cid, action, body, _field(form, "idempotency_key"), ctx.clock()
        )
        if outcome.status == 202:
            raise web.HTTPSeeOther(base + "?" + _q(pesan=f"terkirim-{action}"))
        if outcome.status == 404:
            return self.render("error.html", status=404, message="Aduan tidak ditemukan.",
                               who=self.who_label(who), csrf=csrf)  # fmt: skip
        raise web.HTTPSeeOther(base + "?" + _q(galat=outcome.body["detail"]))

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        pool = request.app[CONTEXT].pool
        who = await principal_for_token(pool, (_field(form, "token") or "").strip())
        if who is None:
            return self.render("login.html", status=401, error="Token tidak dikenal atau sudah "
                               "dicabut.")  # fmt: skip
        cookie, _ = await create_session(pool, who, self.session_hours)
        response = web.HTTPSeeOther("/desk")
        response.set_cookie(
            COOKIE, cookie, path="/desk", httponly=True, samesite="Strict",
            secure=self.secure_cookies, max_age=int(self.session_hours * 3600),
        )  # fmt: skip
        raise response

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        session = await self.signed_in(request)
        form = await request.post()
        if session is not None and csrf_ok(session[1], _field(form, "csrf")):
            await end_session(request.app[CONTEXT].pool, request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/desk")
        response.del_cookie(COOKIE, path="/desk")
        raise response


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def _q(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


def _form_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    names = {"reason": "Alasan", "agency_id": "Instansi tujuan", "note": "Catatan"}
    return f"{names.get(field, field)}: isian belum benar ({first['msg']})"


def add_web_routes(app: web.Application, pages: DeskPages) -> None:
    app.router.add_get("/desk", pages.queue)
    app.router.add_post("/desk/masuk", pages.sign_in)
    app.router.add_post("/desk/keluar", pages.sign_out)
    app.router.add_get("/desk/aduan/{complaint_id}", pages.complaint)
    actions = "|".join(BODIES)
    app.router.add_post(f"/desk/aduan/{{complaint_id}}/{{action:{actions}}}", pages.act)
    app.router.add_static("/desk/static", HERE / "static", append_version=False)
