"""Proof of ownership (OWNERSHIP_PROOF) end to end: the bot polls the Telegram stand-in, looks
emails up on the GetCourse stand-in, writes to the Salebot stand-in and sends its code letters to
a mail server on loopback (aiosmtpd). Only the owner of an email gets it linked; before the proof
the bot's words are the same for an email GetCourse knows and one it does not."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import App
from bot.settings import SettingsError
from sandbox.demo import SCHOOL
from sandbox.mail import MailStandIn
from sandbox.server import Fault
from sandbox.telegram import SentMessage
from sandbox.world import mail_settings
from services.linking.code_mail import Letter, LetterSender, SmtpConfig
from services.linking.flow import LinkService, ProofAlerts
from services.linking.lookup_gate import LookupGate, LookupLimits
from services.linking.ownership import (
    LETTERS_PER_EMAIL_PER_HOUR,
    OwnershipProofs,
    ProofMethod,
    ProofStep,
)
from services.models import GetCourseUser
from services.notifications import OperatorEvent
from services.storage.database import Database
from tests.conftest import OPERATOR_ID, Person, StandIns, eventually, polling_bot
from tests.operator_console import OPERATOR_CHAT, plain
from tests.routing import FakeDirectory, RecordingNotifier
from tests.test_settings import settings as valid_settings

IVAN = 100000001  # GetCourse: ivan.petrov@example.com, phone +79161234567
MARIA = 100000002  # not Ivan
IVAN_SECOND_ACCOUNT = 100000003  # Ivan again, on another Telegram account with the same phone
IVAN_EMAIL = "ivan.petrov@example.com"
IVAN_PHONE = "+79161234567"
UNKNOWN_EMAIL = "nobody.here@example.com"
PROOF_REPLY = "Если этот адрес принадлежит ученику школы"


@pytest.fixture
async def mail() -> AsyncIterator[MailStandIn]:
    server = MailStandIn()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def proof_settings(standins: StandIns, mail: MailStandIn, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "ownership_proof": "contact,email_code,operator",
        **mail_settings(mail),
        "operator_chat_id": OPERATOR_CHAT,
    }
    return standins.settings(**{**values, **overrides})


@pytest.fixture
async def app(standins: StandIns, mail: MailStandIn) -> AsyncIterator[App]:
    async with polling_bot(standins, proof_settings(standins, mail)) as running:
        yield running


async def asks_for_proof(person: Person, email: str) -> SentMessage:
    person.says(email)
    await person.reply("Проверяю")
    return await person.reply(PROOF_REPLY)


async def proof_asked_of(standins: StandIns, telegram_id: int) -> Person:
    """The person with this Telegram ID has typed Ivan's email and been asked to prove it."""
    person = Person(standins.telegram, telegram_id)
    await asks_for_proof(person, IVAN_EMAIL)
    return person


@pytest.fixture
async def maria(standins: StandIns, app: App) -> Person:
    """Maria, who is not Ivan, asked to prove Ivan's email."""
    return await proof_asked_of(standins, MARIA)


@pytest.fixture
async def ivan(standins: StandIns, app: App) -> Person:
    """Ivan, asked to prove his own email."""
    return await proof_asked_of(standins, IVAN)


async def asks_support(standins: StandIns, person: Person) -> SentMessage:
    """The person asks the operators to confirm; the card the operators' chat gets."""
    person.says("🙋 Попросить поддержку")
    await person.reply("Запрос отправлен")
    return await standins.telegram.wait_for_message(OPERATOR_CHAT)


def share_contact(person: Person, phone: str, *, of: int | None = None) -> None:
    """``of``: whose contact it is (Telegram's ``contact.user_id``); the sender's own by default."""
    contact = {"phone_number": phone, "first_name": "Ivan", "user_id": of or person.user_id}
    person.telegram.send_message(person.user_id, contact=contact)


async def nothing_linked(app: App, standins: StandIns) -> None:
    assert await app.services.database.fetchall("SELECT * FROM links") == []
    assert standins.salebot.requests_of("save_variables") == []


async def shift_proof(app: App, telegram_id: int, assignments: str) -> None:
    """Time travel for one proof: ``assignments`` as in SQL's SET."""
    async with app.services.database.transaction() as tx:
        await tx.execute(
            f"UPDATE ownership_proofs SET {assignments} WHERE telegram_id = ?", (telegram_id,)
        )


