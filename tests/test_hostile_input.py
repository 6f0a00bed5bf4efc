"""Hostile input: generated manifests and site configs never crash publisher or reach the network,
and a fixed catalogue of nasty inputs is refused with named messages.

The generators and checkers here are shared with ``benchmarks/hostile_input.py`` (the long run,
10 000+ examples); the suite runs a modest number of examples.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from publisher.contract import option_classes, override_class
from publisher.errors import InputError
from publisher.inputs.config import load_config
from publisher.inputs.manifest import load_release
from publisher.inputs.rules import in_window, occurrences, repeat_trigger, window_today
from publisher.times import local
from tests.conftest import Project
from tests.media import make_poster

# --- the network guard ----------------------------------------------------------------------


@contextlib.contextmanager
def no_network() -> Iterator[list[str]]:
    """Every connect or name lookup in this process fails and is recorded in the yielded list.

    The list, not the exception, is what tests check: code under test may swallow the error.
    """
    attempts: list[str] = []
    saved: dict[tuple[Any, str], Any] = {}

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args))
        raise OSError("network access during an offline operation (blocked by the test)")

    for owner, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                        (socket, "create_connection"), (socket, "getaddrinfo")):
        saved[(owner, name)] = getattr(owner, name)
        setattr(owner, name, refuse)
    try:
        yield attempts
    finally:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)


# --- a release folder to point generated manifests at -----------------------------------------

SRT = "1\n00:00:00,500 --> 00:00:02,000\nTravel safely.\n"
VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n出行注意安全。\n"


def hostile_folder(root: Path, master: Path | None = None) -> Path:
    """``root/release/`` with a master, captions, a poster, an escaping symlink, a folder, and a
    file outside the tree. ``master`` is copied when given (needed by `check`), else a stub."""
    folder = root / "release"
    (folder / "subs").mkdir(parents=True, exist_ok=True)
    if master is not None:
        shutil.copyfile(master, folder / "master.mp4")
    else:
        (folder / "master.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (folder / "subs" / "en.srt").write_text(SRT, encoding="utf-8")
    (folder / "subs" / "zh-Hant.vtt").write_text(VTT, encoding="utf-8")
    if master is not None:
        make_poster(folder / "poster.png", "640x360")
    else:
        (folder / "poster.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "outside.mp4").write_bytes(b"outside")
    with contextlib.suppress(FileExistsError):
        (folder / "link-out").symlink_to("/etc/passwd")
    return folder


# --- generators -----------------------------------------------------------------------------

DEEP = "[" * 3000 + "]" * 3000
FRAGMENTS = [
    "NO", "no", "yes", "on", "Off", "09:30", "1e3", "0x1F", "0o17", ".inf", "-.NaN", "~", "null", "",
    "2026-12-01", "2026-12-01 10:00:00", "&a x", "*a", "!!python/object/apply:os.system ['true']",
    "!!binary aGVsbG8=", "!foo bar", "!!str", "<<: *a", "{a: [b, {c: d}]}", "[", "]", "{", "}", "'", '"',
    "|\n  block", ">-\n  folded", "? complex", "%YAML 1.1", "---", "...", "\t", "# comment", "- item",
    ": ", "key: value: other", "\ufeff", "\u202e", "\x85", "\u2028", "\\", "%", "@", "`", "*", "&", "!",
    "[0:v]drawtext=text='x'", ":force_style='Fontsize=99'", "<script>alert(1)</script>",
    "../../etc/passwd", "/etc/passwd", "master.mp4", "subs/en.srt", "link-out", "subs", ".", "..",
    "../outside.mp4", "subs/../master.mp4", "a" * 300, "9" * 400, "-" + "9" * 50, "1e999999",
    "2026-13-45T25:61:61+08:00", "2026-12-01T10:00:00", "2026-12-01T10:00:00+08:00",
    "2026-03-29T01:30:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
    "Asia/Hong_Kong", "Europe/London", "Mars/Olympus", "en", "zh-Hant", "zh-Hans", "EN", "x" * 70,
    '"\\0"', '"\\ud800"', '"\\x07"', '"\\u202e"', "\"master\\0.mp4\"", DEEP, "{" * 500,
    "webdav://127.0.0.1:9/x", "https://example.org/", "sftp://u@127.0.0.1:9/x", "redis://127.0.0.1:9",
    "postgresql://u:p@127.0.0.1:9/db",
]
KEYS = ["id", "master", "languages", "title", "description", "captions", "thumbnail", "publish_at",
        "timezone", "tags", "channels", "overrides", "signage", "repeat"]
LANGS = ["en", "zh-Hant", "zh-Hans", "fr", "EN", "x", "zh-hant-HK-x"]
PATHS = ["master.mp4", "subs/en.srt", "subs/zh-Hant.vtt", "poster.png", "../outside.mp4", "link-out",
         "subs", "/etc/passwd", "missing.mp4", "subs/../master.mp4", "", "master\x00.mp4", "a" * 300,
         "x/" * 2100, "./master.mp4", "~/.bashrc", "C:\\master.mp4"]

scalar = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.text(max_size=30),
    st.integers(-(10**40), 10**40).map(str),
    st.floats().map(repr),
)
junk = st.recursive(scalar, lambda c: st.lists(c, max_size=4) | st.dictionaries(scalar, c, max_size=4),
                    max_leaves=10)
times = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.sampled_from(FRAGMENTS),
)
zones = st.one_of(st.timezones().map(str), st.sampled_from(FRAGMENTS))
lang_map = st.dictionaries(st.sampled_from(LANGS) | scalar, st.text(max_size=40) | scalar, max_size=4)
paths = st.sampled_from(PATHS) | scalar

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": st.from_regex(r"[a-z0-9-]{3,64}", fullmatch=True) | scalar,
    "master": paths,
    "languages": st.lists(st.sampled_from(LANGS) | scalar, max_size=4),
    "title": lang_map,
    "description": lang_map,
    "captions": st.dictionaries(st.sampled_from(LANGS), paths, max_size=3),
    "thumbnail": paths,
    "publish_at": times,
    "timezone": zones,
    "tags": st.lists(scalar, max_size=4),
    "channels": st.lists(scalar, max_size=3),
    "overrides": st.dictionaries(scalar, st.dictionaries(scalar, junk, max_size=3) | junk, max_size=2),
    "signage": st.fixed_dictionaries({}, optional={"start": times, "end": times,
                                                   "sites": st.lists(scalar, max_size=3)}) | junk,
    "repeat": st.lists(st.fixed_dictionaries({"channels": st.lists(scalar, max_size=2)}, optional={
        "cron": scalar, "every": st.from_regex(r"\d{1,30}[mhdwx]", fullmatch=True) | scalar,
        "timezone": zones, "until": times, "window": scalar}) | junk, max_size=2),
}
VALID: dict[str, Any] = {
    "id": "hostile-input-test", "master": "master.mp4", "languages": ["en", "zh-Hant"],
    "title": {"en": "Consular Protection", "zh-Hant": "領事保護"},
    "captions": {"en": "subs/en.srt", "zh-Hant": "subs/zh-Hant.vtt"}, "thumbnail": "poster.png",
}


def _render_raw(data: dict[str, Any]) -> str:
    """Top-level keys with unquoted values, so fragments are read as YAML syntax."""
    lines = []
    for key, value in data.items():
        text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True,
                                                                   allow_unicode=True).strip()
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"


@st.composite
def document(draw: Any, values: dict[str, st.SearchStrategy[Any]], valid: dict[str, Any],
             keys: list[str], typed: dict[str, st.SearchStrategy[Any]]) -> bytes:
    """A YAML document as bytes: mostly-valid mappings with junk mixed in, rendered safely or raw,
    then maybe mutated at the text or byte level."""
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        # a valid document with one to three fields changed: gets past the schema into the checks
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in valid.items()}
        for key in draw(st.lists(st.sampled_from(sorted(typed)), min_size=1, max_size=3, unique=True)):
            data[key] = draw(typed[key])
    else:
        for key in keys:
            choice = draw(st.integers(0, 3))
            if choice == 0 and key in valid:
                data[key] = valid[key]
            elif choice in (1, 2):
                data[key] = draw(values[key])
        data.update(draw(st.dictionaries(scalar, junk, max_size=2)))
    style = draw(st.integers(0, 2))
    try:
        text = yaml.safe_dump(data, allow_unicode=draw(st.booleans())) if style == 0 else _render_raw(data)
    except yaml.YAMLError:
        text = _render_raw(data)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(FRAGMENTS) | st.text(max_size=10)) + text[at:]
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=200))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    raw = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        raw += draw(st.binary(max_size=64))
    return raw


text = st.text(max_size=40) | st.sampled_from(FRAGMENTS)
TYPED: dict[str, st.SearchStrategy[Any]] = {  # right shape, hostile content
    "id": st.from_regex(r"[a-z0-9-]{3,64}", fullmatch=True),
    "master": st.sampled_from(PATHS), "thumbnail": st.sampled_from(PATHS),
    "captions": st.dictionaries(st.sampled_from(["en", "zh-Hant"]), st.sampled_from(PATHS), max_size=2),
    "title": st.fixed_dictionaries({"en": text, "zh-Hant": text}),
    "description": st.dictionaries(st.sampled_from(["en", "zh-Hant"]), text, max_size=2),
    "publish_at": times.map(str), "timezone": zones.map(str),
    "tags": st.lists(text, max_size=3), "channels": st.lists(text, max_size=2),
    "signage": st.fixed_dictionaries({}, optional={"start": times.map(str), "end": times.map(str)}),
    "repeat": st.lists(st.fixed_dictionaries({"channels": st.lists(text, max_size=2)}, optional={
        "cron": text, "every": st.from_regex(r"\d{1,30}[mhdwx]", fullmatch=True) | text,
        "timezone": zones.map(str), "until": times.map(str), "window": text}), max_size=2),
}
manifests = document(VALUES, VALID, KEYS, TYPED)


def _config_values() -> tuple[dict[str, st.SearchStrategy[Any]], list[str], st.SearchStrategy[Any]]:
    option_keys = sorted({f for cls in option_classes().values() for f in cls.model_fields})
    option_values = st.one_of(
        st.sampled_from(["webdav://127.0.0.1:9/x", "webdavs://127.0.0.1:9/x", "sftp://u@127.0.0.1:9/x",
                         "https://127.0.0.1:9/", "http://example.org/v/", "www", "../www", "/etc",
                         "secrets/yt.json", "PUBLISHER_TEST_ENV", "wx0123456789abcdef", "30", "-1"]),
        st.lists(scalar, max_size=3), junk)
    block = st.fixed_dictionaries(
        {"kind": st.sampled_from(sorted(option_classes())) | scalar},
        optional={k: option_values for k in option_keys if k != "kind"})
    values: dict[str, st.SearchStrategy[Any]] = {
        "timezone": zones, "store": scalar | st.just("sqlite:////nonexistent/dir/x.db"),
        "cache_dir": paths, "broker": scalar, "require_approval": scalar,
        "concurrency": scalar, "retry": st.dictionaries(
            st.sampled_from(["attempts", "base_seconds", "max_seconds", "defer_minutes"]) | scalar, scalar,
            max_size=4) | junk,
        "channels": st.dictionaries(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True) | scalar,
                                    block | junk, max_size=3) | junk,
    }
    return values, list(values), block


CONFIG_VALUES, CONFIG_KEYS, CONFIG_BLOCK = _config_values()
CONFIG_VALID: dict[str, Any] = {"channels": {"web": {"kind": "website", "target": "www",
                                                     "public_url": "https://www.example.gov.hk/v/"}}}
configs = document(CONFIG_VALUES, CONFIG_VALID, CONFIG_KEYS,
                   {"channels": st.dictionaries(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True),
                                                CONFIG_BLOCK, min_size=1, max_size=3),
                    "timezone": zones.map(str), "retry": CONFIG_VALUES["retry"]})


# --- dates and repeat rules ---------------------------------------------------------------

CRON_TOKENS = ["*", "?", "0", "7", "9", "23", "24", "29", "30", "31", "59", "60", "*/0", "*/15", "1-5",
               "5-1", "mon-fri", "sun", "MON", "L", "last", "1#2", "-1", "1,15", "0-59/", "jan",
               "feb-dec/2", "2", "9" * 30, "0-7", "7-0", "*/99999999999"]
crons = st.lists(st.sampled_from(CRON_TOKENS), max_size=7).map(" ".join) | text
everys = st.from_regex(r"\d{1,15}[mhdwsx]?", fullmatch=True) | text
windows = st.from_regex(r"\d{1,3}:\d{1,2}-\d{1,2}:\d{1,3}", fullmatch=True) | text
far_times = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00-05:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                     "9999-12-31T23:59:59+14:00", "1999-12-31T23:59:59Z", "2031-12-31T00:00:00+08:00",
                     "2026-03-29T01:30:00", "2026-10-25T01:30:00", "1970-01-01T00:00:00+00:00"]),
    text,
)
rules = st.fixed_dictionaries({"channels": st.just(["web"]) | st.lists(text, max_size=2)}, optional={
    "cron": crons, "every": everys, "timezone": zones.map(str), "until": far_times, "window": windows})
times_and_rules = st.fixed_dictionaries({}, optional={
    "publish_at": far_times, "timezone": zones.map(str), "repeat": st.lists(rules, max_size=3),
    "signage": st.fixed_dictionaries({}, optional={"start": far_times, "end": far_times}),
}).map(lambda extra: yaml.safe_dump({**VALID, **extra}, allow_unicode=True).encode())


def try_times(folder: Path, raw: bytes) -> str:
    """A manifest's dates and rules: refused with a message, or accepted and then planned by the
    service's own trigger code (and shown in any zone) without an exception."""
    outcome = try_manifest(folder, raw)
    if outcome == "accepted":
        release = load_release(folder / "release.yaml")
        now = datetime.now(UTC)
        for spec in release.repeat:
            occurrences(repeat_trigger(spec), now, now + timedelta(days=400), cap=50)
            in_window(spec, now)
            window_today(spec, now)
        for value in (release.publish_at, release.signage and release.signage.end):
            for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "Asia/Hong_Kong"):
                local(value or None, ZoneInfo(zone))
    return outcome
