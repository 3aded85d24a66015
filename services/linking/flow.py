"""Linking a Telegram account to a GetCourse user, and queueing the Salebot write."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from services.email import mask_email, normalize_email
from services.errors import GetCourseError
from services.getcourse.directory import MISS, DirectAnswer
from services.linking.bridge import LinkFollowUps
from services.linking.lookup_gate import LookupGate, LookupLimits
from services.linking.ownership import (
    FAILED_STEPS,
    OwnershipProofs,
    ProofAnswer,
    ProofMethod,
    ProofStep,
    proven_user,
)
from services.linking.store import LinkStore, SalebotAfterRemoval
from services.models import GetCourseUser, Link
from services.notifications import (
    BurstWatch,
    Notifier,
    NullNotifier,
    OperatorEvent,
    OperatorNotice,
)
from services.storage.audit import AuditAction, AuditRepository
from services.storage.conflicts import ConflictLog
from services.storage.database import Database
from services.storage.links import LinkRepository
from services.storage.ownership_proofs import PendingProof, ProofRepository
from services.storage.queued_lookups import QueuedLookup, QueuedLookupRepository

log = logging.getLogger(__name__)

NOTHING_TO_PROVE = ProofAnswer(ProofStep.NOTHING_TO_PROVE)


@dataclass(frozen=True)
class Linked:
    link: Link
    previous: Link | None


@dataclass(frozen=True)
class NotFound:
    email: str


@dataclass(frozen=True)
class Conflict:
    """The email (or its GetCourse user) belongs to another Telegram account; nothing linked."""

    email: str


@dataclass(frozen=True)
class ProofNeeded:
    """Whether GetCourse knows the email or not: the person is to prove it is theirs (and is
    told the same either way)."""

    email: str


@dataclass(frozen=True)
class OperatorDecision:
    """An operator's answer to a proof: the person's ``outcome``, ``None`` when refused."""

    proof: PendingProof
    outcome: Linked | Conflict | None


@dataclass(frozen=True)
class ProofAlerts:
    """How many failed proofs, and unknown emails, in an hour are unusual enough for a notice."""

    failed_proofs_per_hour: int = 30
    unknown_emails_per_hour: int = 100


@dataclass(frozen=True)
class Queued:
    """Only an export can answer: the lookup waits in the queue, and its answer comes later."""

    email: str
    lookup_id: int


LinkOutcome = Linked | NotFound | Conflict | ProofNeeded


class LookupResult(StrEnum):
    """What the person is told, whether at once or after a queued lookup."""

    LINKED = "linked"
    RELINKED = "relinked"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    TRY_LATER = "try_later"
    PROOF = "proof"  # the uniform "prove it is yours", known email or not


def result_of(outcome: LinkOutcome) -> LookupResult:
    if isinstance(outcome, Linked):
        return LookupResult.RELINKED if outcome.previous is not None else LookupResult.LINKED
    if isinstance(outcome, Conflict):
        return LookupResult.CONFLICT
    if isinstance(outcome, ProofNeeded):
        return LookupResult.PROOF
    return LookupResult.NOT_FOUND


class DirectLookups(Protocol):
    """What linking needs from the directory (``DirectoryMirror``)."""

    async def local_answer(self, email: str) -> DirectAnswer: ...

    async def direct_answer(self, email: str) -> DirectAnswer:
        """May raise ``GetCourseError``."""
        ...

    @property
    def answers_directly(self) -> bool: ...


class ConflictPolicy(StrEnum):
    REFUSE = "refuse"  # the second account is refused and the operators are told
    REPLACE = "replace"  # the second account takes the link over; the operators are told


class LinkService:
    """Raises ``InvalidEmail`` for text that is no address, ``LookupRefused`` when the person
    (or everyone) asked too often, and ``GetCourseError`` when a direct lookup could not be
    completed (the mirror queues such a lookup instead); nothing is linked in these cases."""

    def __init__(
        self,
        database: Database,
        directory: DirectLookups,
        on_enqueued: Callable[[], None],
        on_queued: Callable[[], None] = lambda: None,
        gate: LookupGate | None = None,
        conflict_policy: ConflictPolicy = ConflictPolicy.REFUSE,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        proofs: OwnershipProofs | None = None,
        alerts: ProofAlerts | None = None,
        follow_ups: LinkFollowUps | None = None,
    ) -> None:
        self._database = database
        self._store_unit = LinkStore(follow_ups)
        self._links = LinkRepository(database)
        self._directory = directory
        self._on_enqueued = on_enqueued
        self._on_queued = on_queued
        self._queue = QueuedLookupRepository(database)
        self._gate = gate or LookupGate(database, LookupLimits(), clock)
        self._conflict_policy = conflict_policy
        self._notifier = notifier or NullNotifier()
        self._clock = clock
        self._proofs = proofs  # None: OWNERSHIP_PROOF=off, a found email is linked at once
        alerts = alerts or ProofAlerts()
        self._failed_proofs = BurstWatch(alerts.failed_proofs_per_hour)
        self._unknown_emails = BurstWatch(alerts.unknown_emails_per_hour)

    @property
    def proof_methods(self) -> tuple[ProofMethod, ...]:
        """The methods a person may prove an email with; empty when no proof is asked."""
        return self._proofs.methods if self._proofs else ()

    async def lookups_since(self, since: float) -> int:
        """How many emails people asked about since ``since``: whether the bot is busy."""
        return await self._gate.asked_since(since)

    async def current_link(self, telegram_id: int) -> Link | None:
        return await self._links.get(telegram_id)

    async def link(self, telegram_id: int, chat_id: int, text: str) -> LinkOutcome | Queued:
        email = normalize_email(text)
        lookup_id = await self._gate.admit(telegram_id)
        answer = await self._directory.local_answer(email)
        if (
            answer is MISS
            and self._directory.answers_directly
            and await self._gate.admit_live(lookup_id)
        ):
            try:
                answer = await self._directory.direct_answer(email)
            except GetCourseError:
                await self._gate.settle(lookup_id, "unavailable")
                raise
        if answer is MISS:
            await self._queue.put(
                QueuedLookup(telegram_id, chat_id, email, lookup_id, self._clock())
            )
            log.info("lookup for telegram %s: %s queued", telegram_id, mask_email(email))
            self._on_queued()
            return Queued(email, lookup_id)
        if answer is None:
            await self._gate.settle(lookup_id, "not_found")
            log.info("lookup for telegram %s: %s not in GetCourse", telegram_id, mask_email(email))
            self._count_unknown_email()
        if self._proofs is not None:
            await self._begin_proof(telegram_id, chat_id, email, answer)
            if answer is not None:
                await self._gate.settle(lookup_id, "found")
            return ProofNeeded(email)
        if answer is None:
            return NotFound(email)
        outcome = await self._store(telegram_id, email, answer)
        assert outcome is not None  # only a queued lookup can be overtaken
        await self._gate.settle(lookup_id, "conflict" if isinstance(outcome, Conflict) else "found")
        return outcome

    async def conclude(
        self, lookup: QueuedLookup, answer: GetCourseUser | GetCourseError | None
    ) -> LookupResult | None:
        """Act on the export's answer to a queued lookup and record what the person is to be
        told; ``None`` when the lookup is no longer queued (a newer email, /cancel)."""
        email = mask_email(lookup.email)
        if self._proofs is not None and not isinstance(answer, GetCourseError):
            begun = await self._begin_proof(
                lookup.telegram_id, lookup.chat_id, lookup.email, answer, lookup.lookup_id
            )
            if not begun:
                return None
            await self._gate.settle(
                lookup.lookup_id, "found" if answer is not None else "not_found"
            )
            if answer is None:
                log.info(
                    "queued lookup for telegram %s: %s not in GetCourse", lookup.telegram_id, email
                )
                self._count_unknown_email()
            return LookupResult.PROOF
        if isinstance(answer, GetCourseUser):
            outcome = await self._store(lookup.telegram_id, lookup.email, answer, lookup.lookup_id)
            if outcome is None:
                return None
            await self._gate.settle(
                lookup.lookup_id, "conflict" if isinstance(outcome, Conflict) else "found"
            )
            return result_of(outcome)
        if answer is None:
            result, settled = LookupResult.NOT_FOUND, "not_found"
            log.info(
                "queued lookup for telegram %s: %s not in GetCourse", lookup.telegram_id, email
            )
            self._count_unknown_email()
        else:
            result, settled = LookupResult.TRY_LATER, "unavailable"
            log.warning(
                "queued lookup for telegram %s (%s) given up: %s", lookup.telegram_id, email, answer
            )
        async with self._database.transaction() as tx:
            if not await QueuedLookupRepository.answer_in(tx, lookup.lookup_id, result):
                return None
        await self._gate.settle(lookup.lookup_id, settled)
        return result

    async def cancel_queued(self, telegram_id: int) -> bool:
        lookup = await self._queue.cancel(telegram_id)
        if lookup is None:
            return False
        await self._gate.settle(lookup.lookup_id, "cancelled")
        log.info("queued lookup for telegram %s cancelled", telegram_id)
        return True

    # --- proof of ownership -------------------------------------------------------------------

    # A step may come after OWNERSHIP_PROOF was turned off (dialog states outlive a restart):
    # there is nothing to prove then.

    async def prove_code(self, telegram_id: int, text: str) -> Linked | Conflict | ProofAnswer:
        if self._proofs is None:
            return NOTHING_TO_PROVE
        return await self._proven(telegram_id, await self._proofs.check_code(telegram_id, text))

    async def prove_contact(
        self, telegram_id: int, contact_user_id: int | None, phone: str
    ) -> Linked | Conflict | ProofAnswer:
        if self._proofs is None:
            return NOTHING_TO_PROVE
        checked = await self._proofs.check_contact(telegram_id, contact_user_id, phone)
        return await self._proven(telegram_id, checked)

    async def resend_code(self, telegram_id: int) -> ProofAnswer:
        if self._proofs is None:
            return NOTHING_TO_PROVE
        return await self._proofs.resend_code(telegram_id)

    async def ask_operator(self, telegram_id: int) -> PendingProof | ProofAnswer:
        """The proof to show the operators on a card (the handlers send it)."""
        if self._proofs is None:
            return NOTHING_TO_PROVE
        asked = await self._proofs.ask_operator(telegram_id)
        if isinstance(asked, PendingProof):
            log.info("proof by telegram %s: operators asked", telegram_id)
        return asked

    async def operator_not_reached(self, proof: PendingProof) -> None:
        if self._proofs is not None:
            await self._proofs.operator_not_reached(proof.id)

    async def operator_decides(
        self, operator_id: int, proof_id: int, confirm: bool
    ) -> OperatorDecision | None:
        """An operator confirms (the link is stored, audited) or refuses a proof; ``None`` when
        that proof is gone (given another way, replaced by a newer email, decided already)."""
        async with self._database.transaction() as tx:
            proof = await ProofRepository.by_id_in(tx, proof_id)
            if proof is None or proof.operator_asked_at is None:
                return None
            if not confirm or proof.gc_user_id is None:
                await ProofRepository.delete_in(tx, proof.telegram_id)
                await AuditRepository.record(
                    tx,
                    self._clock(),
                    operator_id,
                    AuditAction.PROOF_REFUSE,
                    proof.telegram_id,
                    before={"email": proof.email},
                )
        if not confirm or proof.gc_user_id is None:
            log.info("operator %s refused the proof of telegram %s", operator_id, proof.telegram_id)
            return OperatorDecision(proof, None)
        outcome = await self._store(
            proof.telegram_id, proof.email, proven_user(proof), proof=proof, operator_id=operator_id
        )
        if outcome is None:
            return None
        assert not isinstance(outcome, NotFound | ProofNeeded)
        return OperatorDecision(proof, outcome)

    async def cancel_proof(self, telegram_id: int) -> bool:
        return self._proofs is not None and await self._proofs.forget(telegram_id)

    async def _begin_proof(
        self,
        telegram_id: int,
        chat_id: int,
        email: str,
        user: GetCourseUser | None,
        queued: int | None = None,
    ) -> bool:
        """Start the proof (for a ``queued`` lookup: record its answer in the same transaction);
        ``False`` when that lookup is no longer queued."""
        assert self._proofs is not None
        async with self._database.transaction() as tx:
            answered = queued is None or await QueuedLookupRepository.answer_in(
                tx, queued, LookupResult.PROOF
            )
            if not answered:
                return False
            letter = await self._proofs.begin_in(tx, telegram_id, chat_id, email, user)
        self._proofs.send_letter(letter, telegram_id)
        log.info("lookup for telegram %s: %s waits for proof", telegram_id, mask_email(email))
        return True

    async def _proven(
        self, telegram_id: int, checked: PendingProof | ProofAnswer
    ) -> Linked | Conflict | ProofAnswer:
        if isinstance(checked, ProofAnswer):
            if checked.step in FAILED_STEPS:
                self._count_failed_proof()
            return checked
        outcome = await self._store(telegram_id, checked.email, proven_user(checked), proof=checked)
        if outcome is None:  # decided another way meanwhile
            return NOTHING_TO_PROVE
        assert not isinstance(outcome, NotFound | ProofNeeded)
        return outcome

    def _count_failed_proof(self) -> None:
        self._count(self._failed_proofs, OperatorEvent.PROOF_FAILURES, "failed proofs of ownership")

    def _count_unknown_email(self) -> None:
        self._count(self._unknown_emails, OperatorEvent.UNKNOWN_EMAILS, "emails not in GetCourse")

    def _count(self, watch: BurstWatch, event: OperatorEvent, what: str) -> None:
        """One more of ``what``; the operators hear of a burst of them."""
        count = watch.record()
        if count is not None:
            log.warning("%d %s in the last hour", count, what)
            self._notifier.notify(OperatorNotice(event, {"last_hour": str(count)}))

    # --- storing a link ---------------------------------------------------------------------

    async def _store(
        self,
        telegram_id: int,
        email: str,
        user: GetCourseUser,
        queued: int | None = None,
        proof: PendingProof | None = None,
        operator_id: int | None = None,
    ) -> LinkOutcome | None:
        """The link and its Salebot write in one transaction, unless another account holds
        this person and the policy refuses a second one. For a ``queued`` lookup, its answer
        is recorded in the same transaction, and nothing happens if it is no longer queued;
        likewise a ``proof`` is used up, and nothing happens if it is gone. ``operator_id``:
        the operator who confirmed the proof (the link records them, the audit the change)."""
        now = self._clock()
        async with self._database.transaction() as tx:
            if queued is not None and not await QueuedLookupRepository.is_waiting_in(tx, queued):
                return None
            if proof is not None:
                if await ProofRepository.by_id_in(tx, proof.id) is None:
                    return None
                await ProofRepository.delete_in(tx, telegram_id)
            previous = await LinkRepository.get_in(tx, telegram_id)
            holders = await LinkRepository.holders_in(tx, email, user.id, excluding=telegram_id)
            refused = bool(holders) and self._conflict_policy is ConflictPolicy.REFUSE
            for holder in holders:
                await ConflictLog.add(
                    tx,
                    telegram_id=telegram_id,
                    holder_telegram_id=holder.telegram_id,
                    email=email,
                    gc_user_id=user.id,
                    resolution="refused" if refused else "replaced",
                    at=now,
                )
                if not refused:
                    await self._store_unit.remove(tx, holder, now, SalebotAfterRemoval.CLEAR)
            if not refused:
                link = await self._store_unit.put_user(
                    tx, telegram_id, email, user, previous, now, operator_id
                )
            before = {"email": previous.email} if previous else {}
            after = {} if refused else {"email": email, "gc_user_id": user.id}
            await AuditRepository.record(
                tx, now, operator_id, AuditAction.PROOF_CONFIRM, telegram_id, before, after
            )
            if queued is not None:
                if refused:
                    result = LookupResult.CONFLICT
                else:
                    result = LookupResult.RELINKED if previous else LookupResult.LINKED
                await QueuedLookupRepository.answer_in(tx, queued, result)
        for holder in holders:
            self._report_conflict(telegram_id, holder, email, user.id, refused)
        if refused:
            return Conflict(email)
        self._on_enqueued()
        log.info(
            "%s telegram %s to getcourse user %s (%s)",
            "relinked" if previous else "linked",
            telegram_id,
            user.id,
            mask_email(email),
        )
        if user.is_blocked:
            self._report_blocked(telegram_id, user)
        return Linked(link=link, previous=previous)

    def _report_blocked(self, telegram_id: int, user: GetCourseUser) -> None:
        """Linked all the same (the key is still right), but operators should know."""
        log.warning(
            "link of telegram %s: getcourse user %s is %s", telegram_id, user.id, user.status
        )
        self._notifier.notify(
            OperatorNotice(
                OperatorEvent.LINKED_USER_BLOCKED,
                {
                    "telegram_id": str(telegram_id),
                    "gc_user_id": user.id,
                    "status": user.status or "",
                },
            )
        )

    def _report_conflict(
        self, telegram_id: int, holder: Link, email: str, gc_user_id: str, refused: bool
    ) -> None:
        resolution = "refused" if refused else "replaced the old link"
        log.warning(
            "conflict: telegram %s claims %s (getcourse %s) held by telegram %s; %s",
            telegram_id,
            mask_email(email),
            gc_user_id,
            holder.telegram_id,
            resolution,
        )
        self._notifier.notify(
            OperatorNotice(
                OperatorEvent.CONFLICT,
                {
                    "telegram_id": str(telegram_id),
                    "holder_telegram_id": str(holder.telegram_id),
                    "email": mask_email(email),
                    "gc_user_id": gc_user_id,
                    "resolution": resolution,
                },
            )
        )