async def salebot_holds_ivan(standins: StandIns, telegram_id: int) -> None:
    def delivered() -> bool:
        client = standins.salebot.client_by_platform_id(telegram_id, "school_funnel_bot")
        if client is None:
            return False
        variables = standins.salebot.client_variables(client.id)
        return variables.get("gc_user_id") == "187654321" and variables.get("email") == IVAN_EMAIL

    await eventually(delivered)


# --- the same words for every email ---------------------------------------------------------


async def test_replies_to_known_and_unknown_emails_are_the_same(
    standins: StandIns, mail: MailStandIn, app: App
) -> None:
    maria = Person(standins.telegram, MARIA)
    stranger = Person(standins.telegram, IVAN_SECOND_ACCOUNT)
    known = await asks_for_proof(maria, IVAN_EMAIL)
    unknown = await asks_for_proof(stranger, UNKNOWN_EMAIL)
    assert (known.text, known.reply_markup) == (unknown.text, unknown.reply_markup)
    assert IVAN_EMAIL not in (known.text or "")
    keyboard = [button["text"] for row in known.reply_markup["keyboard"] for button in row]  # type: ignore[index]
    assert keyboard == ["📱 Поделиться номером", "✉️ Прислать новый код", "🙋 Попросить поддержку"]
    assert known.reply_markup["keyboard"][0][0]["request_contact"] is True  # type: ignore[index]

    # Every step that fails reads the same too.
    steps = [
        lambda p: p.says("000000"),  # a wrong code
        lambda p: share_contact(p, "+79990001122"),  # their own phone, not GetCourse's
        lambda p: share_contact(p, IVAN_PHONE, of=IVAN),  # somebody else's contact
        lambda p: p.says("✉️ Прислать новый код"),  # too soon
        lambda p: p.says("🙋 Попросить поддержку"),
    ]
    for step in steps:
        step(maria)
        step(stranger)
        assert (await maria.reply()).text == (await stranger.reply()).text

    # A code went to the address GetCourse knows, none to the other; nothing is linked.
    await mail.wait_for_letter(IVAN_EMAIL)
    assert mail.letters_to(UNKNOWN_EMAIL) == []
    await nothing_linked(app, standins)
    await eventually(lambda: len(standins.telegram.bot_messages(OPERATOR_CHAT)) == 2)
    cards = standins.telegram.bot_messages(OPERATOR_CHAT)
    assert [text for text, _ in cards[0].buttons()] == ["✅ Подтвердить", "✖️ Отказать"]
    assert [text for text, _ in cards[1].buttons()] == ["✖️ Отказать"]  # nothing to link to
    assert "В GetCourse нет пользователя" in (cards[1].text or "")


async def test_answer_of_a_queued_lookup_is_the_same_proof_request(
    standins: StandIns, mail: MailStandIn
) -> None:
    """A lookup answered later by the queue: the same words and keyboard, then the same proof."""
    settings = proof_settings(standins, mail, getcourse_queued_notice_seconds=0.05)
    standins.getcourse.faults.add("users", Fault(delay=0.5), times=None)
    async with polling_bot(standins, settings) as app:
        maria = Person(standins.telegram, MARIA)
        stranger = Person(standins.telegram, IVAN_SECOND_ACCOUNT)
        maria.says(IVAN_EMAIL)
        stranger.says(UNKNOWN_EMAIL)
        for person in (maria, stranger):
            await person.reply("Проверяю")
            await person.reply("вы в очереди")
        known, unknown = await maria.reply(PROOF_REPLY), await stranger.reply(PROOF_REPLY)
        assert (known.text, known.reply_markup) == (unknown.text, unknown.reply_markup)
        letter = await mail.wait_for_letter(IVAN_EMAIL)
        stranger.says(letter.code or "")  # someone else's code
        assert "Код не подходит" in (await stranger.reply()).text
        await nothing_linked(app, standins)


# --- a person typing someone else's email is never linked -------------------------------------


async def test_a_forwarded_or_foreign_contact_proves_nothing(
    standins: StandIns, app: App, maria: Person
) -> None:
    share_contact(maria, IVAN_PHONE, of=IVAN)  # Ivan's contact, forwarded
    assert "своим номером" in (await maria.reply()).text
    share_contact(maria, "+79257654321")  # her own
    assert "не получилось" in (await maria.reply()).text
    # His number on a contact card Telegram tied to nobody (typed into her phone book).
    standins.telegram.send_message(MARIA, contact={"phone_number": IVAN_PHONE, "first_name": "I"})
    assert "своим номером" in (await maria.reply()).text
    await nothing_linked(app, standins)