# overrides: a channel of every kind, keys from every option and override schema, hostile values
OVERRIDE_CONFIG: dict[str, dict[str, Any]] = {
    "web": {"kind": "website", "target": "www", "public_url": "https://www.example.gov.hk/v/"},
    "app": {"kind": "app-feed", "target": "feed", "public_url": "https://app.example.gov.hk/f/"},
    "yt": {"kind": "youtube", "credentials": "secrets/yt.json"},
    "wx": {"kind": "wechat", "appid": "wx0123456789abcdef", "secret_env": "PUBLISHER_TEST_WX"},
    "hall": {"kind": "signage", "target": "screens", "sites": ["hall"]},
}
OVERRIDE_KINDS = {name: str(block["kind"]) for name, block in OVERRIDE_CONFIG.items()}
OVERRIDE_KEYS = sorted({f for kind, options in option_classes().items()
                        for f in (*options.model_fields, *override_class(kind).model_fields)})
override_values = st.one_of(
    st.sampled_from(["public", "unlisted", "private", "PLpublisher", "22", "true", "false", "NO", "1e3",
                     "09:00-18:00", "22:00-06:00", "24:00-25:00", "09:00-09:00", "9-5", "00:00-23:59",
                     "领事保护" * 9, "入境\x1b[31m事务处", "\u202e", "https://evil.example/", "/etc/passwd"]),
    text, junk)
