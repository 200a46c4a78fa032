"""Adding or changing one knowledge-base entry from the console, keeping the file's comments.

The file is edited as text: a changed entry's block (from its `- id:` line to the next entry)
is replaced, a new one is appended. The result is checked by the same loader that airs it, in
a file beside the real one, and only a valid result replaces the file (atomically, the old one
kept as `.bak`). The running channel then reloads it as it does after any edit."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from anchor.answers.knowledge import KnowledgeBase, KnowledgeError

MAX_FIELD_CHARS = 2000
MAX_ALTERNATES = 30
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ENTRY = re.compile(r"^(\s*)- id:\s*(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class EntryForm:
    id: str
    question: str
    answer: str
    alternates: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        found = []
        if not _ID.fullmatch(self.id):
            found.append("id: lowercase letters, digits, - or _ (at most 64)")
        if not self.question.strip():
            found.append("question: must not be empty")
        if not self.answer.strip():
            found.append("answer: must not be empty")
        for name, value in (("question", self.question), ("answer", self.answer)):
            if len(value) > MAX_FIELD_CHARS:
                found.append(f"{name}: at most {MAX_FIELD_CHARS} characters")
        if len(self.alternates) > MAX_ALTERNATES:
            found.append(f"alternates: at most {MAX_ALTERNATES}")
        return found

    def block(self, indent: str) -> list[str]:
        def quoted(text: str) -> str:
            return json.dumps(" ".join(text.split()), ensure_ascii=False)

        inner = indent + "  "
        lines = [f"{indent}- id: {self.id}", f"{inner}question: {quoted(self.question)}"]
        if self.alternates:
            lines.append(f"{inner}alternates: [{', '.join(map(quoted, self.alternates))}]")
        lines.append(f"{inner}answer: {quoted(self.answer)}")
        if self.tags:
            lines.append(f"{inner}tags: [{', '.join(map(quoted, self.tags))}]")
        return lines


def edited_text(text: str, form: EntryForm) -> str:
    """The file's text with `form` in place of its entry, or appended when it is new."""
    lines = text.splitlines()
    start = end = None
    indent = "  "
    for number, line in enumerate(lines):
        match = _ENTRY.match(line)
        if match:
            indent = match.group(1)
            if start is not None and end is None:
                end = number
            if match.group(2).strip("'\"") == form.id:
                start = number
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join([*lines, "", *form.block(indent)]) + "\n"
    if end is None:
        end = len(lines)
    while end > start + 1 and (
        not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")
    ):
        end -= 1
    return "\n".join([*lines[:start], *form.block(indent), *lines[end:]]) + "\n"


def _between_entries(line: str) -> bool:
    """Blank lines and comments before the next entry belong to it, not to this one."""
    return not line.strip() or line.lstrip().startswith("#")


def save_entry(path: Path, form: EntryForm) -> list[str]:
    """Write `form` into the knowledge base at `path`; the problems found (empty: saved).

    Blocking (reads, indexes and writes the file): call it off the event loop."""
    problems = form.problems()
    if problems:
        return problems
    text = edited_text(path.read_text(encoding="utf-8"), form)
    trial = path.with_name(f".{path.name}.console-check.yaml")
    trial.write_text(text, encoding="utf-8")
    try:
        KnowledgeBase.load(trial)
    except KnowledgeError as exc:
        trial.unlink(missing_ok=True)
        return [_relative(err, trial, path) for err in exc.errors]
    backup = path.with_name(path.name + ".bak")
    backup.write_bytes(path.read_bytes())
    os.replace(trial, path)
    return []


def _relative(error: str, trial: Path, path: Path) -> str:
    return error.replace(str(trial), path.name).replace(trial.name, path.name)
