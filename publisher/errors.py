"""One exception tree. Every message is meant for the person at the terminal.

``InputError`` is bad input (exit 2); ``ChannelError`` and its children come from a channel
adapter and tell the core what to do next: retry (Transient), wait (RateLimited), give up
(Rejected, AuthError), or treat as absent (NotFound).
"""

from __future__ import annotations

import ssl
from datetime import datetime
from enum import IntEnum

from publisher.models import Problem


class ExitCode(IntEnum):
    """What a command's exit status tells a script."""

    OK = 0  # done (an embargoed release whose slow work is staged counts as done)
    FAILED = 1  # a channel failed; a person must act
    USAGE = 2  # bad input or usage; nothing was changed
    TEMPORARY = 75  # held back by a limit, an outage or another process; taken up again later


class PublisherError(Exception):
    """Base of every error publisher raises on purpose; ``str()`` is the user-facing message."""

    exit_code = ExitCode.FAILED


class InputError(PublisherError):
    """Bad manifest, config, master or command line. Carries every problem found, not just the first."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="", field="", message=problems, fix="")]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FourEyes(InputError):
    """The same person may not both submit and approve a release."""


class ReleaseBusy(PublisherError):
    """Another publisher process is working on this release; the work is taken up later."""

    exit_code = ExitCode.TEMPORARY

    def __init__(self, release_id: str) -> None:
        self.release_id = release_id
        super().__init__(f"another publisher process is working on {release_id}; "
                         "this is taken up again when it has finished (or run the command again then)")


class StoreError(PublisherError):
    """The state store cannot be read or written (disk full, corrupt, locked)."""


class TranscodeError(PublisherError):
    """ffmpeg failed or produced output that does not pass its checks."""


class ChannelError(PublisherError):
    """Raised by channel adapters. ``channel`` is filled in by the core when it is known."""

    def __init__(self, message: str, *, channel: str = "") -> None:
        self.channel = channel
        super().__init__(message)


class AuthError(ChannelError):
    """Credentials missing, refused or revoked; a person must act (the message says how)."""


class Rejected(ChannelError):
    """The service refused the content or the request; retrying the same thing will not help."""


class Transient(ChannelError):
    """A passing fault (5xx, reset, timeout); the core retries with backoff."""


class NotFound(ChannelError):
    """The remote object does not exist (any more)."""


class RateLimited(ChannelError):
    """Held back by a quota, rate limit or outage; publisher takes it up again at ``retry_at``."""

    exit_code = ExitCode.TEMPORARY

    def __init__(self, message: str, *, retry_at: datetime | None = None, channel: str = "") -> None:
        self.retry_at = retry_at
        super().__init__(message, channel=channel)


def untrusted_certificate(exc: BaseException, what: str) -> AuthError | None:
    """An AuthError when ``exc`` (as raised by requests, urllib3, httplib2 or google-auth, which
    wrap it in their own exceptions) comes from a server certificate this machine does not trust:
    retrying cannot help, a person must act. None for any other failure."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return AuthError(f"{what}: the server's TLS certificate is not trusted ({e.verify_message}); "
                             "if it is a private server, set ca_bundle to the file of its CA certificate")
        stack += [a for a in e.args if isinstance(a, BaseException)]
        stack += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None))
                  if isinstance(x, BaseException)]
    return None


class QuotaExhausted(RateLimited):
    """A daily API quota is used up; publisher takes the work up again after it resets."""
