"""Strict YAML: every scalar stays the text that was written, duplicate keys are errors.

PyYAML's default resolvers turn ``NO`` into False, ``09:30`` into 570 and ``2026-12-01`` into a
date, and keep the last of two duplicate keys. Here we compose the node tree and build values
ourselves: plain ``null``/``~``/empty become None, everything else is a string, and typed fields
are converted by the pydantic schemas that read the result. Anchors, aliases and merge keys are
refused (they add nothing to a manifest and allow "billion laughs" expansion).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from publisher.models import Problem

Loc = tuple[str | int, ...]
_NULLS = {"", "~", "null", "Null", "NULL"}
_STANDARD_TAGS = {"str", "int", "float", "bool", "null", "seq", "map", "timestamp"}


class YamlDocument:
    """A parsed file: ``data`` and the line of each value by its path, for error messages."""

    def __init__(self, path: Path, data: Any, lines: dict[Loc, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line(self, loc: Loc) -> int | None:
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)


def load_yaml(path: Path, what: str) -> tuple[YamlDocument | None, list[Problem]]:
    """Read ``path`` strictly. Returns the document (None if unreadable) and the problems found."""
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.y*ml"))[:3]
        hint = f" such as {path / inside[0]}" if inside else ""
        return None, [Problem(str(path), "", f"this is a folder, not the {what} file",
                              f"give the path of the file inside it{hint}")]
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(str(path), "", f"{what} not found", "create it, or pass the right path")]
    except OSError as exc:
        return None, [Problem(str(path), "", f"cannot read {what}: {exc.strerror}", "check permissions")]
    if len(raw) > 1_000_000:
        return None, [Problem(str(path), "", f"{what} is larger than 1 MB", "is this the right file?")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), "", f"not UTF-8 text (byte {exc.start})",
                              "save the file as UTF-8")]
    try:
        node = yaml.compose(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        fix = "fix the syntax"
        if reason.startswith("mapping values are not allowed"):
            fix = ('a colon followed by a space inside a text starts a new key: put the whole text in '
                   'double quotes, e.g. en: "Travel safely: know before you go"')
        return None, [Problem(str(path), "", f"not valid YAML: {reason}", fix, line)]
    except RecursionError:
        return None, [Problem(str(path), "", "nested too deeply", "flatten the structure")]
    except ValueError as exc:  # PyYAML lets an out-of-range escape such as "\U00aaaaaa" through
        return None, [Problem(str(path), "", f"not valid YAML: {exc}",
                              "fix the escape sequence (\\x, \\u or \\U) in a double-quoted string")]
    problems: list[Problem] = []
    lines: dict[Loc, int] = {}
    if node is None:
        return YamlDocument(path, {}, lines), problems
    builder = _Builder(path, lines, problems)
    try:
        data = builder.build(node, ())
    except RecursionError:
        return None, [Problem(str(path), "", "nested too deeply", "flatten the structure")]
    return YamlDocument(path, data, lines), problems


class _Builder:
    def __init__(self, path: Path, lines: dict[Loc, int], problems: list[Problem]) -> None:
        self.path = path
        self.lines = lines
        self.problems = problems
        self.seen: set[int] = set()

    def _problem(self, loc: Loc, node: yaml.Node, message: str, fix: str) -> None:
        self.problems.append(Problem(str(self.path), dotted(loc), message, fix, node.start_mark.line + 1))

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        if id(node) in self.seen:
            self._problem(loc, node, "anchors and aliases (&, *) are not supported", "write the value out")
            return None
        self.seen.add(id(node))
        standard = node.tag.removeprefix("tag:yaml.org,2002:") in _STANDARD_TAGS
        if node.tag != "!" and not standard:
            self._problem(loc, node, f"YAML tag {node.tag} is not supported", "remove the tag")
            return None
        if isinstance(node, yaml.ScalarNode):
            if node.style is None and node.value in _NULLS:
                return None
            if any("\ud800" <= c <= "\udfff" for c in node.value):
                self._problem(loc, node, "contains a lone surrogate (\\uD800-\\uDFFF), which is not text",
                              "remove the escape sequence")
                return ""
            return node.value
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(loc, key_node, "a key must be plain text", "use a simple key")
                    continue
                key = key_node.value
                if key == "<<":
                    self._problem(loc, key_node, "merge keys (<<) are not supported", "write the keys out")
                    continue
                if key in result:
                    first = self.lines.get((*loc, key))
                    self._problem((*loc, key), key_node,
                                  f"duplicate key '{key}' (first on line {first})",
                                  "keep one of them")
                    continue
                result[key] = self.build(value_node, (*loc, key))
            return result
        return None  # pragma: no cover - yaml has no other node kinds


def dotted(loc: Loc) -> str:
    """``("title", "en")`` -> ``title.en``; ``("tags", 2)`` -> ``tags[2]``."""
    out = ""
    for part in loc:
        if isinstance(part, str) and "://" in part:  # a URL written as a key may carry a token
            part = part.split("://", 1)[0] + "://…"
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_problems(doc: YamlDocument, exc: Exception) -> list[Problem]:
    """Turn a pydantic ValidationError into Problems with file, line and field."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return [Problem(str(doc.path), "", str(exc), "")]
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            msg, fix = "unknown key", "remove it or check its spelling"
        elif kind == "missing":
            msg, fix = "required key is missing", "add it"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            fix = _FIXES.get(kind, "correct the value")
        out.append(Problem(str(doc.path), dotted(loc), msg, fix, doc.line(loc)))
    return out


_FIXES = {
    "string_type": "quote the value as text",
    "list_type": "write a list, e.g. [a, b]",
    "dict_type": "write a mapping of keys to values",
    "int_parsing": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "string_pattern_mismatch": "use only the allowed characters",
}