WINDOWS = ["09:00-18:00", "22:00-06:00", "24:00-25:00", "09:00-09:00", "9-5", "00:00-23:59", " 07:30-08:00 "]
plausible_overrides = st.fixed_dictionaries({}, optional={  # the right keys for each kind, some bad values
    "yt": st.fixed_dictionaries({}, optional={
        "privacy": st.sampled_from(["public", "unlisted", "private", "Public", ""]),
        "playlist": st.sampled_from(["PLpublisher", "PL-x_1", "../x", "x" * 99]),
        "category_id": st.sampled_from(["22", "27", "abc", "٣"]),
        "made_for_kids": st.sampled_from(["true", "false", "yes", "NO", "maybe"])}),
    "wx": st.fixed_dictionaries({}, optional={k: text for k in ("title", "author", "digest")}),
    "hall": st.fixed_dictionaries({}, optional={"window": st.sampled_from(WINDOWS) | text}),
    "web": st.just({}), "app": st.just({})})
override_blocks = plausible_overrides | st.dictionaries(
    st.sampled_from(sorted(OVERRIDE_CONFIG)) | scalar,
    st.dictionaries(st.sampled_from(OVERRIDE_KEYS) | scalar, override_values, max_size=4) | junk, max_size=3)
override_manifests = document({**VALUES, "overrides": override_blocks}, VALID, KEYS,
                              {"overrides": override_blocks, "timezone": zones.map(str),
                               "signage": TYPED["signage"]})
