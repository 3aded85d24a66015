"""``python -m bot sandbox``: the bot against local stand-ins, chatted with from the terminal.

Starts the stand-in world (``sandbox/world.py``: Telegram, GetCourse, Salebot and a mail server
on loopback, with the demo data in ``sandbox/data``), runs the real bot against it (a fresh
database in a temporary folder), and turns each line typed into a Telegram message from a demo
student."""

from __future__ import annotations

import asyncio
import html
import re
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

import handlers
from bot.app import App
from bot.log_setup import configure_logging
from bot.polling import PollingRunner
from bot.public_http import EVENTS_PATH
from sandbox.demo import FUNNEL_BOT, OPERATOR_ID
from sandbox.getcourse import GetCourseStandIn
from sandbox.mail import ReceivedLetter
from sandbox.salebot import SalebotStandIn
from sandbox.telegram import SentMessage, TelegramStandIn
from sandbox.world import StandInWorld, free_port, stand_in_world
from services.storage.outbox import OutboxRepository

DEFAULT_USER = 100000001
EVENTS_SECRET = "sandbox-events-secret"
# The GetCourse additional fields the bot fills (created in the demo account).
GETCOURSE_FIELDS = ("telegram_id", "sb_id")
# The phone each demo Telegram user shares with :contact. The first three are the phones GetCourse
# holds for ivan.petrov@, anna@ and maria.sidorova@example.com; the others are nobody's there.
DEMO_PHONES = {
    100000001: "+7 916 123-45-67",
    100000002: "+79031112233",
    100000003: "89257654321",
    100000099: "+79990000099",
}
# After a message, replies are awaited until the bot has been quiet this long.
QUIET_SECONDS = 1.0
REPLY_DEADLINE = 60.0
WRITE_CHECK_SECONDS = 0.1

HELP = """Type a message as the student and press Enter. Sandbox commands:
  :press N     press button N of the bot's last message
  :contact     share your phone with the bot's "share my phone number" button
  :code        send the code from the last letter the mail stand-in received
  :photo       send a photo instead of text
  :user ID     talk as another Telegram user (demo students: 100000001-100000005;
               100000099 has no Salebot client yet; 900000001 is an operator: /help)
  :salebot     show what Salebot holds for this user
  :funnel      this user starts the school's Salebot funnel bot (Salebot gets a client)
  :gc-event NAME [name=value ...]
               a GetCourse process reports event NAME (e.g. paid) for this user, as its
               "call URL" would; add email=... for someone not linked yet, amount=... etc.
               for variables; shows what the Salebot stand-in received
  :getcourse   show the GetCourse fields the stand-in holds for this user
  :help        this text
  :quit        stop (Ctrl-D and Ctrl-C work too)
Charts and files the bot sends are saved, and their paths printed."""
# Where files the bot sends (the /stats chart, the /export CSV) are saved for the person to open.
FILES_FOLDER = Path(tempfile.gettempdir()) / "gc-salebot-sandbox"


