"""Sensitive-word lists: plain UTF-8 text files that operators edit by hand.

One word or phrase per line; ``#`` starts a comment (a whole line or the rest of a line);
blank lines are ignored. A Chinese word is matched as written (through spacing, symbols,
inserted letters or digits, look-alike letters, traditional characters) and as typed in
pinyin ("du bo", "du3bo2"). Three prefixes change that:

- ``~`` also matches it written with *other characters of the same sound* ("~赌博" catches
  堵博). Only for words whose sound-alikes are a known evasion: homophones of most words are
  ordinary words (约跑 sounds like 约炮), so this is never the default.
- ``=`` matches it by its spelling only, never by sound, not even typed pinyin ("=大麻",
  whose sound da ma is also 大妈).
- ``!`` marks an exemption, an innocent word that contains or sounds like a listed one
  ("!读博" keeps "我在读博" from matching ~赌博 by sound).

A line ``%context any`` or ``%context quoted`` says what the context rule (context.py) may
read around the words listed after it, until the next such line: ``any`` lets a word through
when its speaker opposes, reports, suffers or asks about it (远离毒品, 老板让我开假发票怎么办);
``quoted`` only when it is quoted as what someone was called (他骂我傻逼), for insults, which
no opposing word excuses (别他妈的……). ``%context none``, the default, keeps every mention
refused: a platform's list is enforced as it was handed out.

Problems are reported with the file and line, so the operator can fix the list without
reading code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from anchor.moderation.folding import skeleton


class ModerationError(Exception):
    """A word list cannot be used; the message names the file (and the line when there is one)."""


class Context(enum.Enum):
    """What the context rule may read around a listed word (the list's ``%context`` line)."""

    NONE = "none"  # every mention is refused
    ANY = "any"  # opposed, reported, suffered or asked about: let through
    QUOTED = "quoted"  # an insult: let through only when quoted as what someone was called


@dataclass(frozen=True, slots=True)
class ListedWord:
    """One line of a word list."""

    text: str  # as the operator wrote it (without the prefix)
    exempt: bool
    where: str  # "path:line", for messages
    by_sound: bool = True  # typed pinyin matches it (not for "=word")
    by_homophone: bool = False  # other Han characters of the same sound match it ("~word")
    context: Context = Context.NONE


def read_wordlist(path: Path) -> list[ListedWord]:
    """Parse one list; raise ModerationError for a missing file, bad bytes or an empty word."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModerationError(f"{path}: cannot read word list: {exc.strerror or exc}") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ModerationError(
            f"{path}:{row}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {column});"
            " save the file as UTF-8"
        ) from None
    words: list[ListedWord] = []
    context = Context.NONE
    for number, line in enumerate(content.splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("%"):
            context = _directive(text, f"{path}:{number}")
            continue
        prefix = text[0] if text[0] in "!=~" else ""
        text = text[len(prefix) :].strip()
        if not skeleton(text):
            raise ModerationError(
                f"{path}:{number}: {line.strip()!r} has no letters or digits to match"
            )
        words.append(
            ListedWord(
                text,
                exempt=prefix == "!",
                where=f"{path}:{number}",
                by_sound=prefix != "=",
                by_homophone=prefix == "~",
                context=context,
            )
        )
    return words


def _directive(text: str, where: str) -> Context:
    """The context a ``%context <value>`` line sets."""
    name, _, value = " ".join(text[1:].split()).partition(" ")
    if name != "context":
        raise ModerationError(f"{where}: unknown directive {text!r}; the one there is: %context")
    try:
        return Context(value)
    except ValueError:
        values = ", ".join(context.value for context in Context)
        raise ModerationError(f"{where}: {text!r}: %context takes one of {values}") from None
