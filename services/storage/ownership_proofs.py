"""The ``ownership_proofs`` table: a person's proof that an email is theirs, while it waits.

One row per person (a newer email replaces it). A row is never a link: the link is stored only
once the proof is given, and the row goes in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from services.storage.database import Repository, fetch_one, insert


@dataclass(frozen=True)
class PendingProof:
    id: int
    telegram_id: int
    chat_id: int
    email: str
    gc_user_id: str | None  # None: GetCourse has no such user (the proof cannot succeed)
    gc_name: str
    gc_status: str | None
    phone: str  # GetCourse's phone, normalised as the directory does; "" when none
    code_hash: str | None
    code_salt: str | None
    code_sent_at: float | None
    code_expires_at: float | None
    code_tries_left: int
    codes_sent: int
    operator_asked_at: float | None
    created_at: float


@dataclass(frozen=True)
class NewProof:
    telegram_id: int
    chat_id: int
    email: str
    gc_user_id: str | None
    gc_name: str
    gc_status: str | None
    phone: str
    created_at: float


@dataclass(frozen=True)
class CodeRecord:
    code_hash: str
    code_salt: str
    sent_at: float
    expires_at: float
    tries: int


class ProofRepository(Repository):
    async def get(self, telegram_id: int) -> PendingProof | None:
        row = await self._database.fetchone(
            "SELECT * FROM ownership_proofs WHERE telegram_id = ?", (telegram_id,)
        )
        return _to_proof(row) if row else None

    @staticmethod
    async def get_in(tx: aiosqlite.Connection, telegram_id: int) -> PendingProof | None:
        row = await fetch_one(
            tx, "SELECT * FROM ownership_proofs WHERE telegram_id = ?", (telegram_id,)
        )
        return _to_proof(row) if row else None

    @staticmethod
    async def by_id_in(tx: aiosqlite.Connection, proof_id: int) -> PendingProof | None:
        row = await fetch_one(tx, "SELECT * FROM ownership_proofs WHERE id = ?", (proof_id,))
        return _to_proof(row) if row else None

    @staticmethod
    async def replace_in(tx: aiosqlite.Connection, proof: NewProof, code: CodeRecord | None) -> int:
        """The person's new proof (their earlier one goes); returns its ID."""
        await ProofRepository.delete_in(tx, proof.telegram_id)
        return await insert(
            tx,
            "INSERT INTO ownership_proofs (telegram_id, chat_id, email, gc_user_id, gc_name, "
            "gc_status, phone, code_hash, code_salt, code_sent_at, code_expires_at, "
            "code_tries_left, codes_sent, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                proof.telegram_id,
                proof.chat_id,
                proof.email,
                proof.gc_user_id,
                proof.gc_name,
                proof.gc_status,
                proof.phone,
                code.code_hash if code else None,
                code.code_salt if code else None,
                code.sent_at if code else None,
                code.expires_at if code else None,
                code.tries if code else 0,
                1 if code else 0,
                proof.created_at,
            ),
        )

    @staticmethod
    async def drop_older_in(tx: aiosqlite.Connection, created_before: float) -> None:
        """Proofs too old to be given any more: what they hold is of no use to anyone."""
        await tx.execute("DELETE FROM ownership_proofs WHERE created_at <= ?", (created_before,))

    @staticmethod
    async def new_code_in(tx: aiosqlite.Connection, proof_id: int, code: CodeRecord) -> None:
        await tx.execute(
            "UPDATE ownership_proofs SET code_hash = ?, code_salt = ?, code_sent_at = ?, "
            "code_expires_at = ?, code_tries_left = ?, codes_sent = codes_sent + 1 WHERE id = ?",
            (code.code_hash, code.code_salt, code.sent_at, code.expires_at, code.tries, proof_id),
        )

    @staticmethod
    async def spend_try_in(tx: aiosqlite.Connection, proof_id: int) -> None:
        await tx.execute(
            "UPDATE ownership_proofs SET code_tries_left = MAX(code_tries_left - 1, 0) "
            "WHERE id = ?",
            (proof_id,),
        )

    @staticmethod
    async def operator_asked_in(tx: aiosqlite.Connection, proof_id: int, at: float | None) -> None:
        await tx.execute(
            "UPDATE ownership_proofs SET operator_asked_at = ? WHERE id = ?", (at, proof_id)
        )

    @staticmethod
    async def letter_allowed_in(
        tx: aiosqlite.Connection, address_hash: str, now: float, per_hour: int
    ) -> bool:
        """Count a letter to this address in, unless ``per_hour`` went there in the last hour."""
        await tx.execute("DELETE FROM proof_letters WHERE sent_at <= ?", (now - 3600,))
        row = await fetch_one(
            tx, "SELECT COUNT(*) FROM proof_letters WHERE address_hash = ?", (address_hash,)
        )
        if row is not None and int(row[0]) >= per_hour:
            return False
        await tx.execute(
            "INSERT INTO proof_letters (address_hash, sent_at) VALUES (?, ?)", (address_hash, now)
        )
        return True

    @staticmethod
    async def delete_in(tx: aiosqlite.Connection, telegram_id: int) -> None:
        await tx.execute("DELETE FROM ownership_proofs WHERE telegram_id = ?", (telegram_id,))


def _to_proof(row: aiosqlite.Row) -> PendingProof:
    return PendingProof(
        id=int(row["id"]),
        telegram_id=int(row["telegram_id"]),
        chat_id=int(row["chat_id"]),
        email=str(row["email"]),
        gc_user_id=row["gc_user_id"],
        gc_name=str(row["gc_name"]),
        gc_status=row["gc_status"],
        phone=str(row["phone"]),
        code_hash=row["code_hash"],
        code_salt=row["code_salt"],
        code_sent_at=row["code_sent_at"],
        code_expires_at=row["code_expires_at"],
        code_tries_left=int(row["code_tries_left"]),
        codes_sent=int(row["codes_sent"]),
        operator_asked_at=row["operator_asked_at"],
        created_at=float(row["created_at"]),
    )
