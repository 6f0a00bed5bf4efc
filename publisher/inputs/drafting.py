"""Machine drafts of one Chinese script from the other (``publisher draft``): OpenCC with Hong Kong
phrasing (``hk2s`` to Simplified, ``s2hk`` to Traditional) fills the missing title, description
and tags and writes caption files, for a person to review.

The manifest is edited round-trip (ruamel.yaml keeps its comments and order) and each drafted
value carries a comment saying so. Caption files keep every line but cue text exactly as it was
(timings, cue names, settings, notes); cue text is converted as data, so backslashes, braces and
tags survive. Nothing that exists is overwritten without ``force``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher.errors import InputError
from publisher.inputs.captions import MAX_BYTES
from publisher.inputs.cues import TIMING, parse, split_lines
from publisher.models import Problem

#: target language -> (source language, OpenCC configuration)
DIRECTIONS = {"zh-Hans": ("zh-Hant", "hk2s"), "zh-Hant": ("zh-Hans", "s2hk")}
TEXT_FIELDS = ("title", "description")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Drafted:
    """One value written: ``key`` as the content is named elsewhere (``title.zh-Hans``,
    ``captions.zh-Hans``, ``tags.<tag>``), the text it was drafted from and the draft."""

    key: str
    source: str
    text: str
    path: Path | None = None  # the caption file written

    @property
    def sha256(self) -> str:
        """Of the text (a caption file's bytes are its UTF-8 text)."""
        return digest(self.text)


@dataclass
class DraftResult:
    release_id: str
    manifest: Path
    source: str  # the source language
    target: str
    config: str  # the OpenCC configuration
    written: list[Drafted] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what exists and was left alone (no --force)

    @property
    def how(self) -> str:
        return f"{self.source} (OpenCC {self.config})"


def draft(manifest: Path, target: str, *, force: bool = False) -> DraftResult:
    """Fill ``target``'s missing texts and captions from the other script; returns what was
    written. Bad input (no source text, a path outside the manifest's folder) changes nothing."""
    if target not in DIRECTIONS:
        raise InputError(Problem("", "--to", f"cannot draft '{target}'",
                                 f"use --to {' or --to '.join(DIRECTIONS)}"))
    source, config = DIRECTIONS[target]
    manifest = Path(os.path.abspath(manifest))
    yaml, doc = _load(manifest)
    import opencc

    convert = opencc.OpenCC(config).convert
    if not isinstance(doc.get("id"), str):
        raise InputError(Problem(str(manifest), "id", "the manifest has no id",
                                 "give the release its id first (run `publisher check` on it)"))
    result = DraftResult(doc["id"], manifest, source, target, config)
    note = f"machine draft from {source} (OpenCC {config}); review it"
    for name in TEXT_FIELDS:
        _fill_text(doc, name, result, convert, note, force)
    _fill_tags(doc, result, convert, note)
    caption = _caption(doc, manifest, result, convert, force)
    if caption is not None:
        _insert(doc["captions"], source, target, str(caption[1]), note)
    languages = doc.get("languages")
    if result.written and isinstance(languages, list) and target not in languages:
        languages.append(target)
    if caption is not None:  # the file first: a manifest never names a caption file not written
        _write(caption[0], caption[2], exclusive=not force, like=caption[3])
    if result.written:
        out = io.StringIO()
        yaml.dump(doc, out)
        _write(manifest, out.getvalue(), exclusive=False)
    return result


def _load(manifest: Path) -> tuple[Any, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if manifest.is_dir():
        raise InputError(Problem(str(manifest), "", "this is a folder, not a manifest",
                                 "give the release's YAML file, e.g. release.yaml"))
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # long descriptions stay on one line, as written
    try:
        doc = yaml.load(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise InputError(Problem(str(manifest), "", f"cannot read the manifest: {exc}",
                                 "run `publisher check` on it and fix what it says")) from None
    if not isinstance(doc, dict):
        raise InputError(Problem(str(manifest), "", "the manifest is not a mapping of fields",
                                 "run `publisher check` on it and fix what it says"))
    return yaml, doc


def _insert(mapping: Any, after: str, key: str, value: Any, note: str) -> None:
    """``mapping[key] = value`` placed after ``after``, with a comment."""
    if key in mapping:
        mapping[key] = value
    else:
        mapping.insert(list(mapping).index(after) + 1 if after in mapping else len(mapping), key, value)
    if "\n" in str(value):  # after a block scalar an end-of-line comment would land below it
        mapping.yaml_set_comment_before_after_key(key, before=note, indent=_indent(mapping, after))
    else:
        mapping.yaml_add_eol_comment(note, key)


def _indent(mapping: Any, key: str) -> int:
    """The column of ``key`` in the file (block mappings indent their keys alike)."""
    try:
        return int(mapping.lc.key(key)[1])
    except (KeyError, TypeError, AttributeError):
        return 0


def _fill_text(doc: Any, name: str, result: DraftResult, convert: Any, note: str, force: bool) -> None:
    from ruamel.yaml.scalarstring import LiteralScalarString

    values = doc.get(name)
    src, dst = result.source, result.target
    if not isinstance(values, dict) or not isinstance(values.get(src), str):
        if name == "title":
            raise InputError(Problem(str(result.manifest), f"title.{src}", f"no {src} title to draft from",
                                     f"write the {src} title first"))
        return
    if isinstance(values.get(dst), str) and values[dst].strip() and not force:
        result.kept.append(f"{name}.{dst}")
        return
    text = convert(values[src])
    shown = LiteralScalarString(text) if isinstance(values[src], LiteralScalarString) else text
    _insert(values, src, dst, shown, note)
    result.written.append(Drafted(f"{name}.{dst}", str(values[src]), text))


def _fill_tags(doc: Any, result: DraftResult, convert: Any, note: str) -> None:
    """Tags are shared by every language: a tag written in the source script gets its other form."""
    from ruamel.yaml.comments import CommentedSeq

    tags = doc.get("tags")
    if not isinstance(tags, CommentedSeq):
        return
    for tag in [t for t in tags if isinstance(t, str)]:
        other = convert(tag)
        if other != tag and other not in tags:
            tags.fa.set_block_style()  # a flow list cannot carry a comment per item
            tags.append(other)
            tags.yaml_add_eol_comment(note, len(tags) - 1)
            result.written.append(Drafted(f"tags.{other}", tag, other))


def _caption(doc: Any, manifest: Path, result: DraftResult, convert: Any,
             force: bool) -> tuple[Path, str, str, Path] | None:
    """The caption file to write (path, the name to put in the manifest, its text, the file it
    is drafted from), its draft recorded in ``result``; None when there is none to draft or it
    exists."""
    captions = doc.get("captions")
    src, dst = result.source, result.target
    if not isinstance(captions, dict) or not isinstance(captions.get(src), str):
        return None
    root = manifest.parent
    given = captions.get(dst)
    name = str(given) if isinstance(given, str) else _sibling(str(captions[src]), src, dst)
    from_path, to_path = (_inside(root, value, f"captions.{lang}", manifest)
                          for value, lang in ((str(captions[src]), src), (name, dst)))
    if to_path.is_dir():
        raise InputError(Problem(str(manifest), f"captions.{dst}", f"'{name}' is a folder",
                                 f"name a caption file, e.g. {_sibling(str(captions[src]), src, dst)}"))
    if (to_path.exists() or to_path.is_symlink()) and not force:
        result.kept.append(f"captions.{dst} ({name})")
        return None
    if to_path.exists() and not to_path.is_symlink() and to_path.samefile(from_path):
        raise InputError(Problem(str(manifest), f"captions.{dst}", f"'{name}' is the {src} caption file "
                                 "itself: the draft would replace its source",
                                 f"give captions.{dst} a file of its own, e.g. {_sibling(name, src, dst)}"))
    try:
        size = from_path.stat().st_size
    except OSError:
        size = 0
    if size > MAX_BYTES:
        raise InputError(Problem(str(from_path), f"captions.{src}", f"caption file is {size / 1e6:.1f} MB, "
                                 "over the 5 MB limit", "run `publisher check` and fix what it says"))
    try:
        text = from_path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(str(from_path), f"captions.{src}", f"cannot read it: {exc}",
                                 "run `publisher check` and fix what it says")) from None
    parsed = parse(text)
    if parsed is None or parsed.problems:
        raise InputError(Problem(str(from_path), f"captions.{src}", "the captions to draft from have "
                                 "problems", "run `publisher check` and fix what it says"))
    drafted = convert_cues(text, convert)
    result.written.append(Drafted(f"captions.{dst}", str(from_path), drafted, to_path))
    return to_path, name, drafted, from_path


def convert_cues(text: str, convert: Any) -> str:
    """``text`` with only its cue text converted; every other line stays byte for byte."""
    lines = split_lines(text)
    parsed = parse(text)
    assert parsed is not None
    for cue in parsed.cues:
        i = cue.line  # the line after the timing line (cue.line counts from 1)
        while i < len(lines) and lines[i].strip() and not TIMING.match(lines[i]):
            lines[i] = convert(lines[i])
            i += 1
    newline = "\r\n" if "\r\n" in text else "\n"
    return newline.join(lines)


def _sibling(name: str, src: str, dst: str) -> str:
    """The draft's file name: the source's with its language swapped (subs/zh-Hant.vtt ->
    subs/zh-Hans.vtt), else with the language added (subs/chinese.vtt -> subs/chinese.zh-Hans.vtt)."""
    path = Path(name)
    if src in path.name:
        return str(path.with_name(path.name.replace(src, dst)))
    return str(path.with_name(f"{path.stem}.{dst}{path.suffix}"))


def _inside(root: Path, value: str, key: str, manifest: Path) -> Path:
    path = Path(value) if os.path.isabs(value) else root / value
    if not path.resolve().is_relative_to(root.resolve()):
        raise InputError(Problem(str(manifest), key, f"'{value}' leads outside the manifest's folder",
                                 "keep caption files in the release's folder"))
    return path


def _write(path: Path, text: str, *, exclusive: bool, like: Path | None = None) -> None:
    """Write ``text`` in one step (a reader never sees half a file); ``exclusive`` refuses to
    replace a file that appeared meanwhile. A new file gets the mode of ``like`` (a draft of
    embargoed captions stays as private as its source)."""
    if exclusive and path.exists():
        raise InputError(Problem(str(path), "", "the file appeared while drafting", "run the command again"))
    path.parent.mkdir(parents=True, exist_ok=True)
    template = path if path.exists() else like
    mode = template.stat().st_mode & 0o777 if template is not None else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)
        if exclusive:
            try:
                os.link(tmp, path)  # fails if the file exists
            except FileExistsError:
                raise InputError(Problem(str(path), "", "the file appeared while drafting",
                                         "run the command again")) from None
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
