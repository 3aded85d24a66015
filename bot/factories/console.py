"""The operators' console (built in one function, so that it can be swapped whole)."""

from __future__ import annotations

import typing

from pydantic import SecretStr

from bot import __version__
from bot.factories.getcourse import GetCourse
from bot.factories.shared import Shared
from bot.settings import Settings
from services.console import (
    ConsoleReports,
    Deployment,
    LinksExport,
    OperatorChanges,
    OperatorConsole,
    PersonFinder,
)
from services.console.figures import FigureBook
from services.linking.bridge import LinkFollowUps
from services.linking.store import LinkStore
from services.salebot.outbox import OutboxWorker
from services.supervision import Supervisor


def operator_console(
    shared: Shared,
    getcourse: GetCourse,
    outbox: OutboxWorker,
    follow_ups: LinkFollowUps,
    supervisor: Supervisor,
    figures: FigureBook,
) -> OperatorConsole:
    settings, database = shared.settings, shared.database
    return OperatorConsole(
        find=PersonFinder(database),
        change=OperatorChanges(
            database,
            getcourse.directory,
            LinkStore(follow_ups),
            outbox.wake,
            keep_variables_on_unlink=settings.salebot_keep_variables_on_unlink,
        ),
        report=ConsoleReports(
            database,
            figures,
            getcourse.budget,
            getcourse.sync,
            shared.calls,
            Deployment(__version__, settings.mode, settings_summary(settings)),
            supervisor=supervisor,
        ),
        export=LinksExport(database),
    )


def settings_summary(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Every setting except the secrets, as (NAME, value), for an operator's /health."""
    summary = []
    for name, value in settings:
        # By declared type, so an unset secret is left out as well as a set one.
        annotation = Settings.model_fields[name].annotation
        if annotation is SecretStr or SecretStr in typing.get_args(annotation):
            continue
        if isinstance(value, frozenset):
            value = ",".join(str(item) for item in sorted(value))
        elif isinstance(value, tuple):
            value = ",".join(str(item) for item in value) or "off"
        summary.append((name.upper(), "" if value is None else str(value)))
    return tuple(summary)