# a valid manifest with plausible overrides, so that `check` gets past them to the captions
plausible_manifests = plausible_overrides.map(
    lambda o: yaml.safe_dump({**VALID, "overrides": o}, allow_unicode=True).encode())

# caption files: SRT or WebVTT built from hostile text, timings good and bad, any line endings
CUE_TEXT = ["\\n", "\\N", "\\h", "{\\fs300\\c&H0000FF&}BIG", "{\\an8}", "{", "}", "\\", "<script>x</script>",
            "a < b & c", "<i>", "</i>", "<b>b</b>", "<U>u</U>", "<c.red>c</c>", "<v Bob>", "<00:00:01.000>",
            "&amp;", "&lt;", "&nbsp;", "&#x1F600;", "&bogus;", "-->", "->", "00:00:01,000 --> x", "NOTE",
            "WEBVTT", "\u2028", "\u200b", "\u2060", "\t", "\x00", "\x1b[31m", "字幕", " ", "1", "%{pts}",
            "[0:v]drawtext=text='x'", ",subtitles=/etc/passwd"]


def _srt_time(ms: int) -> str:
    return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"


timing_texts = st.one_of(
    st.tuples(st.integers(0, 5000), st.integers(0, 5000)).map(
        lambda t: f"{_srt_time(t[0])} --> {_srt_time(t[1])}"),
    st.sampled_from(["00:00:02.5 -> 4.8", "00:00:01.000 --> 00:00:02.000 align:start line:0 x:y",
                     "1:2:3 --> 4:5:6", "00:00:00,000-->00:00:01,000", "99:99:99,999 --> 00:00:00,000",
                     "00:00:01.000 --> ", "9" * 5000 + ":00:00,000 --> 00:00:01,000"]),
    text)
cue_lines = st.lists(st.lists(st.sampled_from(CUE_TEXT) | st.text(max_size=12), max_size=4).map("".join),
                     min_size=0, max_size=3)
cue_blocks = st.lists(st.tuples(st.sampled_from(["", "1", "7", "name"]), timing_texts, cue_lines), max_size=5)
# files that pass the checks, so that what is written from them is checked too
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
good_lines = st.lists(st.lists(st.sampled_from([t for t in CUE_TEXT if "-->" not in t and "\\x" not in t
                                                and t not in ("\t", " ", "NOTE", "WEBVTT")]) | printable,
                               min_size=1, max_size=4).map("".join).filter(lambda t: bool(t.strip())),
                      min_size=1, max_size=3)
good_blocks = st.lists(
    st.tuples(st.sampled_from(["", "1"]), st.integers(0, 5000), st.integers(1, 900), good_lines).map(
        lambda b: (b[0], f"{_srt_time(b[1])} --> {_srt_time(b[1] + b[2])}", b[3])), min_size=1, max_size=5)


@st.composite
def caption_files(draw: Any) -> bytes:
    vtt = draw(st.booleans())
    out = ["WEBVTT" + draw(st.sampled_from(["", " - title", "X"])), ""] if vtt else []
    for number, timing, lines in draw(good_blocks if draw(st.booleans()) else cue_blocks):
        out += [number, timing, *lines, ""] if number else [timing, *lines, ""]
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(out)
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.text(max_size=200))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "gb18030"])),
                       errors="replace")


# --- one example each -----------------------------------------------------------------------


def try_manifest(folder: Path, raw: bytes) -> str:
    """Load ``raw`` as a manifest in ``folder`` (its overrides checked against a config with a
    channel of every kind): "accepted" or "refused"; anything else fails."""
    path = folder / "release.yaml"
    path.write_bytes(raw)
    with no_network() as attempts:
        try:
            load_release(path, channels=OVERRIDE_KINDS, zone="Asia/Hong_Kong")
            outcome = "accepted"
        except InputError as exc:
            assert str(exc).strip(), "an InputError without a message"
            assert str(path) in str(exc), f"message does not name the file: {exc}"
            outcome = "refused"
    assert not attempts, f"load_release touched the network: {attempts}"
    return outcome