async def test_wrong_codes_and_someone_elses_code_prove_nothing(
    standins: StandIns, mail: MailStandIn, app: App, maria: Person
) -> None:
    first = await mail.wait_for_letter(IVAN_EMAIL)
    assert first.code is not None

    # Ivan asks for his own code meanwhile: his code does not open Maria's proof.
    await proof_asked_of(standins, IVAN)
    ivans = await mail.wait_for_letter(IVAN_EMAIL, after=1)
    assert ivans.code != first.code
    maria.says(ivans.code or "")
    assert "Осталось попыток: 4" in (await maria.reply()).text

    # Wrong codes until the tries are gone: then even the right one is refused.
    for left in (3, 2, 1):
        maria.says(f"{(int(first.code) + left) % 10**6:06d}")
        assert f"Осталось попыток: {left}" in (await maria.reply()).text
    maria.says(f"{(int(first.code) + 5) % 10**6:06d}")
    assert "Попытки для этого кода закончились" in (await maria.reply()).text
    maria.says(first.code)
    assert "Попытки для этого кода закончились" in (await maria.reply()).text
    await nothing_linked(app, standins)


async def test_expired_and_many_codes_prove_nothing(
    standins: StandIns, mail: MailStandIn, app: App, maria: Person
) -> None:
    await mail.wait_for_letter(IVAN_EMAIL)

    # A new code at most once a minute; it goes to Ivan's mailbox, not to Maria.
    maria.says("✉️ Прислать новый код")
    assert "Новый код можно будет прислать через" in (await maria.reply()).text
    await shift_proof(app, MARIA, "code_sent_at = code_sent_at - 61")
    maria.says("✉️ Прислать новый код")
    assert "на него отправлен новый код" in (await maria.reply()).text
    second = await mail.wait_for_letter(IVAN_EMAIL, after=1)

    # An expired code, even the right one, is refused.
    await shift_proof(app, MARIA, "code_expires_at = 1")
    maria.says(second.code or "")
    assert "Срок действия кода истёк" in (await maria.reply()).text

    # Many codes: after three, no more.
    await shift_proof(app, MARIA, "code_sent_at = code_sent_at - 61")
    maria.says("✉️ Прислать новый код")
    await maria.reply("новый код")
    await shift_proof(app, MARIA, "code_sent_at = code_sent_at - 61")
    maria.says("✉️ Прислать новый код")
    assert "Больше кодов" in (await maria.reply()).text
    assert len(mail.letters_to(IVAN_EMAIL)) == 3
    await nothing_linked(app, standins)


async def test_operators_refusal_proves_nothing(
    standins: StandIns, app: App, maria: Person
) -> None:
    card = await asks_support(standins, maria)
    assert f"Telegram {MARIA}" in (card.text or "")
    refuse = next(data for text, data in card.buttons() if "Отказать" in text)
    standins.telegram.press_button(OPERATOR_ID, card.message_id, refuse, chat_id=OPERATOR_CHAT)
    refused = await maria.reply("не смогла подтвердить")
    assert refused.reply_markup == {"remove_keyboard": True}
    await nothing_linked(app, standins)
    audit = await app.services.database.fetchall("SELECT action, target FROM operator_audit")
    assert [tuple(row) for row in audit] == [("proof_refuse", str(MARIA))]
    assert await app.services.database.fetchall("SELECT * FROM ownership_proofs") == []


async def test_one_address_gets_at_most_five_letters_an_hour_whoever_asks(
    standins: StandIns, mail: MailStandIn, app: App
) -> None:
    people = [Person(standins.telegram, 100000200 + n) for n in range(LETTERS_PER_EMAIL_PER_HOUR)]
    asked = [await asks_for_proof(person, IVAN_EMAIL) for person in people]
    last = Person(standins.telegram, IVAN)
    over = await asks_for_proof(last, IVAN_EMAIL)
    assert over.text == asked[0].text  # the reply cannot tell
    assert app.services.letters is not None
    await eventually(lambda: app.services.letters is not None and app.services.letters.sending == 0)
    assert len(mail.letters_to(IVAN_EMAIL)) == LETTERS_PER_EMAIL_PER_HOUR