class TerminalChat:
    def __init__(
        self,
        telegram: TelegramStandIn,
        salebot: SalebotStandIn,
        checking_prefix: str,
        write_waiting: Callable[[int], Awaitable[bool]],
        person_is_back: Callable[[int], Awaitable[None]],
        bot_busy: Callable[[], bool],
        getcourse: GetCourseStandIn | None = None,
        events_url: str | None = None,
    ) -> None:
        self.telegram = telegram
        self.salebot = salebot
        self.getcourse = getcourse
        self.events_url = events_url  # the bot's /getcourse/events
        self.bot_busy = bot_busy  # updates not yet taken, or still being handled
        self.write_waiting = write_waiting  # a Salebot write for this user is in the outbox
        self.person_is_back = person_is_back
        # A "checking…" reply is always followed by the result: wait for it, however long.
        self.checking_prefix = checking_prefix
        self.user_id = DEFAULT_USER
        self.last_letter: ReceivedLetter | None = None
        self._seen: dict[int, int] = {}
        self._shown_variables: dict[int, dict[str, str]] = {}
        self._shown_fields: dict[str, dict[str, str]] = {}
        self._shown_callbacks = len(salebot.callbacks)
        self.show_salebot(always=False, quietly=True)

    async def handle(self, line: str) -> bool:
        """Act on one typed line; ``False`` means quit."""
        command, _, argument = line.strip().partition(" ")
        if command in {":quit", ":q"}:
            return False
        if command == ":help":
            print(HELP)
        elif command == ":user" and argument.strip().isdigit():
            self.user_id = int(argument)
            print(f"… now talking as Telegram user {self.user_id}")
            self.show_salebot(always=False, quietly=True)
            self.print_unseen()  # what the bot wrote to them meanwhile (an operator's cards)
        elif command == ":funnel":
            await self.start_funnel()
        elif command == ":salebot":
            self.show_salebot(always=True)
        elif command == ":gc-event":
            await self.gc_event(argument)
        elif command == ":getcourse":
            self.show_getcourse(always=True)
        elif command == ":photo":
            self.telegram.send_photo(self.user_id)
            await self.print_replies()
        elif command == ":press":
            await self.press(argument.strip())
        elif command == ":contact":
            phone = DEMO_PHONES.get(self.user_id, f"+7999{self.user_id % 10**7:07d}")
            contact = {"phone_number": phone, "first_name": "Sandbox", "user_id": self.user_id}
            print(f"… shared the contact of Telegram user {self.user_id}: {phone}")
            self.telegram.send_message(self.user_id, contact=contact)
            await self.print_replies()
        elif command == ":code":
            code = self.last_letter.code if self.last_letter else None
            if code is None:
                print("… no letter with a code yet")
            else:
                self.telegram.send_message(self.user_id, code)
                print(f"you> {code}")
                await self.print_replies()
        elif command.startswith(":"):
            print(f"… no sandbox command {command}\n{HELP}")
        elif line.strip():
            self.telegram.send_message(self.user_id, line.rstrip("\n"))
            await self.print_replies()
        return True

    async def press(self, number: str) -> None:
        with_buttons = [m for m in self.telegram.bot_messages(self.user_id) if m.buttons()]
        buttons = with_buttons[-1].buttons() if with_buttons else []
        if not number.isdigit() or not 1 <= int(number) <= len(buttons):
            print("… no such button")
            return
        _, data = buttons[int(number) - 1]
        self.telegram.press_button(self.user_id, with_buttons[-1].message_id, data)
        await self.print_replies()

    async def print_replies(self) -> None:
        """Print what the bot sends until it has finished with the message and been quiet for
        a moment (a chart may take seconds to draw)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLY_DEADLINE
        expecting_more = True
        while loop.time() < deadline:
            seen = self._seen.get(self.user_id, 0)
            try:
                message = await self.telegram.wait_for_message(
                    self.user_id, after=seen, timeout=QUIET_SECONDS
                )
            except AssertionError:
                if expecting_more or self.bot_busy():
                    continue
                break
            expecting_more = (message.text or "").startswith(self.checking_prefix)
            ids = [m.message_id for m in self.telegram.bot_messages(self.user_id)]
            self._seen[self.user_id] = ids.index(message.message_id) + 1
            print(render(message, self.telegram))
        await asyncio.sleep(0.3)  # let a just-stored link reach the Salebot stand-in
        self.show_salebot(always=False)
        await asyncio.sleep(0.3)  # and the GetCourse field write and callbacks follow it
        self.show_callbacks()
        self.show_getcourse(always=False)

    def print_unseen(self) -> None:
        messages = self.telegram.bot_messages(self.user_id)
        for message in messages[self._seen.get(self.user_id, 0) :]:
            print(render(message, self.telegram))
        self._seen[self.user_id] = len(messages)

    def show_letter(self, letter: ReceivedLetter) -> None:
        """The mail stand-in received a letter: print it, as the student would read it."""
        self.last_letter = letter
        print(f"mail> to {', '.join(letter.recipients)}: {letter.subject}")
        for line in letter.body.splitlines():
            print(f"mail> {line}")

    async def start_funnel(self) -> None:
        """The student starts the Salebot funnel bot; a write that was waiting for their
        Salebot client is delivered now, and nothing is waited for when there is none."""
        if self.salebot.client_by_platform_id(self.user_id, FUNNEL_BOT) is None:
            self.salebot.add_client(self.user_id, group=FUNNEL_BOT, name="Sandbox student")
        print("… the student started the Salebot funnel bot")
        if not await self.write_waiting(self.user_id):
            self.show_salebot(always=True)
            return
        await self.person_is_back(self.user_id)  # as when they write to the bot again
        for _ in range(int(REPLY_DEADLINE / WRITE_CHECK_SECONDS)):
            if not await self.write_waiting(self.user_id):
                break
            await asyncio.sleep(WRITE_CHECK_SECONDS)
        self.show_salebot(always=True)

    async def gc_event(self, argument: str) -> None:
        """Call /getcourse/events as a GetCourse process would, then show Salebot's side."""
        name, *pairs = argument.split() or [""]
        params = {"secret": EVENTS_SECRET, "event": name}
        params.update(pair.partition("=")[::2] for pair in pairs)
        if "email" not in params and "user_id" not in params:
            client = self.salebot.client_by_platform_id(self.user_id, FUNNEL_BOT)
            variables = self.salebot.client_variables(client.id) if client else {}
            if not variables.get("gc_user_id"):
                print("… this user is not linked yet: add email=... (a GetCourse student's email)")
                return
            params.update(user_id=variables["gc_user_id"], email=variables.get("email", ""))
        if self.events_url is None:
            print("… GetCourse events are off in this sandbox")
            return
        self.show_callbacks()
        callbacks = len(self.salebot.callbacks)
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(self.events_url, data=params)
        print(f"… GetCourse called the bot: HTTP {answer.status_code} {answer.text.strip()}")
        if answer.status_code != 200 or answer.json().get("status") != "queued":
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLY_DEADLINE
        while loop.time() < deadline:
            if len(self.salebot.callbacks) > callbacks:
                break
            await asyncio.sleep(WRITE_CHECK_SECONDS)
        self.show_callbacks()
        self.show_salebot(always=True)

    def show_callbacks(self) -> None:
        """Print the callbacks Salebot received since the last look."""
        for callback in self.salebot.callbacks[self._shown_callbacks :]:
            message, client_id = callback["message"], callback["client_id"]
            print(f"… Salebot received callback {message!r} for client {client_id}")
        self._shown_callbacks = len(self.salebot.callbacks)

    def show_getcourse(self, *, always: bool) -> None:
        """Print the GetCourse fields of this user's linked email when asked or changed."""
        if self.getcourse is None:
            return
        client = self.salebot.client_by_platform_id(self.user_id, FUNNEL_BOT)
        variables = self.salebot.client_variables(client.id) if client else {}
        emails = {variables.get("email", "")}
        if not always:  # a relink blanks the fields of the email shown before
            emails |= set(self._shown_fields)
        for email in sorted(address for address in emails if address):
            user = self.getcourse.user_by_email(email)
            if user is None:
                continue
            fields = {title: user.custom.get(title, "") for title in GETCOURSE_FIELDS}
            if fields == self._shown_fields.get(email) and not always:
                continue
            self._shown_fields[email] = fields
            shown = ", ".join(f"{title} = {value or '(empty)'}" for title, value in fields.items())
            print(f"… GetCourse user {user.id} ({user.email}) now holds: {shown}")

    def show_salebot(self, *, always: bool, quietly: bool = False) -> None:
        """Print the user's Salebot variables when asked or when they changed."""
        client = self.salebot.client_by_platform_id(self.user_id, FUNNEL_BOT)
        if client is None:
            if always:
                print(f"… Salebot has no client for Telegram user {self.user_id}")
            return
        variables = self.salebot.client_variables(client.id)
        unchanged = variables == self._shown_variables.get(self.user_id)
        self._shown_variables[self.user_id] = variables
        if quietly or (unchanged and not always):
            return
        print(f"… Salebot client {client.id} now holds:")
        for name in sorted(variables):
            print(f"      {name} = {variables[name]}")