def try_config(folder: Path, raw: bytes) -> str:
    path = folder / "publisher.yaml"
    path.write_bytes(raw)
    with no_network() as attempts:
        try:
            load_config(path)
            outcome = "accepted"
        except InputError as exc:
            assert str(exc).strip(), "an InputError without a message"
            outcome = "refused"
    assert not attempts, f"load_config touched the network: {attempts}"
    return outcome


def _merged(cue: Any) -> list[Any]:
    """A cue's tokens with adjacent text joined and blank lines dropped, for comparing."""
    from publisher.inputs.cues import Tag

    lines: list[list[Any]] = [[]]
    for token in cue.tokens:
        parts = token.split("\n") if isinstance(token, str) else [token]
        for k, part in enumerate(parts):
            if k:
                lines.append([])
            if isinstance(part, Tag) or part:
                if isinstance(part, str) and lines[-1] and isinstance(lines[-1][-1], str):
                    lines[-1][-1] += part
                else:
                    lines[-1].append(part)
    kept = [line for line in lines if any(isinstance(t, Tag) or t.strip() for t in line)]
    return [t for i, line in enumerate(kept) for t in ([*(["\n"] if i else []), *line])]


def check_ass_text(text: str) -> None:
    """Nothing in an ASS event text we wrote is markup to libass but our own style toggles."""
    from publisher.inputs.cues import WORD_JOINER

    ours = {"{\\i1}", "{\\i0}", "{\\b1}", "{\\b0}", "{\\u1}", "{\\u0}"}
    i = 0
    while i < len(text):
        if text[i] == "{":
            end = text.index("}", i) + 1
            assert text[i:end] in ours, f"an override block from the caption text: {text!r}"
            i = end
        elif text[i] == "\\":
            assert text[i + 1:i + 2] in (WORD_JOINER, "{", "}", "N"), f"an ASS escape from the text: {text!r}"
            i += 2
        else:
            assert text[i] not in "\n\r", f"a raw line break: {text!r}"
            i += 1


def try_caption(folder: Path, raw: bytes) -> str:
    """Check a caption file; when accepted, its WebVTT must read back as the same cues, and its
    ASS text must hold no markup from the author. "accepted" or "refused"; anything else fails."""
    from publisher.inputs.captions import check_captions, load_captions
    from publisher.inputs.cues import parse, to_ass_text, to_webvtt

    path = folder / "captions.srt"
    path.write_bytes(raw)
    with no_network() as attempts:
        problems = check_captions(path, field="captions.en", duration=6.0)
        assert all(p.file == str(path) and p.message and p.fix for p in problems), problems
        if problems:
            return "refused"
        cues = load_captions(path)
        again = parse(to_webvtt(cues))
        assert again is not None and not again.problems, (to_webvtt(cues), again)
        read_back = [(c.start, c.end, _merged(c)) for c in again.cues]
        assert read_back == [(c.start, c.end, _merged(c)) for c in cues]
        for cue in cues:
            check_ass_text(to_ass_text(cue))
    assert not attempts
    return "accepted"


LAST_CHECK_OUTPUT: list[str] = []  # what the last try_check printed, for failure messages


def try_check(root: Path, manifest: bytes, config: bytes | None, env: dict[str, str] | None = None) -> str:
    """`publisher check` in-process: exit 0, or exit 2 with a clean message; no network, no state."""
    from typer.testing import CliRunner

    from publisher.cli import app

    folder = root / "release"
    (folder / "release.yaml").write_bytes(manifest)
    cfg = root / "publisher.yaml"
    if config is None:
        cfg.write_text(yaml.safe_dump({"channels": {"web": {
            "kind": "website", "target": str(root / "www"), "public_url": "https://example.gov.hk/v/"}}}),
            encoding="utf-8")
    else:
        cfg.write_bytes(config)
    state = root / "state"
    shutil.rmtree(state, ignore_errors=True)
    with no_network() as attempts:
        env = {"PUBLISHER_CONFIG": str(cfg), "PUBLISHER_HOME": str(state), **(env or {})}
        result = CliRunner().invoke(app, ["check", str(folder / "release.yaml")], catch_exceptions=True,
                                    env=env)
    assert not attempts, f"check touched the network: {attempts}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"check raised {type(result.exception).__name__}: {result.exception}\n"
                             f"{result.output}") from result.exception
    assert result.exit_code in (0, 2), f"exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "error:" in result.output, result.output
    LAST_CHECK_OUTPUT[:] = [result.output]
    assert _no_publications(state / "state.db"), "check recorded a publication"
    assert not (root / "www").exists(), "check wrote to the website target"
    return "accepted" if result.exit_code == 0 else "refused"


# --- generated examples ---------------------------------------------------------------------

