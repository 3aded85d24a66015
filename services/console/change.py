"""An operator's changes: link a person (after looking their email up on GetCourse), unlink
them, write their link to Salebot again, retry every waiting write, start a directory sync.

Links are stored and removed by the one link unit (``LinkStore``) the student flow uses too;
every change is audited in the transaction of the change itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.email import mask_email, normalize_email
from services.getcourse.directory import UserDirectory
from services.linking.flow import Linked, NotFound
from services.linking.store import LinkStore, SalebotAfterRemoval
from services.models import GetCourseUser, Link, salebot_variables
from services.storage.audit import AuditAction, AuditRepository
from services.storage.bridge import CallbackRepository, FieldWriteRepository
from services.storage.console import ConsoleQueries
from services.storage.database import Database
from services.storage.deliveries import DeliveryRepository
from services.storage.links import LinkRepository
from services.storage.outbox import OutboxRepository
from services.storage.ownership_proofs import ProofRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkProposal:
    """What an operator's /link would do, shown before they confirm it."""

    telegram_id: int
    user: GetCourseUser
    current: Link | None
    holders: list[int]  # other Telegram accounts linked to this email or GetCourse user


@dataclass(frozen=True)
class Unlinked:
    link: Link
    variables_cleared: bool


@dataclass(frozen=True)
class LinkChanged:
    """The link is no longer the one the operator's confirmation was shown for (``None``: no
    link any more): nothing was done."""

    link: Link | None


class OperatorChanges:
    def __init__(
        self,
        database: Database,
        directory: UserDirectory,
        link_store: LinkStore,
        on_enqueued: Callable[[], None],
        *,
        keep_variables_on_unlink: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._directory = directory
        self._store = link_store
        self._on_enqueued = on_enqueued
        self._keep_variables = keep_variables_on_unlink
        self._clock = clock
        self._links = LinkRepository(database)
        self._deliveries = DeliveryRepository(database)
        self._queries = ConsoleQueries(database)

    @property
    def keeps_variables_on_unlink(self) -> bool:
        return self._keep_variables

    async def propose_link(self, telegram_id: int, text: str) -> LinkProposal | NotFound:
        """Look the email up on GetCourse (raises ``InvalidEmail``, ``GetCourseError``)."""
        email = normalize_email(text)
        user = await self._directory.find_user_by_email(email)
        if user is None:
            return NotFound(email)
        return LinkProposal(
            telegram_id=telegram_id,
            user=user,
            current=await self._links.get(telegram_id),
            holders=await self._queries.ids_holding(user.email, user.id, besides=telegram_id),
        )

    async def link(
        self, operator_id: int, telegram_id: int, user: GetCourseUser, version: int | None = None
    ) -> Linked | LinkChanged:
        """Store the link an operator confirmed, with its Salebot write; ``LinkChanged`` when
        ``version`` (of the link replaced, 0 for none) is no longer the person's link."""
        now = self._clock()
        async with self._database.transaction() as tx:
            previous = await LinkRepository.get_in(tx, telegram_id)
            if version is not None and (previous.version if previous else 0) != version:
                return LinkChanged(previous)
            link = await self._store.put_user(
                tx, telegram_id, user.email, user, previous, now, operator_id
            )
            # An operator's /link is a proof in itself: a proof the person had under way is void.
            await ProofRepository.delete_in(tx, telegram_id)
            before, after = _audited(previous), _audited(link)
            await AuditRepository.record(
                tx, now, operator_id, AuditAction.LINK, telegram_id, before, after
            )
        self._on_enqueued()
        log.info(
            "operator %s linked telegram %s to getcourse user %s (%s)",
            operator_id,
            telegram_id,
            user.id,
            mask_email(user.email),
        )
        return Linked(link=link, previous=previous)

    async def unlink(
        self, operator_id: int, telegram_id: int, version: int | None = None
    ) -> Unlinked | LinkChanged | None:
        """Remove the link and, unless configured to keep them, blank our Salebot variables.
        ``None`` when the person is not linked; ``LinkChanged`` when ``version`` (the
        ``Link.version`` the operator was shown) is no longer the link's."""
        now = self._clock()
        clear = not self._keep_variables
        variables = "cleared" if clear else "kept"
        async with self._database.transaction() as tx:
            link = await LinkRepository.get_in(tx, telegram_id)
            if link is None:
                return None
            if version is not None and link.version != version:
                return LinkChanged(link)
            salebot = SalebotAfterRemoval.BLANK if clear else SalebotAfterRemoval.KEEP
            await self._store.remove(tx, link, now, salebot, operator_id)
            after = {"salebot_variables": variables}
            await AuditRepository.record(
                tx, now, operator_id, AuditAction.UNLINK, telegram_id, _audited(link), after
            )
        self._on_enqueued()
        log.info(
            "operator %s unlinked telegram %s (%s); salebot variables %s",
            operator_id,
            telegram_id,
            mask_email(link.email),
            variables,
        )
        return Unlinked(link, variables_cleared=clear)

    async def resync(self, operator_id: int, telegram_id: int) -> Link | None:
        """Queue the link's variables again; ``None`` when the person is not linked."""
        now = self._clock()
        latest = await self._deliveries.latest_for(telegram_id)
        async with self._database.transaction() as tx:
            link = await LinkRepository.get_in(tx, telegram_id)
            if link is None:
                return None
            item_id = await OutboxRepository.enqueue(tx, telegram_id, salebot_variables(link), now)
            before = {"salebot_write": latest.state if latest else "none"}
            after = {"salebot_write": "pending", "write_id": str(item_id)}
            await AuditRepository.record(
                tx, now, operator_id, AuditAction.RESYNC, telegram_id, before, after
            )
        self._on_enqueued()
        log.info("operator %s resynced telegram %s (write %s)", operator_id, telegram_id, item_id)
        return link

    async def retry_all(self, operator_id: int) -> int:
        """Make every waiting Salebot write due now; returns how many. The GetCourse field
        writes and Salebot callbacks waiting are made due too (never a callback that may have
        landed)."""
        now = self._clock()
        async with self._database.transaction() as tx:
            count = await DeliveryRepository.retry_all_now(tx, now)
            await FieldWriteRepository.retry_all_now(tx, now)
            await CallbackRepository.retry_all_now(tx, now)
            before, after = {"waiting": str(count)}, {"due_now": str(count)}
            await AuditRepository.record(
                tx, now, operator_id, AuditAction.RETRY_ALL, "salebot_writes", before, after
            )
        self._on_enqueued()
        log.info("operator %s made %d waiting salebot writes due now", operator_id, count)
        return count

    async def record_sync(self, operator_id: int, kind: str) -> None:
        """Audit an operator's start of a directory sync (it spends export budget)."""
        async with self._database.transaction() as tx:
            target = f"directory_{kind}"
            await AuditRepository.record(tx, self._clock(), operator_id, AuditAction.SYNC, target)
        log.info("operator %s started a %s directory sync", operator_id, kind)


def _audited(link: Link | None) -> dict[str, str]:
    """A link as the audit keeps it."""
    if link is None:
        return {}
    snapshot = {"email": link.email, "gc_user_id": link.gc_user_id}
    if link.salebot_client_id is not None:
        snapshot["salebot_client_id"] = str(link.salebot_client_id)
    return snapshot