def render(message: SentMessage, telegram: TelegramStandIn) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", message.text or message.caption or ""))
    lines = [f"bot> {line}" for line in text.splitlines() or [""]]
    lines += [f"     [{n}] {label}" for n, (label, _) in enumerate(message.buttons(), start=1)]
    keyboard = (message.reply_markup or {}).get("keyboard") or []
    if keyboard:
        labels = " | ".join(str(button.get("text", "")) for row in keyboard for button in row)
        lines.append(f"     keyboard: {labels} (type a label to press it; :contact shares)")
    for sent in (message.document, *(message.photo or [])[-1:]):
        if sent is not None:
            lines.append(f"     [file] {save_file(telegram, message, sent)}")
    return "\n".join(lines)


def save_file(telegram: TelegramStandIn, message: SentMessage, sent: dict[str, Any]) -> Path:
    """Write a file the bot sent where the person can open it; its path."""
    upload = telegram.files[str(sent["file_id"])]
    FILES_FOLDER.mkdir(parents=True, exist_ok=True)
    path = FILES_FOLDER / f"{message.message_id}-{Path(upload.file_name).name or 'file'}"
    path.write_bytes(upload.content)
    return path


async def run_sandbox(language: str = "ru") -> int:
    # One "not ready yet" poll per export, as a real GetCourse would answer. Every proof method
    # works here: letters print in the terminal, the operator (:user 900000001) gets the cards in
    # their chat.
    async with stand_in_world(not_ready_polls=1, mail=True, proof=True) as world:
        world.getcourse.custom_fields.extend(GETCOURSE_FIELDS)  # the school created them
        settings = world.settings(
            log_level="ERROR",  # the terminal is what matters
            getcourse_poll_first_delay=0.5,
            getcourse_poll_max_interval=1.0,
            getcourse_lookup_timeout=20,
            # The stand-in has no budget to protect, and a paced second lookup would keep the
            # person at the terminal waiting for minutes.
            getcourse_pace_lookups=False,
            getcourse_coalesce_seconds=1,  # one person at a terminal: nobody to gather
            salebot_retry_first_delay=2,
            salebot_retry_max_delay=4,
            bot_language=language,
            shutdown_timeout=1,  # nothing here is worth waiting for on the way out
            # GetCourse events on (the public listener serves /getcourse/events), on a free
            # loopback port, so a bot running on this machine is no bother.
            getcourse_events_secret=EVENTS_SECRET,
            http_listen=f"127.0.0.1:{free_port()}",
            salebot_linked_message="gc_linked",
            operator_chat_id=OPERATOR_ID,
        )
        configure_logging(settings.log_level, settings.log_format, settings.secrets())
        async with App.running(settings) as app:
            polling = PollingRunner(app)
            await polling.start()
            try:
                await world.telegram.wait_for_poll()
                chat = terminal_chat(app, world)
                if world.mail is not None:  # the letters print as they arrive
                    world.mail.on_letter = chat.show_letter
                await chat_from_terminal(chat, world.getcourse)
            finally:  # also on Ctrl-C: polling ends before the stand-ins it talks to
                await polling.stop()
    return 0