# No shrinking in the suite: it can take minutes; the first failing example is printed as found.
FUZZ = settings(max_examples=200, deadline=None, database=None, print_blob=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def stub_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hostile_folder(tmp_path_factory.mktemp("hostile"))


@FUZZ
@given(raw=manifests)
def test_generated_manifests_never_crash(stub_folder: Path, raw: bytes) -> None:
    try_manifest(stub_folder, raw)


@FUZZ
@given(raw=configs)
def test_generated_configs_never_crash(stub_folder: Path, raw: bytes) -> None:
    try_config(stub_folder.parent, raw)


@FUZZ
@given(raw=override_manifests)
def test_generated_overrides_never_crash(stub_folder: Path, raw: bytes) -> None:
    try_manifest(stub_folder, raw)


@FUZZ
@given(raw=caption_files())
def test_generated_caption_files_never_crash_and_stay_text(stub_folder: Path, raw: bytes) -> None:
    try_caption(stub_folder, raw)


@pytest.fixture(scope="module")
def check_root(tmp_path_factory: pytest.TempPathFactory, master_file: Path) -> Path:
    root = tmp_path_factory.mktemp("hostile-check")
    hostile_folder(root, master_file)
    return root


@settings(FUZZ, max_examples=40)
@given(manifest=manifests, config=st.none() | configs)
def test_generated_input_through_check_cli(check_root: Path, manifest: bytes, config: bytes | None) -> None:
    try_check(check_root, manifest, config)


@FUZZ
@given(raw=times_and_rules)
def test_generated_times_and_repeat_rules_never_crash(stub_folder: Path, raw: bytes) -> None:
    try_times(stub_folder, raw)


@settings(FUZZ, max_examples=30)
@given(manifest=times_and_rules)
def test_generated_times_and_rules_through_check_cli(check_root: Path, manifest: bytes) -> None:
    try_check(check_root, manifest, None)


@settings(FUZZ, max_examples=300)
@given(value=st.datetimes(timezones=st.just(UTC)), zone=st.timezone_keys())
def test_any_stored_time_shows_in_any_zone(value: datetime, zone: str) -> None:
    assert local(value, ZoneInfo(zone))
OVERRIDE_CONFIG_YAML = yaml.safe_dump({"channels": OVERRIDE_CONFIG}).encode()


@settings(FUZZ, max_examples=15)
@given(manifest=override_manifests | plausible_manifests, caption=st.none() | caption_files())
def test_generated_overrides_and_captions_through_check_cli(check_root: Path, manifest: bytes,
                                                            caption: bytes | None) -> None:
    try_check_with(check_root, manifest, caption)


def try_check_with(root: Path, manifest: bytes, caption: bytes | None) -> str:
    """`publisher check` with a channel of every kind, and ``caption`` as the English captions."""
    en = root / "release" / "subs" / "en.srt"
    en.write_bytes(caption if caption is not None else SRT.encode())
    secret = root / "secrets" / "yt.json"  # credentials that exist, so that check can pass
    secret.parent.mkdir(exist_ok=True)
    secret.write_text('{"client_id": "x", "client_secret": "y", "refresh_token": "z"}', encoding="utf-8")
    secret.chmod(0o600)
    try:
        return try_check(root, manifest, OVERRIDE_CONFIG_YAML, env={"PUBLISHER_TEST_WX": "wx-secret"})
    finally:
        en.write_text(SRT, encoding="utf-8")


def test_valid_manifest_is_accepted(stub_folder: Path) -> None:
    """The generators' valid base really is valid, so the fuzzing reaches past the parser."""
    assert try_manifest(stub_folder, yaml.safe_dump(VALID, allow_unicode=True).encode()) == "accepted"


# --- the fixed catalogue --------------------------------------------------------------------


def _set(key: str, value: Any) -> Callable[[Project], None]:
    def change(proj: Project) -> None:
        target = proj.manifest
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    return change


def _outside_master(proj: Project) -> None:
    (proj.root / "outside.mp4").write_bytes((proj.manifest_path.parent / "master.mp4").read_bytes())
    proj.manifest["master"] = "../outside.mp4"


def _symlink_caption(proj: Project) -> None:
    secret = proj.root / "not-for-publishing.srt"
    secret.write_text(SRT, encoding="utf-8")
    link = proj.manifest_path.parent / "subs" / "en.srt"
    link.unlink()
    link.symlink_to(secret)


def _giant_caption(proj: Project) -> None:
    cue = "{n}\n00:00:00,500 --> 00:00:02,000\nTravel safely. 出行注意安全。\n\n"
    text = "".join(cue.format(n=i) for i in range(1, 110_000))
    (proj.manifest_path.parent / "subs" / "en.srt").write_text(text, encoding="utf-8")


def _binary_caption(proj: Project) -> None:
    (proj.manifest_path.parent / "subs" / "en.srt").write_bytes(
        (proj.manifest_path.parent / "poster.png").read_bytes())


def _big5_caption(proj: Project) -> None:
    (proj.manifest_path.parent / "subs" / "zh-Hant.vtt").write_bytes(
        "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n出行注意安全，如需協助請致電入境事務處。\n".encode("big5"))


def _fifo_caption(proj: Project) -> None:
    path = proj.manifest_path.parent / "subs" / "en.srt"
    path.unlink()
    os.mkfifo(path)


def _dir_caption(proj: Project) -> None:
    path = proj.manifest_path.parent / "subs" / "en.srt"
    path.unlink()
    path.mkdir()


def _in_zone(zone: str, when: str) -> Callable[[Project], None]:
    def change(proj: Project) -> None:
        proj.manifest["timezone"] = zone
        proj.manifest["publish_at"] = when
    return change


CATALOGUE: list[tuple[str, Callable[[Project], None], str, str]] = [
    # (id, change, field named in the message, words of the message)
    ("path-traversal", _outside_master, "master", "leads outside the manifest's folder"),
    ("absolute-path", _set("captions.en", "/etc/passwd"), "captions.en", "is an absolute path"),
    ("symlink-escape", _symlink_caption, "captions.en", "leads outside the manifest's folder"),
    ("giant-caption", _giant_caption, "captions.en", "over the 5 MB limit"),
    ("binary-caption", _binary_caption, "captions.en", "not UTF-8"),
    ("big5-caption", _big5_caption, "captions.zh-Hant", "looks like Big5"),
    ("fifo-caption", _fifo_caption, "captions.en", "is not a regular file"),
    ("folder-caption", _dir_caption, "captions.en", "is not a regular file"),
    ("nul-in-path", _set("master", "master\x00.mp4"), "master", "master"),
    ("overlong-path", _set("thumbnail", "p" * 5000 + ".png"), "thumbnail", "thumbnail"),
    ("title-control-char", _set("title.en", "Consular\x07Protection"), "title.en",
     "control character U+0007"),
    ("title-bidi-override", _set("title.en", "Consular \u202eProtection"), "title.en",
     "control character U+202E"),
    ("title-escape-sequence", _set("title.zh-Hant", "領事\x1b[31m保護"), "title.zh-Hant", "U+001B"),
    ("title-lone-surrogate", _set("title.en", "Consular \ud800"), "title.en", "title.en"),
    ("zone-less-time", _set("publish_at", "2026-12-01T10:00:00"), "publish_at", "has no time zone"),
    ("date-without-time", _set("publish_at", "2026-12-01"), "publish_at", "has no time of day"),
    ("impossible-date", _set("publish_at", "2026-02-30T10:00:00+08:00"), "publish_at",
     "is not a date and time"),
    ("impossible-hour", _set("publish_at", "2026-12-01T25:00:00+08:00"), "publish_at",
     "is not a date and time"),
    ("time-out-of-range", _set("publish_at", "9999-12-31T23:59:59-14:00"), "publish_at", "publish_at"),
    ("time-before-year-1", _set("publish_at", "0001-01-01T00:00:00+14:00"), "publish_at", "publish_at"),
    ("dst-gap", _in_zone("Europe/London", "2026-03-29T01:30:00"), "publish_at", "does not exist"),
    ("dst-overlap", _in_zone("Europe/London", "2026-10-25T01:30:00"), "publish_at", "occurs twice"),
    ("offset-disagrees-with-zone", _in_zone("Asia/Hong_Kong", "2026-12-01T10:00:00+09:00"), "publish_at",
     "disagrees with timezone"),
    ("unknown-zone", _in_zone("Asia/Kowloon", "2026-12-01T10:00:00"), "timezone", "unknown time zone"),
    ("zone-traversal", _in_zone("../../../etc/passwd", "2026-12-01T10:00:00"), "timezone",
     "unknown time zone"),
]


@pytest.mark.parametrize(("change", "field", "words"),
                         [pytest.param(c, f, w, id=i) for i, c, f, w in CATALOGUE])
def test_catalogue_is_refused_with_named_message(project: Callable[[], Project], cli: Any,
                                                 change: Callable[[Project], None], field: str,
                                                 words: str) -> None:
    proj = project()
    target = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(target),
                             "public_url": "https://www.example.gov.hk/videos/"})
    change(proj)
    proj.write()
    with no_network() as attempts:
        result = cli(proj, "check", proj.manifest_path)
        released = cli(proj, "release", proj.manifest_path)
    assert not attempts
    for r in (result, released):
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output
        assert "error:" in r.output
        assert field in r.output and words in r.output, r.output
        assert str(proj.manifest_path.parent) in r.output  # names the file
    assert not target.exists()
    assert _no_publications(proj.state_dir / "state.db")


