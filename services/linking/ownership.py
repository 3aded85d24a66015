"""Proof that an email belongs to the person who typed it (OWNERSHIP_PROOF).

A lookup, whatever GetCourse answered, starts a pending proof; the reply to it never says
whether GetCourse knows the email. For an unknown email the proof is kept just the same (no
GetCourse user, a code nobody was sent), so every later step reads the same too: a wrong code,
a phone that does not match, an expired code. Only a proof that succeeds leads to a link.

Methods:
- ``contact``: the person shares their own Telegram contact; its phone must be GetCourse's.
- ``email_code``: six digits sent to the email, kept as an HMAC with a salt of its own; valid
  ``CODE_VALID_SECONDS``, ``CODE_TRIES`` tries, a new one at most every ``RESEND_AFTER_SECONDS``
  and at most ``CODES_PER_PROOF`` per proof (so guessing stays hopeless).
- ``operator``: support confirms or refuses on a card (sent by the handlers)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import aiosqlite

from services.email import mask_email
from services.linking.code_mail import Letter, LetterSender
from services.models import GetCourseUser
from services.storage.database import Database
from services.storage.directory import normalize_phone
from services.storage.ownership_proofs import (
    CodeRecord,
    NewProof,
    PendingProof,
    ProofRepository,
)

log = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_VALID_SECONDS = 15 * 60
CODE_TRIES = 5
RESEND_AFTER_SECONDS = 60
CODES_PER_PROOF = 3
# Code letters to one address per hour, whoever asks: a bound on letters to a student's mailbox
# and on the codes anyone can guess at (each proof, by anyone, still reads as if one was sent).
LETTERS_PER_EMAIL_PER_HOUR = 5
# A proof not given within a day is void: the person sends their email again.
PROOF_VALID_SECONDS = 24 * 3600

# code -> (subject, body): the letter in the bot's language, rendered by the caller.
LetterRenderer = Callable[[str], tuple[str, str]]


class ProofMethod(StrEnum):
    CONTACT = "contact"
    EMAIL_CODE = "email_code"
    OPERATOR = "operator"


class ProofStep(StrEnum):
    """What a person is told after a step that did not prove anything (names their text)."""

    CODE_WRONG = "code_wrong"
    CODE_EXPIRED = "code_expired"
    CODE_USED_UP = "code_used_up"
    CODE_RESENT = "code_resent"
    RESEND_TOO_SOON = "resend_too_soon"
    RESEND_LIMIT = "resend_limit"
    CONTACT_NOT_OWN = "contact_not_own"
    CONTACT_REFUSED = "contact_refused"
    OPERATOR_ASKED = "operator_asked"
    OPERATOR_ALREADY_ASKED = "operator_already_asked"
    NOTHING_TO_PROVE = "nothing_to_prove"


# Steps that count as a failed proof (an unusual number of them reaches the operators).
FAILED_STEPS = frozenset(
    {
        ProofStep.CODE_WRONG,
        ProofStep.CODE_EXPIRED,
        ProofStep.CODE_USED_UP,
        ProofStep.CONTACT_NOT_OWN,
        ProofStep.CONTACT_REFUSED,
    }
)


@dataclass(frozen=True)
class ProofAnswer:
    step: ProofStep
    tries_left: int = 0
    wait_seconds: int = 0


def proven_user(proof: PendingProof) -> GetCourseUser:
    """The GetCourse user a successful proof links to."""
    assert proof.gc_user_id is not None
    return GetCourseUser(
        id=proof.gc_user_id, email=proof.email, first_name=proof.gc_name, status=proof.gc_status
    )


class OwnershipProofs:
    def __init__(
        self,
        database: Database,
        methods: tuple[ProofMethod, ...],
        letters: LetterSender | None = None,
        render_letter: LetterRenderer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ProofMethod.EMAIL_CODE in methods and (letters is None or render_letter is None):
            raise ValueError("email_code needs a letter sender and a letter")
        self.methods = methods
        self._database = database
        self._letters = letters
        self._render_letter = render_letter
        self._clock = clock

    async def begin_in(
        self,
        tx: aiosqlite.Connection,
        telegram_id: int,
        chat_id: int,
        email: str,
        user: GetCourseUser | None,
    ) -> Letter | None:
        """Start the person's proof of ``email`` (``user``: GetCourse's answer) inside ``tx``;
        returns the letter to send once ``tx`` is committed (``send_letter``), if any."""
        now = self._clock()
        proof = NewProof(
            telegram_id=telegram_id,
            chat_id=chat_id,
            email=email,
            gc_user_id=user.id if user else None,
            gc_name=user.full_name if user else "",
            gc_status=user.status if user else None,
            phone=normalize_phone(user.phone) if user else "",
            created_at=now,
        )
        code, record = self._new_code(now)
        await ProofRepository.drop_older_in(tx, now - PROOF_VALID_SECONDS)
        await ProofRepository.replace_in(tx, proof, record)
        if user is None or record is None or not await self._may_write_in(tx, email, now):
            return None
        return self._letter(email, code)

    def send_letter(self, letter: Letter | None, telegram_id: int) -> None:
        if letter is not None and self._letters is not None:
            self._letters.send(letter, telegram_id)

    async def check_code(self, telegram_id: int, text: str) -> PendingProof | ProofAnswer:
        """The proof when ``text`` is its code, otherwise why not (a try is spent)."""
        now = self._clock()
        async with self._database.transaction() as tx:
            proof = await self._pending_in(tx, telegram_id, now)
            if proof is None or proof.code_hash is None or proof.code_salt is None:
                return ProofAnswer(ProofStep.NOTHING_TO_PROVE)
            if proof.code_tries_left <= 0:
                return ProofAnswer(ProofStep.CODE_USED_UP)
            if proof.code_expires_at is not None and proof.code_expires_at <= now:
                return ProofAnswer(ProofStep.CODE_EXPIRED)
            await ProofRepository.spend_try_in(tx, proof.id)
            typed = "".join(text.split())
            matches = hmac.compare_digest(_code_hash(typed, proof.code_salt), proof.code_hash)
            if matches and proof.gc_user_id is not None:
                return proof
            left = proof.code_tries_left - 1
        log.info("proof by telegram %s: wrong code (%d tries left)", telegram_id, left)
        return ProofAnswer(ProofStep.CODE_WRONG if left else ProofStep.CODE_USED_UP, left)

    async def resend_code(self, telegram_id: int) -> ProofAnswer:
        now = self._clock()
        async with self._database.transaction() as tx:
            proof = await self._pending_in(tx, telegram_id, now)
            if proof is None or ProofMethod.EMAIL_CODE not in self.methods:
                return ProofAnswer(ProofStep.NOTHING_TO_PROVE)
            if proof.codes_sent >= CODES_PER_PROOF:
                return ProofAnswer(ProofStep.RESEND_LIMIT)
            ready_at = (proof.code_sent_at or 0.0) + RESEND_AFTER_SECONDS
            if ready_at > now:
                return ProofAnswer(
                    ProofStep.RESEND_TOO_SOON, wait_seconds=math.ceil(ready_at - now)
                )
            code, record = self._new_code(now)
            assert record is not None
            await ProofRepository.new_code_in(tx, proof.id, record)
            known = proof.gc_user_id is not None
            send = known and await self._may_write_in(tx, proof.email, now)
        if send:
            self.send_letter(self._letter(proof.email, code), telegram_id)
        log.info("proof by telegram %s: new code for %s", telegram_id, mask_email(proof.email))
        return ProofAnswer(ProofStep.CODE_RESENT, tries_left=CODE_TRIES)

    async def check_contact(
        self, telegram_id: int, contact_user_id: int | None, phone: str
    ) -> PendingProof | ProofAnswer:
        """The proof when the contact is the sender's own and its phone is GetCourse's."""
        async with self._database.transaction() as tx:
            proof = await self._pending_in(tx, telegram_id, self._clock())
        if proof is None or ProofMethod.CONTACT not in self.methods:
            return ProofAnswer(ProofStep.NOTHING_TO_PROVE)
        if contact_user_id != telegram_id:
            log.info("proof by telegram %s: a contact not their own", telegram_id)
            return ProofAnswer(ProofStep.CONTACT_NOT_OWN)
        shared = normalize_phone(phone)
        if proof.gc_user_id is None or not proof.phone or not shared or shared != proof.phone:
            log.info("proof by telegram %s: phone does not match", telegram_id)
            return ProofAnswer(ProofStep.CONTACT_REFUSED)
        return proof

    async def ask_operator(self, telegram_id: int) -> PendingProof | ProofAnswer:
        """The proof to put before the operators, marked as asked (once per proof)."""
        async with self._database.transaction() as tx:
            proof = await self._pending_in(tx, telegram_id, self._clock())
            if proof is None or ProofMethod.OPERATOR not in self.methods:
                return ProofAnswer(ProofStep.NOTHING_TO_PROVE)
            if proof.operator_asked_at is not None:
                return ProofAnswer(ProofStep.OPERATOR_ALREADY_ASKED)
            await ProofRepository.operator_asked_in(tx, proof.id, self._clock())
        return proof

    async def operator_not_reached(self, proof_id: int) -> None:
        """The card did not reach the operators: the person may ask again."""
        async with self._database.transaction() as tx:
            await ProofRepository.operator_asked_in(tx, proof_id, None)

    async def forget(self, telegram_id: int) -> bool:
        async with self._database.transaction() as tx:
            proof = await ProofRepository.get_in(tx, telegram_id)
            await ProofRepository.delete_in(tx, telegram_id)
        return proof is not None

    async def _pending_in(
        self, tx: aiosqlite.Connection, telegram_id: int, now: float
    ) -> PendingProof | None:
        proof = await ProofRepository.get_in(tx, telegram_id)
        if proof is None or proof.created_at + PROOF_VALID_SECONDS <= now:
            return None
        return proof

    async def _may_write_in(self, tx: aiosqlite.Connection, email: str, now: float) -> bool:
        key = hashlib.sha256(email.encode()).hexdigest()
        allowed = await ProofRepository.letter_allowed_in(tx, key, now, LETTERS_PER_EMAIL_PER_HOUR)
        if not allowed:
            log.warning("code letters to %s: the hourly limit is reached", mask_email(email))
        return allowed

    def _new_code(self, now: float) -> tuple[str, CodeRecord | None]:
        if ProofMethod.EMAIL_CODE not in self.methods:
            return "", None
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        salt = secrets.token_hex(16)
        record = CodeRecord(
            code_hash=_code_hash(code, salt),
            code_salt=salt,
            sent_at=now,
            expires_at=now + CODE_VALID_SECONDS,
            tries=CODE_TRIES,
        )
        return code, record

    def _letter(self, email: str, code: str) -> Letter:
        assert self._render_letter is not None
        subject, body = self._render_letter(code)
        return Letter(to=email, subject=subject, body=body)


def _code_hash(code: str, salt: str) -> str:
    return hmac.new(salt.encode(), code.encode(), hashlib.sha256).hexdigest()