def terminal_chat(app: App, world: StandInWorld) -> TerminalChat:
    checking = handlers.said(app.settings.bot_language, "checking", email="\0")
    outbox = OutboxRepository(app.services.database)

    async def write_waiting(telegram_id: int) -> bool:
        return await outbox.pending_for(telegram_id) is not None

    return TerminalChat(
        world.telegram,
        world.salebot,
        checking.split("\0")[0],
        write_waiting,
        app.services.outbox.person_is_back,
        lambda: world.telegram.updates_waiting or bool(app.dispatcher._handle_update_tasks),
        world.getcourse,
        f"http://{app.settings.http_listen}{EVENTS_PATH}",
    )


async def chat_from_terminal(chat: TerminalChat, getcourse: GetCourseStandIn) -> None:
    emails = ", ".join(user.email for user in getcourse.users[:4])
    print(
        "Sandbox: the bot runs against local stand-ins for Telegram, GetCourse and Salebot.\n"
        f"GetCourse knows, among others: {emails}\n"
        f"You are Telegram user {chat.user_id}. Start with /start.\n{HELP}"
    )
    lines = terminal_lines()
    while True:
        print("you> ", end="", flush=True)
        line = await lines.get()
        if not line:
            print()
            return
        if not sys.stdin.isatty():
            print(line.rstrip("\n"))  # echo piped input so a transcript reads naturally
        if not await chat.handle(line):
            return


def terminal_lines() -> asyncio.Queue[str]:
    """Lines typed at the terminal ("" at Ctrl-D), read by a daemon thread: a read blocked in
    an executor thread would keep the process alive after Ctrl-C."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        while True:
            line = sys.stdin.readline()
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the sandbox has ended meanwhile
                return
            if not line:
                return

    threading.Thread(target=read, name="terminal", daemon=True).start()
    return lines