async def test_a_proof_not_given_within_a_day_is_void_and_dropped(
    standins: StandIns, mail: MailStandIn, app: App
) -> None:
    stranger = Person(standins.telegram, IVAN_SECOND_ACCOUNT)
    await asks_for_proof(stranger, UNKNOWN_EMAIL)
    await shift_proof(app, IVAN_SECOND_ACCOUNT, "created_at = created_at - 86401")
    stranger.says("123456")
    assert "Сейчас нечего подтверждать" in (await stranger.reply()).text
    # The next proof anyone starts takes the void one (and the address typed) away.
    await proof_asked_of(standins, MARIA)
    rows = await app.services.database.fetchall("SELECT telegram_id FROM ownership_proofs")
    assert [row[0] for row in rows] == [MARIA]


async def test_code_never_reaches_the_log(
    standins: StandIns, mail: MailStandIn, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await proof_asked_of(standins, MARIA)
    letter = await mail.wait_for_letter(IVAN_EMAIL)
    await eventually(lambda: "code letter for telegram" in caplog.text)
    assert letter.code is not None
    # The bot's own lines (the test mail server logs every line it receives).
    ours = ("services", "handlers", "bot")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(ours))
    assert "code letter for telegram" in logged
    assert letter.code not in logged
    assert IVAN_EMAIL not in logged  # emails are masked


# --- the owner links through each method ------------------------------------------------------


async def test_owner_links_by_sharing_their_contact(
    standins: StandIns, app: App, ivan: Person
) -> None:
    share_contact(ivan, "8 (916) 123-45-67")  # as the phone book writes it
    linked = await ivan.reply("Готово")
    assert linked.reply_markup == {"remove_keyboard": True}
    await salebot_holds_ivan(standins, IVAN)
    assert await app.services.database.fetchall("SELECT * FROM ownership_proofs") == []


async def test_owner_links_with_the_emailed_code(
    standins: StandIns, mail: MailStandIn, app: App, ivan: Person
) -> None:
    letter = await mail.wait_for_letter(IVAN_EMAIL)
    assert letter.subject.startswith(f"{SCHOOL}: ")
    assert f"«{SCHOOL}»" in letter.body
    assert letter.message["From"] == f"{SCHOOL} <noreply@school.example>"
    assert letter.code is not None

    ivan.says("000000" if letter.code != "000000" else "111111")
    assert "Осталось попыток: 4" in (await ivan.reply()).text
    ivan.says(f"{letter.code[:3]} {letter.code[3:]}")
    await ivan.reply("Готово")
    await salebot_holds_ivan(standins, IVAN)
    row = await app.services.database.fetchone("SELECT code_hash FROM ownership_proofs")
    assert row is None  # the proof is used up with the link


async def test_owner_links_when_an_operator_confirms(
    standins: StandIns, app: App, ivan: Person
) -> None:
    card = await asks_support(standins, ivan)
    ivan.says("🙋 Попросить поддержку")
    await ivan.reply("уже у поддержки")
    assert f"Telegram {IVAN}" in plain(card.text or "")
    # The operator chat is a group: the email and the phone are masked, as on every card there.
    assert "i***@example.com" in plain(card.text or "")
    assert IVAN_EMAIL not in (card.text or "")
    assert "187654321 · Иван Петров · телефон •••4567" in plain(card.text or "")
    confirm = next(data for text, data in card.buttons() if "Подтвердить" in text)

    # Someone in the operator chat who is no operator: nothing happens.
    standins.telegram.press_button(100000777, card.message_id, confirm, chat_id=OPERATOR_CHAT)
    await standins.telegram.wait_for_call("answerCallbackQuery")
    assert await app.services.links.current_link(IVAN) is None

    standins.telegram.press_button(OPERATOR_ID, card.message_id, confirm, chat_id=OPERATOR_CHAT)
    await ivan.reply("Готово")
    await salebot_holds_ivan(standins, IVAN)
    link = await app.services.links.current_link(IVAN)
    assert link is not None
    assert link.linked_by == OPERATOR_ID
    edited = standins.telegram.bot_messages(OPERATOR_CHAT)[0]
    assert "✅ Подтвердил(а)" in (edited.text or "")
    assert edited.buttons() == []
    audit = await app.services.database.fetchall("SELECT action, target FROM operator_audit")
    assert [tuple(row) for row in audit] == [("proof_confirm", str(IVAN))]

    # The proof is used up: the same answer again changes nothing.
    proof_id = int(confirm.rsplit(":", 1)[1])
    assert await app.services.links.operator_decides(OPERATOR_ID, proof_id, True) is None