def _no_publications(db: Path) -> bool:
    import sqlite3

    if not db.exists():
        return True
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        if "publications" not in tables:
            return True
        return int(conn.execute("select count(*) from publications").fetchone()[0]) == 0


RAW_CATALOGUE: list[tuple[str, str, str]] = [
    # (id, manifest text, words of the message)
    ("deep-nesting", "id: deep-nesting\nmaster: master.mp4\nlanguages: [en]\ntitle: {en: x}\ntags: "
     + DEEP + "\n", "release.yaml"),
    ("billion-laughs", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nid: laughs\n", "anchors and aliases"),
    ("python-tag", "id: python-tag\nmaster: master.mp4\nlanguages: [en]\ntitle: {en: x}\n"
     "tags: !!python/object/apply:os.system ['touch PWNED']\n", "tags"),
    ("custom-tag", "id: custom-tag\nmaster: !include /etc/passwd\nlanguages: [en]\ntitle: {en: x}\n",
     "YAML tag !include is not supported"),
    ("duplicate-key", "id: dup-key\nid: dup-key-2\nmaster: master.mp4\nlanguages: [en]\ntitle: {en: x}\n",
     "duplicate key 'id'"),
    ("merge-key", "base: &b {en: x}\nid: merge-key\nmaster: master.mp4\nlanguages: [en]\n"
     "title: {<<: *b}\n", "not supported"),
    ("huge-file", "id: huge\n" + "# padding\n" * 120_000, "larger than 1 MB"),
    ("not-utf8", "id: caf\xe9\n", "not UTF-8"),
    ("not-a-mapping", "- just\n- a list\n", "must be a mapping"),
    ("syntax-error", "id: [unclosed\nmaster: x\n", "not valid YAML"),
    ("escape-out-of-range", 'id: x\nmaster: master.mp4\nlanguages: [en]\ntitle: {en: "\\U00aaaaaa"}\n',
     "not valid YAML"),
    ("huge-number-id", "id: " + "9" * 5000 + "\nmaster: master.mp4\nlanguages: [en]\ntitle: {en: x}\n", "id"),
]


@pytest.mark.parametrize(("text", "words"), [pytest.param(t, w, id=i) for i, t, w in RAW_CATALOGUE])
def test_raw_catalogue_is_refused(stub_folder: Path, text: str, words: str) -> None:
    path = stub_folder / "release.yaml"
    path.write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode("utf-8"))
    with no_network() as attempts, pytest.raises(InputError) as caught:
        load_release(path)
    assert not attempts
    assert words in str(caught.value), str(caught.value)
    assert str(path) in str(caught.value)
    assert not (stub_folder / "PWNED").exists() and not Path("PWNED").exists()


