"""One exception tree. Every message is meant for the person at the terminal.

``InputError`` is bad input (exit 2); ``ChannelError`` and its children come from a channel
adapter and tell the core what to do next: retry (Transient), wait (RateLimited), give up
(Rejected, AuthError), or treat as absent (NotFound).
"""

from __future__ import annotations

from datetime import datetime

from publisher.models import Problem


class PublisherError(Exception):
    """Base of every error publisher raises on purpose; ``str()`` is the user-facing message."""

    exit_code = 1


class InputError(PublisherError):
    """Bad manifest, config, master or command line. Carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="", field="", message=problems, fix="")]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FourEyes(InputError):
    """The same person may not both submit and approve a release."""


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

    exit_code = 75

    def __init__(self, message: str, *, retry_at: datetime | None = None, channel: str = "") -> None:
        self.retry_at = retry_at
        super().__init__(message, channel=channel)
