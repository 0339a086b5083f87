"""Telegram Bot API validation rules used by the fake server in ``telegram_api``.

Pure functions, no I/O: the HTML parse mode (a port of tdlib's ``parse_html``, same error
texts), text trimming and length counting in UTF-16 units (the unit of entity offsets),
bot-command entities in user text, inline keyboards, bot command lists and photo checks.
Every refusal raises :class:`ApiError` carrying the exact ``description`` Telegram sends.
"""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image, UnidentifiedImageError

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_CALLBACK_DATA = 64
MAX_COMMANDS = 100


class ApiError(Exception):
    """A Bot API refusal: HTTP status = ``code``, body = ``{"ok": false, ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def fake_unsupported(what: str) -> ApiError:
    """Something real Telegram may accept but this fake does not model: refuse loudly."""
    return ApiError(400, f"Bad Request: [fake] {what} is not supported by the fake Telegram server")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- HTML parse mode
_SPACE = frozenset(" \t\r\n\0\v\f")
_TAGS = frozenset(
    "a b strong i em s strike del u ins tg-spoiler tg-emoji span pre code blockquote".split()
)
_SIMPLE = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
           "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
           "del": "strikethrough", "tg-spoiler": "spoiler"}
_LINK = re.compile(r"^(?:(?:https?|tg|ton)://\S+|[\w-]+(?:\.[\w-]+)+(?:[/?#]\S*)?)$", re.IGNORECASE)


def _decode_entity(s: str, pos: int) -> tuple[int, int]:
    """tdlib ``decode_html_entity``: (code point or 0, position after the reference)."""
    end = pos + 1
    res = 0
    if s[end] == "#":
        end += 1
        if s[end] == "x":
            end += 1
            while s[end] in "0123456789abcdefABCDEF" and s[end] != "\0":
                res = res * 16 + int(s[end], 16)
                end += 1
                if res >= 0x10FFFF:
                    return 0, pos
        else:
            while s[end].isascii() and s[end].isdigit():
                res = res * 10 + int(s[end])
                end += 1
                if res >= 0x10FFFF:
                    return 0, pos
        if res == 0 or end - pos >= 10:
            return 0, pos
    else:
        while s[end].isascii() and s[end].isalpha():
            end += 1
        res = {"lt": 60, "gt": 62, "amp": 38, "quot": 34}.get(s[pos + 1:end], 0)
        if not res:
            return 0, pos
    return res, end + 1 if s[end] == ";" else end


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode. Returns (plain text, entities) or raises ``can't parse entities``."""
    s = source + "\0"  # C-string sentinel, as tdlib reads one past the end
    n = len(source)
    out: list[str] = []
    off = 0  # UTF-16 offset in the output
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf16 offset, output index
    entities: list[dict[str, Any]] = []

    def fail(message: str) -> ApiError:
        return bad(f"can't parse entities: {message}")

    def byte(i: int) -> int:
        return len(source[:i].encode("utf-8"))

    i = 0
    while i < n:
        c = s[i]
        if c == "&":
            code, after = _decode_entity(s, i)
            if code:
                out.append(chr(code))
                off += 2 if code > 0xFFFF else 1
                i = after
                continue
        if c != "<":
            out.append(c)
            off += 2 if ord(c) > 0xFFFF else 1
            i += 1
            continue
        begin = i
        i += 1
        if s[i] != "/":
            while s[i] not in _SPACE and s[i] != ">":
                i += 1
            if i >= n:
                raise fail(f"Unclosed start tag at byte offset {byte(begin)}")
            tag = source[begin + 1:i].lower()
            if tag not in _TAGS:
                raise fail(f'Unsupported start tag "{tag}" at byte offset {byte(begin)}')
            argument = ""
            while s[i] != ">":
                while i < n and s[i] in _SPACE:
                    i += 1
                if s[i] == ">":
                    break
                attr_begin = i
                while s[i] not in _SPACE and s[i] not in "=>":
                    i += 1
                attr = source[attr_begin:i]
                if not attr:
                    raise fail(f'Empty attribute name in the tag "{tag}" at byte offset {byte(begin)}')
                while i < n and s[i] in _SPACE:
                    i += 1
                if tag == "blockquote" and attr == "expandable" and s[i] != "=":
                    argument = "expandable"
                    continue
                if s[i] != "=":
                    raise fail(f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                               f"at byte offset {byte(begin)}")
                i += 1
                while i < n and s[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise fail(f'Unclosed start tag "{tag}" at byte offset {byte(begin)}')
                if s[i] not in "'\"":
                    token_begin = i
                    while (s[i].isascii() and s[i].isalnum()) or s[i] in ".-":
                        i += 1
                    value = source[token_begin:i].lower()
                    if s[i] not in _SPACE and s[i] != ">":
                        raise fail(f"Unexpected end of name token at byte offset {byte(token_begin)}")
                else:
                    quote = s[i]
                    i += 1
                    chars: list[str] = []
                    while s[i] != quote and i < n:
                        if s[i] == "&":
                            code, after = _decode_entity(s, i)
                            if code:
                                chars.append(chr(code))
                                i = after
                                continue
                        chars.append(s[i])
                        i += 1
                    if s[i] == quote:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise fail(f"Unclosed start tag at byte offset {byte(begin)}")
                if tag == "a" and attr == "href":
                    argument = value
                elif tag == "code" and attr == "class" and value.startswith("language-"):
                    argument = value[9:]
                elif tag == "span" and attr == "class" and value.startswith("tg-"):
                    argument = value[3:]
                elif tag == "tg-emoji" and attr == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise fail(f'Tag "span" must have class "tg-spoiler" at byte offset {byte(begin)}')
            stack.append((tag, argument, off, len(out)))
            i += 1
            continue
        # end tag
        if not stack:
            raise fail(f"Unexpected end tag at byte offset {byte(begin)}")
        while s[i] not in _SPACE and s[i] != ">":
            i += 1
        end_tag = source[begin + 2:i].lower()
        while i < n and s[i] in _SPACE:
            i += 1
        if s[i] != ">":
            raise fail(f"Unclosed end tag at byte offset {byte(begin)}")
        tag, argument, start, out_index = stack.pop()
        if end_tag and end_tag != tag:
            raise fail(f'Unmatched end tag at byte offset {byte(begin)}, expected "</{tag}>", found "</{end_tag}>"')
        if off > start:
            entity: dict[str, Any] = {"offset": start, "length": off - start}
            if tag in _SIMPLE or tag == "span":
                entity["type"] = _SIMPLE.get(tag, "spoiler")
            elif tag == "tg-emoji":
                if not argument.isdigit() or int(argument) == 0:
                    raise bad("Invalid custom emoji identifier specified")
                entity.update(type="custom_emoji", custom_emoji_id=argument)
            elif tag == "a":
                url = argument or "".join(out[out_index:])
                if _LINK.match(url):
                    entity.update(type="text_link", url=url if "://" in url else f"http://{url}/")
                else:
                    entity = {}
            elif tag == "blockquote":
                entity["type"] = "expandable_blockquote" if argument else "blockquote"
            elif tag == "pre":
                last = entities[-1] if entities else None
                if last and last["type"] == "code" and last.get("language") and \
                        (last["offset"], last["length"]) == (start, off - start):
                    last["type"] = "pre"
                    entity = {}
                else:
                    entity["type"] = "pre"
            else:  # code
                last = entities[-1] if entities else None
                if last and last["type"] == "pre" and argument and \
                        (last["offset"], last["length"]) == (start, off - start):
                    last["language"] = argument
                    entity = {}
                else:
                    entity["type"] = "code"
                    if argument:
                        entity["language"] = argument
            if entity:
                entities.append(entity)
        i += 1
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def formatted(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """Apply ``parse_mode`` / explicit ``entities`` then trim surrounding whitespace, as Telegram does."""
    if parse_mode:
        if entities:
            raise fake_unsupported("parse_mode together with explicit entities")
        mode = parse_mode.lower()
        if mode == "html":
            text, ents = parse_html(text)
        elif mode in ("markdown", "markdownv2"):
            raise fake_unsupported(f"parse_mode {parse_mode}")
        else:
            raise bad("unsupported parse_mode")
    elif entities is None:
        ents = []
    else:
        size = utf16_len(text)
        if not isinstance(entities, list) or not all(
                isinstance(e, dict) and isinstance(e.get("type"), str) and isinstance(e.get("offset"), int)
                and isinstance(e.get("length"), int) and e["offset"] >= 0 and e["length"] > 0
                and e["offset"] + e["length"] <= size for e in entities):
            raise fake_unsupported("entities that are malformed or out of the text's bounds")
        ents = [dict(e) for e in entities]
    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    lead16, size16 = utf16_len(text[:lead]), utf16_len(stripped)
    kept = []
    for e in ents:
        start = max(0, e["offset"] - lead16)
        end = min(size16, e["offset"] + e["length"] - lead16)
        if end > start:
            kept.append({**e, "offset": start, "length": end - start})
    return stripped, kept


# --------------------------------------------------------------------------- user text
_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32}|(?!@))(?![\w/<>])")


