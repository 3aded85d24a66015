"""The ``getcourse_quirks`` table: what this school's GetCourse was seen not to take.

The public record is thin on some export filters (reference §9): the ``email`` filter may be
unknown (908 alone) or ignored (the whole set comes back), and ``status=banned|deactivated`` may
answer 914. Each costs a request to learn, so it is learned once and kept across restarts."""

from __future__ import annotations

from services.storage.database import Repository

EMAIL_FILTER = "email_filter"  # value: "unknown" (908 alone) or "ignored" (other users came back)
STATUS_FILTER = "status:"  # + status; value "refused" (914)


class QuirkRepository(Repository):
    async def get(self, name: str) -> str | None:
        row = await self._database.fetchone(
            "SELECT value FROM getcourse_quirks WHERE name = ?", (name,)
        )
        return None if row is None else str(row["value"])

    async def learned(self, name: str, value: str, now: float) -> None:
        async with self._database.transaction() as tx:
            await tx.execute(
                "INSERT INTO getcourse_quirks (name, value, learned_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "learned_at = excluded.learned_at",
                (name, value, now),
            )
