"""The one interface every GetCourse lookup goes through.

Today the only implementation is the live export (``services.getcourse.GetCourseClient``);
a local mirror of the school's users can implement the same protocol and slot in."""

from __future__ import annotations

from typing import Protocol

from services.models import GetCourseUser


class UserDirectory(Protocol):
    async def find_user_by_email(self, email: str) -> GetCourseUser | None:
        """The user with this (normalised) email, ``None`` when GetCourse has none.

        Raises ``GetCourseError`` when the lookup could not be completed."""
        ...
