"""The console's working pages: schedules, questions, takeover, knowledge base and records.

Every action that changes what airs goes through the same doors as the broker's operators:
`Control.apply` for say, skip, pause, resume, hold and schedules (moderated, validated,
audited), the review desk for answers, the store for blocked viewers. Every action is written
to the audit trail with the operator's account and `console` as the way it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from anchor.console import programme
from anchor.console.auth import Session
from anchor.console.kbedit import EntryForm, save_entry
from anchor.links.payloads import ControlCommand
from anchor.moderation import mask_personal_data
from anchor.questions.reception import BLOCKED_REASON
from anchor.questions.review import ReviewError
from anchor.show.schedule import ScheduleError
from anchor.store.database import STATUSES

if TYPE_CHECKING:
    from anchor.console.core import Console

MAX_SAY_CHARS = 300
MAX_FORM_FIELDS = 32
PAGE_ROWS = 50
_LINE = re.compile(r"^[^:]*:(\d+): (.*)$", re.S)
TAKEOVER = ("say", "skip", "pause", "resume", "hold", "release")


def routes(console: Console) -> list[Route]:
    pages = Pages(console)
    return [
        Route("/schedules", pages.schedules, methods=["GET"]),
        Route("/schedules", pages.schedule_action, methods=["POST"]),
        Route("/schedules/rollback", pages.rollback, methods=["POST"]),
        Route("/questions", pages.questions, methods=["GET"]),
        Route("/questions/review", pages.review_mode, methods=["POST"]),
        Route("/questions/decide", pages.decide, methods=["POST"]),
        Route("/questions/answer", pages.manual_answer, methods=["POST"]),
        Route("/questions/block", pages.block, methods=["POST"]),
        Route("/takeover", pages.takeover, methods=["GET"]),
        Route("/takeover", pages.takeover_action, methods=["POST"]),
        Route("/knowledge", pages.knowledge, methods=["GET"]),
        Route("/knowledge", pages.knowledge_action, methods=["POST"]),
        Route("/records", pages.records, methods=["GET"]),
        Route("/records/export", pages.export, methods=["GET"]),
    ]


class Pages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.parts = console.parts
        self._max_form = console.parts.config.console.max_upload_kb * 1024

    async def _form(self, request: Request) -> FormData:
        return await request.form(
            max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=self._max_form
        )

    async def _changer(self, request: Request) -> tuple[Session, FormData] | Response:
        """The operator and the form of a request that changes something, or its refusal."""
        try:
            form = await self._form(request)
        except Exception:  # a malformed or oversized body: refused, never echoed
            return PlainTextResponse("refused: the form could not be read", 400)
        found = self.console.gate.changer(request, form)
        if isinstance(found, Response):
            return found
        return found, form

    def _back(self, session: Session, to: str, kind: str, text: str) -> Response:
        session.flash.append((kind, text))
        return RedirectResponse(to, status_code=303)

    def _refused(self, session: Session, to: str, t: dict[str, str], why: str) -> Response:
        return self._back(session, to, "error", t["refused"].format(why=why))

    # Schedules --------------------------------------------------------------------------

    async def schedules(self, request: Request) -> Response:
        found = self.console.gate.viewer(request)
        if isinstance(found, Response):
            return found
        current = self.parts.director.schedule
        source = ""
        versions = await self._versions()
        if versions:
            kept = await self.parts.store.schedule_version(versions[0].id)
            source = kept[1] if kept else ""
        elif current.source is not None:
            source = await asyncio.to_thread(_read_text, current.source)
        return await self._schedule_page(request, found, source, current=current)

    async def _versions(self) -> list[Any]:
        try:
            return await self.parts.store.schedule_versions(20)
        except Exception:
            return []

    async def _schedule_page(
        self,
        request: Request,
        session: Session,
        source: str,
        *,
        current: Any,
        errors: list[tuple[int | None, str]] | None = None,
        slots: list[programme.Slot] | None = None,
        status: int = 200,
    ) -> Response:
        error_lines = {line for line, _ in errors or [] if line is not None}
        numbered = [(n, text, n in error_lines) for n, text in enumerate(source.splitlines(), 1)]
        return self.console.render(
            request,
            "schedules.html",
            session,
            http_status=status,
            source=source,
            numbered=numbered if errors else [],
            errors=errors,
            slots=slots,
            zone=str(current.timezone),
            current=current,
            versions=await self._versions(),
        )

    async def schedule_action(self, request: Request) -> Response:
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        t = self.console.words(request)
        source = await _source_of(form, self._max_form)
        action = str(form.get("action") or "check")
        try:
            schedule = await self.parts.library.parse(source)
        except ScheduleError as exc:
            errors = [_located(error) for error in exc.errors]
            session.flash.append(("error", t["schedule_bad"].format(n=len(errors))))
            if action == "activate":
                await self.console.audit(
                    session.user, "load_schedule", f"{len(errors)} problems", "refused"
                )
            return await self._schedule_page(
                request,
                session,
                source,
                current=self.parts.director.schedule,
                errors=errors,
                status=422,
            )
        if action == "activate":
            return await self._activate(request, session, source, schedule.name)
        slots = programme.today(
            schedule,
            datetime.now(schedule.timezone),
            sentence_gap=self.parts.config.speech.sentence_gap,
        )
        session.flash.append(("ok", t["schedule_ok"]))
        return await self._schedule_page(
            request, session, source, current=schedule, errors=[], slots=slots
        )

    async def _activate(
        self, request: Request, session: Session, source: str, name: str
    ) -> Response:
        t = self.console.words(request)
        command = ControlCommand("load_schedule", yaml=source, by=session.user)
        outcome = await self.parts.control.apply(command, "console")
        if not outcome.applied:
            return self._back(
                session, "/schedules", "error", t["refused"].format(why=outcome.reason)
            )
        try:
            await self.parts.store.add_schedule_version(name, source, by=session.user)
        except Exception as exc:
            session.flash.append(("error", f"version not kept: {exc}"))
        return self._back(session, "/schedules", "ok", t["activated"].format(name=name))

    async def rollback(self, request: Request) -> Response:
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        t = self.console.words(request)
        versions = await self._versions()
        wanted = str(form.get("version") or "")
        if wanted.isdigit():
            target = int(wanted)
        elif len(versions) >= 2:
            target = versions[1].id
        else:
            return self._back(session, "/schedules", "error", t["refused"].format(why="no earlier"))
        kept = await self.parts.store.schedule_version(target)
        if kept is None:
            return self._back(session, "/schedules", "error", t["refused"].format(why="unknown"))
        version, source = kept
        return await self._activate(request, session, source, version.name)

    # Questions --------------------------------------------------------------------------

    async def questions(self, request: Request) -> Response:
        found = self.console.gate.viewer(request)
        if isinstance(found, Response):
            return found
        store = self.parts.store
        try:
            rows = await store.question_rows(limit=PAGE_ROWS)
            blocked = await store.blocked()
        except Exception:
            rows, blocked = [], []
        review = self.parts.review
        return self.console.render(
            request,
            "questions.html",
            found,
            review=review.enabled,
            timeout=int(review.timeout_s),
            drafts=review.pending(),
            decided=review.recent()[:10],
            rows=rows,
            blocked=blocked[:100],
            waiting=len(self.parts.desk),
        )

    async def review_mode(self, request: Request) -> Response:
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        on = form.get("review") == "on"
        self.parts.review.set_enabled(on)
        await self.console.audit(session.user, "review", "on" if on else "off", "applied")
        t = self.console.words(request)
        return self._back(session, "/questions", "ok", t["review_on" if on else "review_off"])

    async def decide(self, request: Request) -> Response:
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        t = self.console.words(request)
        draft_id = str(form.get("id") or "")[:200]
        verdict = str(form.get("verdict") or "")
        review = self.parts.review
        try:
            if verdict == "approve":
                text = str(form.get("text") or "").strip() or None
                draft = review.approve(draft_id, text=text, by=session.user)
                if text is not None and text != draft.original_text:
                    detail = f"{draft_id}: edited ({len(text)} characters)"
                else:
                    detail = draft_id
            elif verdict == "reject":
                reason = _masked(str(form.get("reason") or ""))[:200]
                review.reject(draft_id, by=session.user, reason=reason)
                detail = f"{draft_id}: {reason}".strip(": ")
            else:
                return PlainTextResponse("refused: unknown verdict", status_code=400)
        except ReviewError as exc:
            await self.console.audit(session.user, f"review_{verdict}", draft_id, f"refused: {exc}")
            return self._back(session, "/questions", "error", t["refused"].format(why=str(exc)))
        await self.console.audit(session.user, f"review_{verdict}", _masked(detail), "applied")
        return self._back(session, "/questions", "ok", t["done"].format(what=t[verdict]))

    async def manual_answer(self, request: Request) -> Response:
        """The operator answers a stored question in their own words: the question is read out
        (masked, as it was stored) and the answer follows, both moderated as `say` is."""
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        t = self.console.words(request)
        answer = str(form.get("text") or "").strip()[:MAX_SAY_CHARS]
        question = await self.parts.store.get(str(form.get("id") or "")[:200])
        if question is None or not answer:
            return self._back(session, "/questions", "error", t["refused"].format(why="empty"))
        line = f"有朋友问：{question.masked_text}。{answer}"
        outcome = await self.parts.control.apply(
            ControlCommand("say", text=line, by=session.user), "console"
        )
        if not outcome.applied:
            return self._back(
                session, "/questions", "error", t["refused"].format(why=outcome.reason)
            )
        return self._back(session, "/questions", "ok", t["done"].format(what=t["manual_answer"]))

    async def block(self, request: Request) -> Response:
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        t = self.console.words(request)
        user = str(form.get("user") or "")[:200]
        platform = str(form.get("platform") or "")[:64]
        if not user:
            return self._back(session, "/questions", "error", t["refused"].format(why="no viewer"))
        masked = _masked(user)
        if form.get("undo") == "1":
            await self.parts.blocked.unblock(user, platform)
            await self.console.audit(session.user, "unblock", f"{masked} {platform}", "applied")
            return self._back(session, "/questions", "ok", t["done"].format(what=t["unblock"]))
        try:
            await self.parts.blocked.block(user, platform, by=session.user, reason="console")
        except Exception as exc:
            return self._back(session, "/questions", "error", t["refused"].format(why=str(exc)))
        dropped = 0
        for question in self.parts.desk.take_user(masked):
            dropped += 1
            with contextlib.suppress(Exception):  # a failing store: the question stays pending
                await self.parts.store.set_status(question.id, "rejected", BLOCKED_REASON)
        await self.console.audit(
            session.user, "block", f"{masked} {platform} ({dropped} waiting dropped)", "applied"
        )
        return self._back(session, "/questions", "ok", t["done"].format(what=t["block"]))

    # Takeover ---------------------------------------------------------------------------

    async def takeover(self, request: Request) -> Response:
        found = self.console.gate.viewer(request)
        if isinstance(found, Response):
            return found
        return self.console.render(request, "takeover.html", found, state=self.console.state())

    async def takeover_action(self, request: Request) -> Response:
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        t = self.console.words(request)
        action = str(form.get("action") or "")
        if action not in TAKEOVER:
            return PlainTextResponse("refused: unknown action", status_code=400)
        text = None
        if action == "say":
            text = str(form.get("text") or "").strip()
            if not text or len(text) > MAX_SAY_CHARS:
                why = f"1 to {MAX_SAY_CHARS} characters"
                return self._back(session, "/takeover", "error", t["refused"].format(why=why))
        outcome = await self.parts.control.apply(
            ControlCommand(action, text=text, by=session.user), "console"
        )
        if not outcome.applied:
            why = outcome.reason if not outcome.detail else f"{outcome.reason}: {outcome.detail}"
            return self._back(session, "/takeover", "error", t["refused"].format(why=why))
        what = t[action] if action != "say" else f"{t['say']}: {outcome.detail}"
        return self._back(session, "/takeover", "ok", t["done"].format(what=what))

    # Knowledge base ---------------------------------------------------------------------

    async def knowledge(self, request: Request) -> Response:
        found = self.console.gate.viewer(request)
        if isinstance(found, Response):
            return found
        return await self._knowledge_page(request, found)

    async def _knowledge_page(
        self,
        request: Request,
        session: Session,
        *,
        entry: EntryForm | None = None,
        problems: list[str] | None = None,
        http_status: int = 200,
    ) -> Response:
        live = self.parts.knowledge
        query = request.query_params.get("q", "")[:200].strip()
        trial = request.query_params.get("try", "")[:200].strip()
        hits: list[Any] = []
        answer: dict[str, Any] | None = None
        if live is not None and query:
            hits = live.search(query, limit=10)
        if trial:
            hits = live.search(trial, limit=5) if live is not None else []
            reply = await self.parts.answerer.answer(trial)
            aired = self.parts.screen(reply.answer)  # what the rundown's screen lets through
            answer = {"text": aired, "source": reply.source, "id": reply.id, "score": reply.score}
        edit_id = request.query_params.get("edit", "")[:64]
        if entry is None and edit_id and live is not None and edit_id in live.knowledge.ids:
            e = live.knowledge.get(edit_id)
            entry = EntryForm(e.id, e.question, e.answer, e.alternates, e.tags)
        entries = list(live.knowledge.entries) if live is not None else []
        return self.console.render(
            request,
            "knowledge.html",
            session,
            http_status=http_status,
            query=query,
            trial=trial,
            hits=hits,
            answer=answer,
            entry=entry,
            problems=problems,
            entries=entries if not query else [],
            kind=live.kind if live is not None else "off",
            kb_path=str(live.path) if live is not None else "",
        )

    async def knowledge_action(self, request: Request) -> Response:
        acting = await self._changer(request)
        if isinstance(acting, Response):
            return acting
        session, form = acting
        t = self.console.words(request)
        live = self.parts.knowledge
        if live is None:
            return PlainTextResponse("refused: no knowledge base", status_code=409)
        if form.get("action") == "reload":
            swapped = await live.reload_if_changed()
            await self.console.audit(session.user, "kb_reload", str(swapped), "applied")
            return self._back(session, "/knowledge", "ok", t["done"].format(what=t["reload"]))
        entry = EntryForm(
            id=str(form.get("id") or "").strip(),
            question=str(form.get("question") or "").strip(),
            answer=str(form.get("answer") or "").strip(),
            alternates=_lines(str(form.get("alternates") or "")),
            tags=tuple(
                x.strip() for x in re.split(r"[,，]", str(form.get("tags") or "")) if x.strip()
            ),
        )
        problems = [
            f"{name}: {self.console.words(request)['refused'].format(why='moderation')}"
            for name, value in (("question", entry.question), ("answer", entry.answer))
            if value and self.parts.screen(value) is None
        ]
        if not problems:
            problems = await asyncio.to_thread(save_entry, live.path, entry)
        if problems:
            await self.console.audit(session.user, "kb_edit", entry.id[:64], "refused")
            return await self._knowledge_page(
                request, session, entry=entry, problems=problems, http_status=422
            )
        await live.reload_if_changed()
        await self.console.audit(session.user, "kb_edit", entry.id, "applied")
        return self._back(session, "/knowledge", "ok", t["saved"].format(id=entry.id))

    # Records ----------------------------------------------------------------------------

    async def records(self, request: Request) -> Response:
        found = self.console.gate.viewer(request)
        if isinstance(found, Response):
            return found
        params = request.query_params
        tab = params.get("tab", "as_run")
        if tab not in ("as_run", "questions", "audit"):
            tab = "as_run"
        contains = params.get("contains", "")[:100] or None
        since = _since(params.get("since", ""), self.parts.director.schedule.timezone)
        status = params.get("status", "") or None
        if status not in (None, *STATUSES):
            status = None
        offset = _int(params.get("offset", "0"))
        store = self.parts.store
        rows: list[Any] = []
        try:
            if tab == "as_run":
                rows = await store.as_run_rows(
                    since=since, contains=contains, limit=PAGE_ROWS, offset=offset
                )
            elif tab == "questions":
                rows = await store.question_rows(
                    status=status, since=since, contains=contains, limit=PAGE_ROWS, offset=offset
                )
            else:
                rows = await store.audit_rows(
                    since=since, cmd=contains, limit=PAGE_ROWS, offset=offset
                )
        except Exception as exc:
            found.flash.append(("error", f"store: {exc}"))
        return self.console.render(
            request,
            "records.html",
            found,
            tab=tab,
            rows=rows,
            contains=contains or "",
            since=params.get("since", "")[:16],
            status=status or "",
            statuses=STATUSES,
            offset=offset,
            page_rows=PAGE_ROWS,
        )

    async def export(self, request: Request) -> Response:
        found = self.console.gate.viewer(request)
        if isinstance(found, Response):
            return found
        table = request.query_params.get("tab", "as_run")
        if table not in ("as_run", "questions", "audit"):
            return PlainTextResponse("unknown table", status_code=400)
        since = _since(request.query_params.get("since", ""), self.parts.director.schedule.timezone)
        out = io.StringIO()
        await self.parts.store.export_csv(table, out, since=since)  # type: ignore[arg-type]
        await self.console.audit(found.user, "export", table, "applied")
        name = f"{self.parts.config.channel}-{table}-{time.strftime('%Y%m%d-%H%M')}.csv"
        return StreamingResponse(
            iter([out.getvalue()]),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )


async def _source_of(form: FormData, limit: int) -> str:
    """The schedule's text: the uploaded file if one came, else the text box."""
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(limit + 1)
        return raw[: limit + 1].decode("utf-8", errors="replace")
    return str(form.get("yaml") or "")


def _located(error: str) -> tuple[int | None, str]:
    match = _LINE.match(error)
    if match:
        return int(match.group(1)), match.group(2)
    return None, error


def _read_text(path: Any) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(512 * 1024)
    except OSError:
        return ""


def _masked(text: str) -> str:
    return mask_personal_data(text)[0]


def _tags(text: str) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in re.split(r"[,，]", text) if tag.strip())


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _since(value: str, zone: tzinfo) -> float | None:
    """`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` in the schedule's time zone (as the pages show
    times) as a timestamp; None when blank or not a time."""
    value = value.strip()[:16]
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=zone).timestamp()
        except ValueError:
            continue
    return None


def _int(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 7 else 0