async def test_a_card_for_a_proof_given_another_way_is_out_of_date(
    standins: StandIns, app: App, ivan: Person
) -> None:
    card = await asks_support(standins, ivan)
    share_contact(ivan, IVAN_PHONE)
    await ivan.reply("Готово")

    confirm = next(data for text, data in card.buttons() if "Подтвердить" in text)
    standins.telegram.press_button(OPERATOR_ID, card.message_id, confirm, chat_id=OPERATOR_CHAT)
    alert = await standins.telegram.wait_for_call("answerCallbackQuery")
    assert "уже закрыт" in alert.params["text"]
    await eventually(lambda: standins.telegram.bot_messages(OPERATOR_CHAT)[0].buttons() == [])
    assert await app.services.database.fetchall("SELECT * FROM operator_audit") == []
    link = await app.services.links.current_link(IVAN)
    assert link is not None
    assert link.linked_by is None  # the person's own proof


async def test_an_operators_link_is_a_proof_in_itself(
    standins: StandIns, app: App, ivan: Person
) -> None:
    operator = Person(standins.telegram, OPERATOR_ID)
    operator.says(f"/link {IVAN} {IVAN_EMAIL}")
    question = await operator.reply(lambda m: bool(m.buttons()))
    confirm = next(data for text, data in question.buttons() if "Привязать" in text)
    standins.telegram.press_button(OPERATOR_ID, question.message_id, confirm)
    await salebot_holds_ivan(standins, IVAN)
    assert await app.services.database.fetchall("SELECT * FROM ownership_proofs") == []
    audit = await app.services.database.fetchall("SELECT action FROM operator_audit")
    assert [row[0] for row in audit] == ["link"]


async def test_already_linked_is_said_only_after_proof(
    standins: StandIns, app: App, ivan: Person
) -> None:
    share_contact(ivan, IVAN_PHONE)
    await ivan.reply("Готово")

    # Ivan's second Telegram account: the same proof request as anyone gets, and only once the
    # phone proves it is his, the conflict.
    second = await proof_asked_of(standins, IVAN_SECOND_ACCOUNT)
    share_contact(second, IVAN_PHONE)
    conflict = await second.reply("уже привязан к другому аккаунту")
    assert conflict.reply_markup == {"remove_keyboard": True}
    assert await app.services.links.current_link(IVAN_SECOND_ACCOUNT) is None


async def test_off_keeps_todays_flow(standins: StandIns, mail: MailStandIn) -> None:
    async with polling_bot(standins, proof_settings(standins, mail, ownership_proof="off")) as app:
        ivan = Person(standins.telegram, IVAN)
        ivan.says(IVAN_EMAIL)
        linked = await ivan.reply("Готово")
        assert linked.reply_markup is None
        await salebot_holds_ivan(standins, IVAN)
        assert mail.letters == []
        assert await app.services.database.fetchall("SELECT * FROM ownership_proofs") == []


async def test_methods_without_their_prerequisites_are_not_offered(
    standins: StandIns, mail: MailStandIn
) -> None:
    settings = standins.settings(ownership_proof="email_code,contact,operator")
    assert settings.proof_methods == ("contact",)  # no SMTP, no operator chat
    async with polling_bot(standins, settings):
        maria = Person(standins.telegram, MARIA)
        asked = await asks_for_proof(maria, IVAN_EMAIL)
        rows = asked.reply_markup["keyboard"]  # type: ignore[index]
        assert [button["text"] for row in rows for button in row] == ["📱 Поделиться номером"]
        assert "код" not in (asked.text or "")


# --- settings ---------------------------------------------------------------------------------


