"""Operator-edited YAML files, validated with errors that point at a file and a line.

Operators edit configs and schedules by hand, often at night, often in a hurry. A message
like ``schedule.yaml:14: segments.2.points.0.pause: expected a number, got 'abc'`` lets
them fix the file without reading Python; a traceback does not. So loading keeps PyYAML's
node marks, maps every key path to the line it was written on, and turns each pydantic
error into one such line. All problems are reported together, so one edit round fixes all.

Two YAML 1.1 habits are switched off because they silently change what an operator wrote:
duplicate keys (the later one would win) are errors, and colon-separated digits such as
``8:00`` stay text instead of becoming the base-60 number 480.

Files may also come from outside (a schedule sent on the control topic), so reading is bounded:
only regular files are read (never a FIFO or a device, which would block or never end), at most
`max_bytes` of them, and aliases (``*name``) are refused, since a few hundred bytes of nested
aliases expand to billions of nodes.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)

_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class SourceError(Exception):
    """Every problem found in one source file, each as ``file:line: key.path: message``."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors: list[str] = list(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(self.errors)


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps ``8:00``-style scalars as text (YAML 1.2 behaviour) and refuses
    aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed here; write the value out in full",
                event.start_mark,
            )
        node: yaml.Node | None = super().compose_node(parent, index)
        return node


