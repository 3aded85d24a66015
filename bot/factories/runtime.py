"""Runtime: the operator notices. (The supervisor of the background loops and the call tracker
behind readiness take no settings; ``bot.app`` starts the loops.)"""

from __future__ import annotations

from bot.settings import Settings
from services.notifications import GroupingNotifier

# The first notice after a quiet spell waits this long for the rest of its burst.
NOTICE_GATHER_SECONDS = 2.0


def operator_notifier(settings: Settings) -> GroupingNotifier:
    return GroupingNotifier(
        interval=settings.operator_notice_interval,
        gather=min(NOTICE_GATHER_SECONDS, settings.operator_notice_interval),
    )