def test_settings_of_the_proof(standins: StandIns) -> None:
    assert standins.settings(ownership_proof=" Operator , contact ").ownership_proof == (
        "operator",
        "contact",
    )
    for value, problem in [
        ("sms", "OWNERSHIP_PROOF: must be off or a comma-separated list"),
        ("contact,contact", "OWNERSHIP_PROOF: names a method twice"),
        ("email_code", "none of its methods can work here"),
    ]:
        with pytest.raises(SettingsError, match=problem):
            standins.settings(ownership_proof=value)
    with pytest.raises(SettingsError, match="SMTP_SECURITY=none is accepted only for a loopback"):
        standins.settings(
            smtp_host="smtp.example.com", smtp_from="a@b.example", smtp_security="none"
        )
    with pytest.raises(SettingsError, match="SMTP_FROM is required"):
        standins.settings(smtp_host="smtp.example.com")
    settings = standins.settings(
        smtp_host="smtp.example.com",
        smtp_from="School <noreply@school.example>",
        smtp_username="bot",
        smtp_password="s3cret-pass",
        smtp_security="tls",
    )
    assert settings.smtp_port_or_default == 465
    assert "s3cret-pass" in settings.secrets()  # so the log redactor hides it
    assert "s3cret-pass" not in repr(settings)
    assert valid_settings().ownership_proof == ("contact", "email_code", "operator")


# --- narrower: the letter sender, the grouped notices -----------------------------------------


async def test_a_letter_is_retried_after_a_passing_failure_not_after_a_refusal(
    mail: MailStandIn,
) -> None:
    sender = LetterSender(
        SmtpConfig(mail.host, mail.port, "none", "School <noreply@school.example>"),
        retry_delays=(0.01, 0.01),
    )
    mail.fail_next(1)  # 451
    sender.send(Letter("ivan@example.com", "Code", "Your code: 123456"), IVAN)
    assert (await mail.wait_for_letter("ivan@example.com")).code == "123456"

    mail.fail_next(1, "550 5.1.1 No such mailbox")
    sender.send(Letter("gone@example.com", "Code", "Your code: 654321"), IVAN)
    await eventually(lambda: sender.sending == 0)
    assert mail.letters_to("gone@example.com") == []
    await sender.close()


async def test_unusual_failures_and_unknown_emails_make_one_notice_each(database: Database) -> None:
    notifier = RecordingNotifier()
    directory = FakeDirectory(
        {IVAN_EMAIL: GetCourseUser(id="187654321", email=IVAN_EMAIL, phone=IVAN_PHONE)}
    )
    links = LinkService(
        database,
        directory,
        on_enqueued=lambda: None,
        gate=LookupGate(database, LookupLimits(1000, 1000)),
        notifier=notifier,
        proofs=OwnershipProofs(database, (ProofMethod.CONTACT,)),
        alerts=ProofAlerts(failed_proofs_per_hour=3, unknown_emails_per_hour=3),
    )
    for person in range(6):
        await links.link(person, person, f"nobody{person}@example.com")
        await links.link(100 + person, 100 + person, IVAN_EMAIL)
        refused = await links.prove_contact(100 + person, 100 + person, "+79990000000")
        assert getattr(refused, "step", None) is ProofStep.CONTACT_REFUSED
    events = [notice.event for notice in notifier.notices]
    assert sorted(events) == [OperatorEvent.PROOF_FAILURES, OperatorEvent.UNKNOWN_EMAILS]
    assert await links.current_link(100) is None


def test_every_proof_step_has_its_words() -> None:
    from handlers.texts import Texts

    for language in ("ru", "en"):
        texts = Texts.load(language)
        assert {step.value for step in ProofStep} <= texts.keys()
        assert {f"proof_by_{method}" for method in ProofMethod} <= texts.keys()
        assert {"notice_proof_failures", "notice_unknown_emails"} <= texts.keys()


async def test_check_command_reports_the_proof_and_reaches_the_mail_server(
    standins: StandIns, mail: MailStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.check import run_check
    from tests.conftest import free_port

    settings = proof_settings(standins, mail, operator_chat_id=None)
    assert await run_check(settings) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["proof"].startswith("ok ")
    assert (
        "offered: contact, email_code; not offered: operator (no OPERATOR_CHAT_ID)"
        in (lines["proof"])
    )
    assert lines["smtp"].startswith("ok ")
    assert mail.letters == []  # nothing sent

    closed = proof_settings(standins, mail, smtp_port=free_port())
    assert await run_check(closed) == 1
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["smtp"].startswith("FAIL ")
    assert "MailUnavailable" in lines["smtp"]