_Loader.yaml_implicit_resolvers = {
    first: ([(_STR_TAG, _SEXAGESIMAL), *resolvers] if first in "+-0123456789" else list(resolvers))
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class YamlDocument:
    """Plain data from one YAML file, plus the line each key and list item was written on."""

    path: Path
    data: dict[str, Any]
    lines: Mapping[Loc, int]

    def line_of(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest enclosing node when it is absent."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1

    def error(self, loc: Loc, message: str) -> str:
        """One operator-facing error line for the node at ``loc``."""
        return _format(self.path, self.line_of(loc), loc, message)


def load_yaml(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> YamlDocument:
    """Read ``path`` as a YAML mapping; raise SourceError naming the line of any problem."""
    path = Path(path)
    return parse_yaml(_read_regular_file(path, max_bytes), path)


def parse_yaml(raw: bytes, path: Path) -> YamlDocument:
    """YAML from bytes already in hand; ``path`` names it in errors."""
    text = _decode(path, raw)
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is None:
            raise SourceError([f"{path}:1: the file is empty; expected 'key: value' lines"])
        index = _LineIndex(loader, path)
        index.walk(root)
        if index.duplicates:
            raise SourceError(index.duplicates)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise SourceError([_syntax_error(path, exc)]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise SourceError([f"{path}:{line}: {exc.reason} (U+{code:04X}); remove it"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        line = root.start_mark.line + 1
        raise SourceError(
            [f"{path}:{line}: expected 'key: value' lines at the top level, got {describe(data)}"]
        )
    return YamlDocument(path=path, data=data, lines=index.lines)


def validate(
    model: type[ModelT],
    doc: YamlDocument,
    *,
    context: dict[str, Any] | None = None,
    problems: Iterable[tuple[Loc, str]] = (),
) -> ModelT:
    """Validate ``doc`` as ``model``; raise SourceError with every problem, in line order.

    ``problems`` are findings the caller made on the raw data (for example cross
    references) so they are reported together with the model's own errors.
    """
    found = [(doc.line_of(loc), loc, message) for loc, message in problems]
    result: ModelT | None = None
    try:
        result = model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(part for part in error["loc"] if part != "[key]")
            found.append((doc.line_of(loc), loc, _message(model, error)))
    if found or result is None:
        found.sort(key=lambda item: item[0])
        raise SourceError(_format(doc.path, line, loc, message) for line, loc, message in found)
    return result


def load_model(
    path: Path,
    model: type[ModelT],
    *,
    context: dict[str, Any] | None = None,
) -> ModelT:
    """Load and validate one YAML file in one step."""
    return validate(model, load_yaml(path), context=context)


def describe(value: Any) -> str:
    """A short operator-readable rendering of a YAML value, for error messages."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return repr(shown)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of a regular file; anything else is refused without reading it."""
    try:
        # O_NONBLOCK: a FIFO swapped in after the check below still cannot block the read.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SourceError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise SourceError([f"{path}: is a directory, expected a YAML file"]) from None
    except OSError as exc:
        raise SourceError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if stat.S_ISDIR(status.st_mode):
            raise SourceError([f"{path}: is a directory, expected a YAML file"])
        if not stat.S_ISREG(status.st_mode):
            raise SourceError([f"{path}: not a regular file, expected a YAML file"])
        if status.st_size > max_bytes:
            raise SourceError([f"{path}: {status.st_size} bytes, more than {max_bytes} allowed"])
        try:
            raw = file.read(max_bytes + 1)
        except OSError as exc:
            raise SourceError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > max_bytes:
        raise SourceError([f"{path}: more than {max_bytes} bytes allowed"])
    return raw


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start]
        raise SourceError(
            [
                f"{path}:{line}: not valid UTF-8 (byte 0x{byte:02x} at column {column}); "
                "save the file with UTF-8 encoding"
            ]
        ) from None


class _LineIndex:
    """One walk over the composed nodes: the line of every key path, and duplicate keys."""

    def __init__(self, loader: _Loader, path: Path) -> None:
        self._loader = loader
        self._path = path
        self.lines: dict[Loc, int] = {}
        self.duplicates: list[str] = []

    def walk(self, node: yaml.Node, loc: Loc = (), ancestors: frozenset[int] = frozenset()) -> None:
        if id(node) in ancestors:
            return
        ancestors = ancestors | {id(node)}
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                self.walk(item, (*loc, index), ancestors)
        elif isinstance(node, yaml.MappingNode):
            self._walk_mapping(node, loc, ancestors)

    def _walk_mapping(self, node: yaml.MappingNode, loc: Loc, ancestors: frozenset[int]) -> None:
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self._loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_seen:
                message = f"duplicate key (first on line {first_seen[key]})"
                self.duplicates.append(_format(self._path, line, (*loc, key), message))
                continue
            first_seen[key] = line
            self.lines[(*loc, key)] = line
            self.walk(value_node, (*loc, key), ancestors)


def _syntax_error(path: Path, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    problem = exc.problem or exc.context or "invalid YAML"
    message = f"{path}:{line}: YAML syntax error: {problem}"
    if exc.context and exc.problem:
        started = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{started})"
    if "\\t" in problem or "\t" in problem:
        message += "; indent with spaces, not tabs"
    return message


def _format(path: Path, line: int, loc: Loc, message: str) -> str:
    if not loc:
        return f"{path}:{line}: {message}"
    return f"{path}:{line}: {'.'.join(str(part) for part in loc)}: {message}"


_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "text",
    "str": "text",
    "dict": "a mapping of keys",
    "model": "a mapping of keys",
    "model_attributes": "a mapping of keys",
    "list": "a list",
    "tuple": "a list",
    "path": "a file path",
    "time": "a time of day",
}

_BOUNDS = {
    "greater_than_equal": "at least {ge}",
    "greater_than": "more than {gt}",
    "less_than_equal": "at most {le}",
    "less_than": "less than {lt}",
}


def _message(model: type[BaseModel], error: Mapping[str, Any]) -> str:
    """Reword one pydantic error for an operator."""
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key" + _suggestion(model, tuple(error["loc"]))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "int_from_float":
        return f"expected a whole number, got {describe(value)}"
    if kind == "literal_error":
        return f"expected one of {ctx['expected']}, got {describe(value)}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind].format(**ctx)}, got {describe(value)}"
    if kind == "finite_number":
        return f"expected a finite number, got {describe(value)}"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} items"
    for suffix in ("_parsing", "_type"):
        expected = _TYPE_WORDS.get(kind.removesuffix(suffix)) if kind.endswith(suffix) else None
        if expected:
            quotable = isinstance(value, bool | int | float)
            hint = " (put it in quotes)" if expected == "text" and quotable else ""
            return f"expected {expected}, got {describe(value)}{hint}"
    return str(error["msg"])


def _suggestion(model: type[BaseModel], loc: Loc) -> str:
    """' (did you mean 'fps'?)' when the unknown key looks like a misspelled known one."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    known = [key for key in _known_keys(model, loc[:-1]) if key != loc[-1]]
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model``, if any."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = [arg for arg in get_args(annotation) if arg is not Ellipsis]
            if not args:
                return []
            annotation = args[-1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to the underlying type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