def test_yaml_look_alikes_stay_text(stub_folder: Path) -> None:
    text = ("id: look-alikes\nmaster: master.mp4\nlanguages: [en]\ntitle: {en: NO}\n"
            "description: {en: 09:30}\ntags: [1e3, 2026-12-01, 'yes', ~x]\n")
    (stub_folder / "release.yaml").write_text(text, encoding="utf-8")
    rel = load_release(stub_folder / "release.yaml")
    assert rel.title == {"en": "NO"} and rel.description == {"en": "09:30"}
    assert rel.tags == ["1e3", "2026-12-01", "yes", "~x"]


# --- HTML in titles and filter syntax in subtitles, through a real release ----------------------

HTML_TITLE = '<script>alert("pwned")</script> & <b>Consular</b>'
HTML_DESCRIPTION = "<img src=x onerror=alert(1)> </script><!-- \u2028 line"
FILTER_SRT = """1
00:00:00,500 --> 00:00:02,000
[0:v]drawtext=text='PWNED':fontsize=300[v];[v]null

2
00:00:02,200 --> 00:00:03,500
,subtitles=/etc/passwd:force_style='Fontsize=300' %{pts} \\'; $(touch PWNED)
"""
FILTER_NAME = "subs/en [0:v]drawtext=text='x';,:force_style=%{pts}.srt"


def _gray_frame(path: Path, at: float, size: str = "640x360") -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1", "-vf",
         f"scale={size.replace('x', ':')},format=gray", "-f", "rawvideo", "-"],
        check=True, capture_output=True, timeout=60).stdout


def _mean_diff(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / max(1, len(a))


def test_html_and_filter_syntax_pass_through_as_text(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    folder = proj.manifest_path.parent
    (folder / FILTER_NAME).write_text(FILTER_SRT, encoding="utf-8")
    proj.manifest["captions"]["en"] = FILTER_NAME
    proj.manifest["title"]["en"] = HTML_TITLE
    proj.manifest["description"]["en"] = HTML_DESCRIPTION
    web, screens = proj.root / "www", proj.root / "screens"
    proj.add_channel("web", {"kind": "website", "target": str(web),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.add_channel("hall", {"kind": "signage", "target": str(screens), "sites": ["hall-a"],
                              "language": "en"})
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    rid = proj.manifest["id"]

    pages = [web / rid / "index.html", web / "index.html"]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Consular" not in html, page
        assert "</script><!--" not in html
    player = pages[0].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(" in player and "&amp;" in player
    assert "&lt;img src=x onerror=alert(1)&gt;" in player
    assert player.count("</script>") == player.count("<script")  # the JSON-LD cannot be closed early

    clip = screens / "hall-a" / f"{rid}.mp4"
    assert clip.is_file()
    decode = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(clip), "-f", "null", "-"],
                            capture_output=True, text=True, timeout=120)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height",
                            "-of", "csv=p=0", str(clip)], capture_output=True, text=True, check=True)
    video_streams = [line for line in probe.stdout.splitlines() if line.startswith("video")]
    assert video_streams == ["video,640,360"], probe.stdout
    # The cue text was burned in as text: the lower band differs from the master while a cue is up,
    # the upper band (where a 300-px "PWNED" from an interpreted drawtext would land) does not.
    master = folder / "master.mp4"
    burned, plain = _gray_frame(clip, 1.2), _gray_frame(master, 1.2)
    band = 640 * 90
    lower = _mean_diff(burned[-band:], plain[-band:])
    upper = _mean_diff(burned[:band], plain[:band])
    assert lower > 2 * upper + 1, (lower, upper)
    assert not (folder / "PWNED").exists() and not Path("PWNED").exists()


def test_check_of_filter_syntax_is_offline_and_writes_nothing(tmp_path: Path, master_file: Path) -> None:
    root = tmp_path
    folder = hostile_folder(root, master_file)
    (folder / FILTER_NAME).write_text(FILTER_SRT, encoding="utf-8")
    manifest = dict(VALID, captions={"en": FILTER_NAME, "zh-Hant": "subs/zh-Hant.vtt"},
                    title={"en": HTML_TITLE, "zh-Hant": "領事保護"})
    outcome = try_check(root, yaml.safe_dump(manifest, allow_unicode=True).encode(), None)
    assert outcome == "accepted", LAST_CHECK_OUTPUT
    # issue 3: "check ... no network, no writes" -- not even an empty state store
    assert not (root / "state" / "state.db").exists(), "`publisher check` created the state store"
