"""What every user can do: /start, /help, /language, /cancel; and the polite error reply
(`handlers.errors`) is registered here."""

from __future__ import annotations

import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler, CommandHandler, TypeHandler

from bot.callbacks import LANGUAGE, MENU, URGENT
from bot.commands import commands_of_role, publish_chat_commands
from bot.context import HotlineApplication, HotlineContext
from bot.i18n import LANGUAGES, N_, suggested_language
from bot.texts.vocabulary import LANGUAGE_NAMES
from handlers.errors import on_error
from handlers.guide import menu_button
from handlers.pressed import show
from storage.access import is_staff
from storage.users import set_language

log = logging.getLogger(__name__)

MENU_REPORT = MENU.build("report")  # the report form starts on it (handlers.report)
MENU_STATUS = MENU.build("status")
MENU_LANGUAGE = MENU.build("language")
KEEP_LANGUAGE = LANGUAGE.build("keep")
#: After the profile is loaded (group -100), before the handlers (group 0).
FIRST_CONTACT_GROUP = -50
OFFER_CRIMEAN_TATAR = N_("Would you like me to write to you in Crimean Tatar?")


def reach_us_lines(context: HotlineContext, *, hours_only: bool = False) -> list[str]:
    """How to reach a person (phone, website, hours), from the settings; plain text, unescaped.
    Settings left empty are not shown."""
    tr, settings = context.tr, context.services.settings
    lines = []
    if settings.contact_phone and not hours_only:
        lines.append(tr.gettext("Phone: {phone}").format(phone=settings.contact_phone))
    if settings.contact_website and not hours_only:
        lines.append(tr.gettext("Website: {website}").format(website=settings.contact_website))
    if settings.contact_hours:
        lines.append(tr.gettext("Hours: {hours}").format(hours=settings.contact_hours))
    return lines


def main_menu(context: HotlineContext) -> InlineKeyboardMarkup:
    tr = context.tr
    urgent = tr.gettext("A search or detention is happening now")
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("🚨 " + urgent, callback_data=URGENT.build("start"))],
            [InlineKeyboardButton(tr.gettext("Report a detention"), callback_data=MENU_REPORT)],
            [InlineKeyboardButton(tr.gettext("Status of my cases"), callback_data=MENU_STATUS)],
            [menu_button(tr)],
            [InlineKeyboardButton(tr.gettext("Language"), callback_data=MENU_LANGUAGE)],
        ]
    )


async def start(update: Update, context: HotlineContext) -> None:
    """Greets the user and shows the main menu (deep links are routed before this runs)."""
    if update.effective_message is None:
        return
    tr = context.tr
    text = tr.gettext(
        "This is the hotline for families of people detained by the occupying authorities.\n\n"
        "Here you can report a detention, learn the status of a case, and hear at once when "
        "something changes. What you tell us is encrypted and seen only by the hotline's staff "
        "unless you allow more."
    )
    text += "\n\n" + tr.gettext(
        "To reach a person at the hotline, just write your message here: it goes to the staff."
    )
    reach = reach_us_lines(context)
    if reach:
        text += "\n" + "\n".join(reach)
    await update.effective_message.reply_text(html.escape(text), reply_markup=main_menu(context))


async def help_command(update: Update, context: HotlineContext) -> None:
    """The commands of the user's role, in their language, and how to reach a person."""
    if update.effective_message is None:
        return
    tr = context.tr
    lines = [tr.gettext("What I can do:")]
    lines += [
        f"/{name}: {tr.gettext(description)}"
        for name, description in commands_of_role(context.profile.role)
    ]
    lines += [
        "",
        tr.gettext(
            "To reach a person at the hotline, just write your message here: it goes to the staff."
        ),
        *reach_us_lines(context),
    ]
    await update.effective_message.reply_text(html.escape("\n".join(lines)))


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(LANGUAGE_NAMES[lang], callback_data=LANGUAGE.bare(lang))]
            for lang in LANGUAGES
        ]
    )


async def language_command(update: Update, context: HotlineContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat  # also for the menu button on a message gone or too old
    if chat is None:
        return
    await chat.send_message(
        context.tr.gettext("Choose your language:"), reply_markup=language_keyboard()
    )


async def set_language_choice(update: Update, context: HotlineContext) -> None:
    query = update.callback_query
    pressed = LANGUAGE.parse(query.data) if query is not None else None
    if query is None or pressed is None:  # routing lets only well-formed presses through
        return
    if pressed.verb == "keep":  # the Crimean Tatar offer declined: nothing is stored
        await query.answer()
        language_name = LANGUAGE_NAMES[context.tr.lang]
        await show(query, context.tr.gettext("Language: {language}").format(language=language_name))
        return
    language = pressed.args[0]
    services = context.services
    async with services.sessions() as session, session.begin():
        await set_language(session, context.profile.id, language)
    context.profile = context.profile.__class__(
        **{**context.profile.__dict__, "language": language}
    )
    await query.answer()
    await show(query, context.tr.gettext("Language changed to English."))
    chat = query.message.chat if query.message is not None else None
    if chat is not None and chat.type == ChatType.PRIVATE:
        # The chat's own menu in the chosen language (Telegram has no language code for crh)
        await publish_chat_commands(
            context.bot, context.tr, chat.id, staff=is_staff(context.profile.role)
        )


async def offer_crimean_tatar(update: object, context: HotlineContext) -> None:
    """On first contact from a Turkish-language Telegram, ask once whether to use Crimean Tatar.

    Only a guess, so nothing is stored unless the user taps Qırımtatarca.
    """
    if not isinstance(update, Update) or update.effective_user is None:
        return
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return
    profile = context.profile
    if not profile.is_new or profile.language is not None:
        return
    if suggested_language(update.effective_user.language_code) != "crh":
        return
    default = context.tr
    crh = context.services.i18n.get("crh")
    texts = dict.fromkeys([crh.gettext(OFFER_CRIMEAN_TATAR), default.gettext(OFFER_CRIMEAN_TATAR)])
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(LANGUAGE_NAMES["crh"], callback_data=LANGUAGE.bare("crh"))],
            [InlineKeyboardButton(LANGUAGE_NAMES[default.lang], callback_data=KEEP_LANGUAGE)],
        ]
    )
    await context.bot.send_message(chat.id, "\n\n".join(texts), reply_markup=keyboard)


async def cancel(update: Update, context: HotlineContext) -> None:
    """Outside any conversation there is nothing to cancel; say so and show the menu."""
    if update.effective_message is None:
        return
    await update.effective_message.reply_text(
        context.tr.gettext("Nothing to cancel."), reply_markup=main_menu(context)
    )


def register(application: HotlineApplication) -> None:
    application.add_handler(TypeHandler(Update, offer_crimean_tatar), group=FIRST_CONTACT_GROUP)
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("language", language_command))
    application.add_handler(
        CallbackQueryHandler(language_command, pattern=MENU.pattern_of("language"))
    )
    application.add_handler(CallbackQueryHandler(set_language_choice, pattern=LANGUAGE.pattern))
    application.add_handler(CommandHandler("cancel", cancel))
    application.add_error_handler(on_error)
