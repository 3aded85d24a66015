"""What the operator console shows: the records of ``services.console`` rendered with texts.

Each line is rendered on its own (``Texts.render`` escapes the values) and lines are joined,
so nothing is escaped twice. Emails are shown in full only in a private chat with an operator;
in a group chat anyone else present would read them."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.texts import Texts
from services.console.change import LinkProposal, Unlinked
from services.console.find import HistoryEntry, PersonCard
from services.console.report import DirectoryReport, HealthReport, QueueReport, Stats
from services.email import mask_email
from services.health import ServiceStatus
from services.linking.flow import Linked
from services.models import BLOCKED_STATUSES
from services.redaction import error_text
from services.storage.audit import AuditEntry
from services.storage.bridge import FieldWrite, GetCourseEvent
from services.storage.deliveries import Delivery
from services.storage.directory import DoneRun, SyncRun
from services.storage.link_events import LinkEvent
from services.storage.profiles import TelegramProfile
from services.supervision import LoopStatus

ERROR_LIMIT = 120
AUDIT_VALUE_LIMIT = 60
# The states /queue counts GetCourse field writes and Salebot callbacks in.
FIELD_WRITES = ("pending", "failed")
CALLBACKS = ("pending", "failed", "uncertain")


def moment(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def shown_email(email: str, *, private: bool) -> str:
    return email if private else mask_email(email)


def card(texts: Texts, person: PersonCard, *, private: bool) -> str:
    profile = person.profile
    if profile is None:
        lines = [texts.render("card_title", telegram_id=person.telegram_id)]
    else:
        lines = [
            texts.render(
                "card_title_named", telegram_id=person.telegram_id, name=_profile_name(profile)
            )
        ]
    link = person.link
    if link is None:
        lines.append(texts.render("card_not_linked"))
    else:
        lines.append(texts.render("card_email", email=shown_email(link.email, private=private)))
        lines.append(
            texts.render("card_getcourse", gc_user_id=link.gc_user_id, gc_name=link.gc_name or "—")
        )
        if person.gc_user is not None and person.gc_user.status is not None:
            lines.append(_status_line(texts, person.gc_user.status))
        if link.salebot_client_id is None:
            lines.append(texts.render("card_salebot_client_unknown"))
        else:
            lines.append(texts.render("card_salebot_client", client_id=link.salebot_client_id))
        times = {"linked_at": moment(link.linked_at), "updated_at": moment(link.updated_at)}
        if link.linked_by is None:
            lines.append(texts.render("card_changed_by_person", **times))
        else:
            operator = _operator(link.linked_by, person.linked_by)
            lines.append(texts.render("card_changed_by_operator", operator=operator, **times))
        lines.append(texts.render("card_getcourse_checked", at=moment(link.updated_at)))
    if person.delivery is None:
        lines.append(texts.render("card_no_writes"))
    else:
        lines.append(delivery(texts, person.delivery))
    if person.field_write is None:
        lines.append(texts.render("card_no_field_writes"))
    else:
        lines.append(field_write(texts, person.field_write))
    if person.events:
        lines.append(texts.render("card_events_header"))
        lines += [_gc_event(texts, event) for event in person.events]
    return "\n".join(lines)


def field_write(texts: Texts, write: FieldWrite) -> str:
    """One GetCourse field write: setting or blanking the IDs, and where it stands."""
    what = texts.render("field_write_clear" if write.blank else "field_write_set")
    next_at = datetime.fromtimestamp(write.next_attempt_at, UTC)
    values = _attempts(write, next_at, write.last_error or "")
    values["cause"] = bridge_cause(texts, write.cause)
    state = write.state
    if state == "pending" and write.cause is not None and write.attempts:
        state = "retrying"
    return f"{what} {texts.render(f'field_write_{state}', **values)}"


def bridge_cause(texts: Texts, name: str | None) -> str:
    key = f"bridge_cause_{name or 'none'}"
    return texts.render(key) if key in texts else str(name)


def _gc_event(texts: Texts, event: GetCourseEvent) -> str:
    stage = event.state if event.state != "queued" else event.delivery or "pending"
    return texts.render(
        "card_event_line",
        at=moment(event.received_at),
        event=event.event,
        state=texts.render(f"event_state_{stage}"),
    )


def _status_line(texts: Texts, status: str) -> str:
    key = "card_getcourse_blocked" if status in BLOCKED_STATUSES else "card_getcourse_status"
    return texts.render(key, status=gc_status(texts, status))


def gc_status(texts: Texts, status: str) -> str:
    """A GetCourse user status in words; one this version does not know, as GetCourse gave it."""
    key = f"gc_status_{status}"
    return texts.render(key) if key in texts else status


def delivery(texts: Texts, write: Delivery) -> str:
    """One Salebot write: what it does and where it stands."""
    what = texts.render("write_clear" if write.clears else "write_set")
    values = _attempts(write, write.next_attempt_at, error_text(write.last_error or ""))
    if write.state == "pending":
        if write.cause is None:
            return f"{what} {texts.render('delivery_pending', **values)}"
        values["cause"] = cause(texts, write.cause)
        return f"{what} {texts.render('delivery_retrying', **values)}"
    if write.state == "failed":
        values["cause"] = cause(texts, write.cause)
        return f"{what} {texts.render('delivery_failed', **values)}"
    return f"{what} {texts.render(f'delivery_{write.state}', **values)}"


def _attempts(write: Delivery | FieldWrite, next_at: datetime, error: str) -> dict[str, object]:
    """Where a write to Salebot or GetCourse stands, as the texts of both show it."""
    return {
        "at": moment(write.updated_at),
        "attempts": write.attempts,
        "created_at": moment(write.created_at),
        "next_at": moment(next_at),
        "error": _short(error, ERROR_LIMIT),
    }


def cause(texts: Texts, name: str | None) -> str:
    return texts.render(f"cause_{name or 'none'}")


def proposal(texts: Texts, offer: LinkProposal, *, private: bool) -> str:
    user = offer.user
    lines = [
        texts.render(
            "link_found",
            gc_user_id=user.id,
            gc_name=user.full_name or "—",
            email=shown_email(user.email, private=private),
        )
    ]
    if user.status is not None:
        lines.append(_status_line(texts, user.status))
    current = offer.current
    if current is None:
        lines.append(texts.render("link_current_none", telegram_id=offer.telegram_id))
    else:
        lines.append(
            texts.render(
                "link_current",
                telegram_id=offer.telegram_id,
                email=shown_email(current.email, private=private),
                gc_user_id=current.gc_user_id,
            )
        )
    if offer.holders:
        holders = ", ".join(str(holder) for holder in offer.holders)
        lines.append(texts.render("link_holders", telegram_ids=holders))
    lines.append(texts.render("link_question"))
    return "\n".join(lines)


def linked(texts: Texts, outcome: Linked, *, private: bool) -> str:
    link = outcome.link
    return texts.render(
        "link_done",
        telegram_id=link.telegram_id,
        email=shown_email(link.email, private=private),
        gc_user_id=link.gc_user_id,
    )


def unlink_question(
    texts: Texts, person: PersonCard, *, keeps_variables: bool, private: bool
) -> str:
    assert person.link is not None
    return "\n".join(
        [
            texts.render(
                "unlink_question",
                telegram_id=person.telegram_id,
                email=shown_email(person.link.email, private=private),
                gc_user_id=person.link.gc_user_id,
            ),
            texts.render("unlink_keeps" if keeps_variables else "unlink_clears"),
        ]
    )


def unlinked(texts: Texts, outcome: Unlinked, *, private: bool) -> str:
    return texts.render(
        "unlink_done_cleared" if outcome.variables_cleared else "unlink_done_kept",
        telegram_id=outcome.link.telegram_id,
        email=shown_email(outcome.link.email, private=private),
    )


def erase_question(texts: Texts, person: PersonCard, *, private: bool) -> str:
    lines = [texts.render("erase_question", telegram_id=person.telegram_id)]
    if person.link is not None:
        lines.append(
            texts.render(
                "erase_question_linked",
                email=shown_email(person.link.email, private=private),
                gc_user_id=person.link.gc_user_id,
            )
        )
    lines.append(texts.render("erase_question_what"))
    return "\n".join(lines)


def history(texts: Texts, telegram_id: int, entries: list[HistoryEntry]) -> str:
    if not entries:
        return texts.render("history_empty", telegram_id=telegram_id)
    lines = [texts.render("history_title", telegram_id=telegram_id)]
    for entry in entries:
        if isinstance(entry, LinkEvent):
            lines.append(_event(texts, entry))
        else:
            lines.append(f"{moment(entry.created_at)} — {delivery(texts, entry)}")
    return "\n".join(lines)


def _event(texts: Texts, event: LinkEvent) -> str:
    at = moment(event.at)
    if event.operator_id is None:
        return texts.render(f"event_{event.kind}", at=at)
    return texts.render(f"event_{event.kind}_operator", at=at, operator=event.operator_id)


def queue(texts: Texts, report: QueueReport) -> str:
    if not report.total and not report.follow_ups:
        return texts.render("queue_empty")
    lines = [texts.render("queue_title", total=report.total)]
    for state in ("pending", "failed"):
        counts = sorted(
            ((count, name) for (kind, name), count in report.waiting.items() if kind == state),
            key=lambda pair: -pair[0],
        )
        if counts:
            lines.append(texts.render(f"queue_{state}_header"))
            lines += [
                texts.render("queue_cause_line", cause=cause(texts, name), count=count)
                for count, name in counts
            ]
    if report.field_writes:
        lines.append(_by_state(texts, "queue_field_writes", report.field_writes, FIELD_WRITES))
    if report.callbacks:
        lines.append(_by_state(texts, "queue_callbacks", report.callbacks, CALLBACKS))
    if not report.oldest:
        return "\n".join(lines)
    lines.append(texts.render("queue_oldest_header"))
    now = datetime.now(UTC)
    for write in report.oldest:
        lines.append(
            texts.render(
                "queue_oldest_line",
                telegram_id=write.telegram_id,
                age=age(texts, (now - write.created_at).total_seconds()),
                attempts=write.attempts,
                cause=cause(texts, write.cause),
            )
        )
    return "\n".join(lines)


def _by_state(
    texts: Texts, key: str, waiting: dict[tuple[str, str | None], int], states: tuple[str, ...]
) -> str:
    """``key`` rendered with how many of ``waiting`` stand in each of ``states``."""
    counts = dict.fromkeys(states, 0)
    for (state, _), count in waiting.items():
        if state in counts:
            counts[state] += count
    return texts.render(key, **counts)


def _event_stats(texts: Texts, counts: dict[tuple[str, str], int]) -> list[str]:
    if not counts:
        return []
    stages = ("delivered", "waiting", "waiting_link", "failed", "uncertain", "expired")
    lines = [texts.render("stats_events_title")]
    for event in sorted({name for name, _ in counts}):
        figures = {stage: counts.get((event, stage), 0) for stage in stages}
        lines.append(texts.render("stats_event_line", event=event, **figures))
    return lines


def stats(texts: Texts, figures: Stats) -> str:
    rows = [
        ("stats_made", figures.made),
        ("stats_changed", figures.changed),
        ("stats_removed", figures.removed),
        ("stats_not_found", figures.not_found),
        ("stats_conflicts", figures.conflicts),
    ]
    return "\n".join(
        [
            texts.render("stats_title"),
            texts.render("stats_linked_now", count=figures.linked_now),
            texts.render("stats_columns"),
            *(
                texts.render(key, day=counts.day, week=counts.week, total=counts.total)
                for key, counts in rows
            ),
            texts.render(
                "stats_deliveries",
                pending=figures.pending,
                retrying=figures.retrying,
                failed=figures.failed,
            ),
            texts.render(
                "stats_budget",
                used=figures.budget_used,
                left=max(figures.budget_limit - figures.budget_used, 0),
                limit=figures.budget_limit,
            ),
            texts.render("stats_directory", users=figures.directory_users),
            *_event_stats(texts, figures.events),
        ]
    )


def audit(texts: Texts, entries: list[AuditEntry], *, private: bool) -> str:
    if not entries:
        return texts.render("audit_empty")
    lines = [texts.render("audit_title", count=len(entries))]
    for entry in entries:
        lines.append(
            texts.render(
                "audit_line",
                at=moment(entry.at),
                operator=_operator(entry.operator_id, entry.operator_username),
                action=texts.render(f"audit_action_{entry.action}"),
                target=entry.target,
            )
        )
        lines.append(
            texts.render(
                "audit_change",
                before=_audit_values(entry.before, private=private),
                after=_audit_values(entry.after, private=private),
            )
        )
    return "\n".join(lines)


def health(texts: Texts, report: HealthReport) -> str:
    deployment = report.deployment
    oldest = report.oldest_waiting_since
    lines = [
        texts.render("health_title"),
        texts.render(
            "health_version",
            version=deployment.version,
            mode=deployment.mode,
            started_at=moment(report.started_at),
        ),
        texts.render("health_database", size=_size(texts, report.database_bytes)),
        texts.render(
            "health_queue",
            pending=report.pending,
            failed=report.failed,
            oldest=moment(oldest) if oldest else "—",
        ),
        _service(texts, "GetCourse", report.getcourse),
        _service(texts, "Salebot", report.salebot),
        *_loops(texts, report.loops),
        texts.render(
            "health_budget",
            used=report.budget_used,
            left=max(report.budget_limit - report.budget_used, 0),
            limit=report.budget_limit,
        ),
    ]
    if report.budget_paused_until is not None:
        lines.append(texts.render("health_budget_paused", until=moment(report.budget_paused_until)))
    lines += _directory(texts, report.directory)
    lines.append(texts.render("health_settings"))
    lines += [
        texts.render("health_setting", name=name, value=value or "—")
        for name, value in deployment.settings
    ]
    return "\n".join(lines)


def _directory(texts: Texts, report: DirectoryReport) -> list[str]:
    lines = [texts.render("health_directory", users=report.users)]
    if report.never_synced:
        lines.append(texts.render("health_directory_never"))
    else:
        lines += [
            texts.render("health_directory_full", last=_done_run(texts, report.last_full)),
            texts.render(
                "health_directory_incremental", last=_done_run(texts, report.last_incremental)
            ),
        ]
    lines += [_unfinished_run(texts, run) for run in report.unfinished]
    if report.lookups_waiting:
        oldest = report.oldest_lookup_since
        lines.append(
            texts.render(
                "health_lookups_queued",
                count=report.lookups_waiting,
                oldest=moment(oldest) if oldest else "—",
            )
        )
    # Which unfinished run is the one going on is not recorded; whether one is going on is.
    if report.sync_running:
        lines.append(texts.render("health_sync_running"))
    elif report.unfinished:
        lines.append(texts.render("health_sync_stopped"))
    return lines


def _loops(texts: Texts, loops: list[LoopStatus]) -> list[str]:
    """One line when every loop runs and never failed; else each loop that failed since start.
    Nothing without loops (a console outside the running bot)."""
    troubled = [loop for loop in loops if not loop.healthy or loop.restarts]
    if not troubled:
        return [texts.render("health_loops_ok", count=len(loops))] if loops else []
    never = texts.render("health_never")
    return [texts.render("health_loops")] + [
        texts.render(
            "health_loop",
            mark="✅" if loop.healthy else "⚠️",
            name=texts.render(f"loop_{loop.name}") if f"loop_{loop.name}" in texts else loop.name,
            state=texts.render(f"loop_state_{loop.state}"),
            restarts=loop.restarts,
            failed=_unix_moment(loop.last_failure_at) or never,
            error=loop.last_error or "—",
        )
        for loop in troubled
    ]


def _unfinished_run(texts: Texts, run: SyncRun) -> str:
    kind = texts.render(f"sync_kind_{run.kind}")
    if run.status_step is not None:
        return texts.render(
            "health_sync_unfinished_statuses",
            kind=kind,
            status=gc_status(texts, run.status_step),
            rows=run.rows,
        )
    return texts.render(
        "health_sync_unfinished",
        kind=kind,
        day=run.next_day,  # newest-first: every later day is read
        first_day=run.first_day,
        last_day=run.last_day,
        rows=run.rows,
    )


def _done_run(texts: Texts, run: DoneRun | None) -> str:
    if run is None:
        return texts.render("health_never")
    return texts.render("health_directory_run", at=_unix_moment(run.finished_at), rows=run.rows)


def _service(texts: Texts, name: str, status: ServiceStatus) -> str:
    never = texts.render("health_never")
    return texts.render(
        "health_service",
        name=name,
        succeeded=_unix_moment(status.last_success_at) or never,
        failed=_unix_moment(status.last_failure_at) or never,
        cause=status.last_failure_cause or "—",
    )


def age(texts: Texts, seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    if minutes < 60:
        return texts.render("age_minutes", count=minutes)
    if minutes < 48 * 60:
        return texts.render("age_hours", count=minutes // 60)
    return texts.render("age_days", count=minutes // (24 * 60))


def _size(texts: Texts, size: int) -> str:
    if size < 1024 * 1024:
        return texts.render("size_kb", value=f"{size / 1024:.0f}")
    return texts.render("size_mb", value=f"{size / (1024 * 1024):.1f}")


def _unix_moment(stamp: float | None) -> str:
    return moment(datetime.fromtimestamp(stamp, UTC)) if stamp is not None else ""


def _profile_name(profile: TelegramProfile) -> str:
    parts = [f"@{profile.username}" if profile.username else "", profile.first_name]
    return " · ".join(part for part in parts if part)


def _operator(operator_id: int, who: TelegramProfile | str | None) -> str:
    username = who.username if isinstance(who, TelegramProfile) else who
    return f"{operator_id} (@{username})" if username else str(operator_id)


def _audit_values(values: dict[str, str], *, private: bool) -> str:
    if not values:
        return "—"
    shown = {
        name: shown_email(value, private=private) if name == "email" else value
        for name, value in values.items()
    }
    return ", ".join(f"{name}={_short(value, AUDIT_VALUE_LIMIT)}" for name, value in shown.items())


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