def command_entities(text: str) -> list[dict[str, Any]]:
    """``bot_command`` entities Telegram attaches to a user's message (``/cmd`` or ``/cmd@bot``)."""
    return [{"type": "bot_command", "offset": utf16_len(text[:m.start()]),
             "length": utf16_len(m.group(0))} for m in _COMMAND.finditer(text)]


# --------------------------------------------------------------------------- keyboards
def inline_keyboard(markup: Any) -> dict[str, Any] | None:
    """Validate an InlineKeyboardMarkup; returns its normalized form (None = no keyboard)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            raise fake_unsupported("reply keyboards (only inline_keyboard)")
        raise bad("can't parse reply keyboard markup JSON object")
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad("can't parse inline keyboard button: field \"inline_keyboard\" must be an Array of Arrays")
    out_rows: list[list[dict[str, str]]] = []
    for row in rows:
        out_row: list[dict[str, str]] = []
        for button in row:
            if not isinstance(button, dict):
                raise bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            text = button.get("text")
            if not isinstance(text, str) or not text.strip():
                raise bad("can't parse inline keyboard button: Text must be non-empty")
            kinds = set(button) - {"text"}
            if not kinds:
                raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            if kinds == {"callback_data"}:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                    raise bad("BUTTON_DATA_INVALID")
                out_row.append({"text": text, "callback_data": data})
            elif kinds == {"url"}:
                if not isinstance(button["url"], str) or not _LINK.match(button["url"]):
                    raise bad("BUTTON_URL_INVALID")
                out_row.append({"text": text, "url": button["url"]})
            else:
                raise fake_unsupported(f"inline button fields {sorted(kinds)}")
        if out_row:
            out_rows.append(out_row)
    return {"inline_keyboard": out_rows} if out_rows else None


# --------------------------------------------------------------------------- bot commands
_LANG = re.compile(r"^[a-z]{2}$")
_SCOPES = {"default": (), "all_private_chats": (), "all_group_chats": (), "all_chat_administrators": (),
           "chat": ("chat_id",), "chat_administrators": ("chat_id",), "chat_member": ("chat_id", "user_id")}


def language_code(code: str | None) -> str:
    if code and not _LANG.match(code):
        raise bad("invalid language code specified")
    return code or ""


def command_scope(scope: Any) -> dict[str, Any]:
    if scope is None:
        return {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
        raise bad("unsupported bot command scope type")  # wording unverified
    keys = _SCOPES[scope["type"]]
    for key in keys:
        if key not in scope:
            raise bad(f'field "{key}" must be present in the bot command scope')  # wording unverified
    return {"type": scope["type"], **{k: scope[k] for k in keys}}


def bot_commands(commands: Any) -> list[dict[str, str]]:
    """tdlib ``set_commands`` checks (trim, leading '/', lengths) then the server's charset rule."""
    if not isinstance(commands, list):
        raise bad("can't parse commands JSON object")
    if len(commands) > MAX_COMMANDS:
        raise bad("BOT_COMMANDS_TOO_MUCH")
    out = []
    for item in commands:
        if not isinstance(item, dict) or not isinstance(item.get("command"), str) \
                or not isinstance(item.get("description"), str):
            raise bad("can't parse BotCommand")  # wording unverified
        command = item["command"].strip()
        command = command[1:] if command.startswith("/") else command
        description = item["description"].strip()
        if not command:
            raise bad("command must be non-empty")
        if len(command) > 32:
            raise bad("command length must not exceed 32")
        if not description:
            raise bad("command description must be non-empty")
        if len(description) > 256:
            raise bad("command description length must not exceed 256")
        if not re.fullmatch(r"[a-z0-9_]+", command):
            raise bad("BOT_COMMAND_INVALID")
        out.append({"command": command, "description": description})
    return out


# --------------------------------------------------------------------------- photos
def inspect_photo(data: bytes) -> tuple[int, int]:
    """Decode the image header with Pillow and apply sendPhoto's documented limits."""
    if not data:
        raise bad("file must be non-empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise bad("PHOTO_SAVE_FILE_INVALID")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.format not in ("JPEG", "PNG", "WEBP", "GIF", "BMP"):
                raise bad("IMAGE_PROCESS_FAILED")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise bad("IMAGE_PROCESS_FAILED") from exc
    if width <= 0 or height <= 0 or width + height > 10000 or max(width, height) > 20 * min(width, height):
        raise bad("PHOTO_INVALID_DIMENSIONS")
    return width, height


def photo_sizes(width: int, height: int, file_size: int) -> list[tuple[int, int, int]]:
    """The (width, height, approx. size) thumbnails Telegram returns, smallest first (s, m, x, y, w)."""
    longest = max(width, height)
    out: list[tuple[int, int, int]] = []
    for limit in (90, 320, 800, 1280, 2560):
        scale = min(1.0, limit / longest)
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        out.append((w, h, max(1, round(file_size * scale * scale))))
        if longest <= limit:
            break
    return out
