"""youtube channel under faults: 5xx and resets on chunks, lost answers, expired tokens and
sessions, quota exhaustion (deferred, then done the next Pacific day), rejections."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels.youtube.options import QuotaOptions
from channels.youtube.quota import PACIFIC, Ledger
from publisher.contract import Job, Journal
from publisher.errors import RateLimited, Rejected, Transient
from publisher.store import Store, sqlite_url
from tests.fakes import youtube_run as run
from tests.fakes.youtube_server import YouTubeFake
from tests.test_youtube import assert_complete, fake, job, media, options  # noqa: F401 - fixtures


def statuses(fake: YouTubeFake, name: str = "chunk") -> list[int]:
    return [s for c, s in fake.model.log if c == name]


def test_5xx_on_a_chunk_resumes_the_same_session(fake: YouTubeFake, media: Path) -> None:
    fake.faults.status = {2: 503, 3: 500}
    ch = run.channel(media, options(fake, media))
    j = job(media)
    outcome, attempts = run.publish_until_done(ch, j)
    assert attempts == 3
    assert_complete(fake, media, outcome.remote_id)
    assert fake.calls("videos.insert") == 1  # one session, never a second video
    # after each 5xx, publisher asked the session where it stood (308) before sending again
    assert statuses(fake) == [308, 503, 308, 500, 308, 308, 308, 201]


def test_reset_mid_body_continues_from_the_servers_range(fake: YouTubeFake, media: Path) -> None:
    fake.faults.reset = {2}  # half of a 512 KiB chunk arrives: the server keeps 256 KiB of it
    ch = run.channel(media, options(fake, media, chunk_mib=0.5))
    outcome, attempts = run.publish_until_done(ch, job(media))
    assert attempts == 2
    assert_complete(fake, media, outcome.remote_id)
    assert fake.calls("videos.insert") == 1


def test_lost_answer_to_the_last_chunk_is_not_uploaded_again(fake: YouTubeFake, media: Path) -> None:
    fake.faults.drop_response = {4}
    ch = run.channel(media, options(fake, media))
    outcome, attempts = run.publish_until_done(ch, job(media))
    assert attempts == 2
    assert_complete(fake, media, outcome.remote_id)
    assert fake.calls("videos.insert") == 1 and fake.calls("channels.list") == 0


def test_token_expires_mid_upload(fake: YouTubeFake, media: Path) -> None:
    fake.faults.expire_token = {3}
    ch = run.channel(media, options(fake, media))
    outcome = ch.publish(job(media))  # refreshed once and carried on, no retry by the core
    assert_complete(fake, media, outcome.remote_id)
    assert statuses(fake, "token") == [200, 200]
    assert statuses(fake) == [308, 308, 401, 308, 308, 201]


@pytest.mark.parametrize("gone", [404, 410])
def test_expired_session_starts_again_after_looking_for_the_video(
        fake: YouTubeFake, media: Path, gone: int) -> None:
    fake.faults.session_gone = {3: gone}
    ch = run.channel(media, options(fake, media))
    outcome, attempts = run.publish_until_done(ch, job(media))
    assert attempts == 2
    assert_complete(fake, media, outcome.remote_id)
    assert fake.calls("videos.insert") == 2 and fake.calls("channels.list") == 1
    assert fake.calls("playlistItems.list") == 1


def test_finished_upload_behind_an_expired_session_is_found(fake: YouTubeFake, media: Path) -> None:
    fake.faults.drop_response = {4}  # the video is complete, the answer lost...
    ch = run.channel(media, options(fake, media))
    j = job(media)
    with pytest.raises(Transient):
        ch.publish(j)
    for s in fake.model.sessions.values():  # ...and the session expires before the rerun
        s.gone = 410
    outcome, _ = run.publish_until_done(ch, j)
    assert_complete(fake, media, outcome.remote_id)
    assert fake.calls("videos.insert") == 1 and fake.calls("channels.list") == 1


def test_a_5xx_on_captions_never_repeats_the_upload(fake: YouTubeFake, media: Path) -> None:
    fake.faults.api = {"captions.insert": [503], "thumbnails.set": [502]}
    ch = run.channel(media, options(fake, media))
    outcome, attempts = run.publish_until_done(ch, job(media))
    assert attempts == 3
    assert_complete(fake, media, outcome.remote_id)
    assert fake.calls("videos.insert") == 1 and fake.calls("chunk") == 4


def test_caption_inserted_by_a_run_that_died_is_not_duplicated(fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media))
    j = job(media)
    ch.publish(j)
    captions = j.journal.get("captions")
    del captions["zh-Hant"]
    j.journal.put("captions", captions)  # as if killed between captions.insert and its record
    ch.publish(j)
    assert statuses(fake, "captions.insert")[-1] == 409
    assert_complete(fake, media, j.journal.get("video_id"))


def clock(start: datetime) -> list[datetime]:
    return [start]


def test_budget_shortfall_defers_until_pacific_midnight_then_completes(
        fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media, quota={"daily_units": 1000}))
    now = [datetime(2026, 11, 27, 12, 0, tzinfo=UTC)]
    j = job(media, now=lambda: now[0])
    with pytest.raises(RateLimited) as err:
        ch.publish(j)
    assert err.value.exit_code == 75
    assert err.value.retry_at == datetime(2026, 11, 28, 0, 0, tzinfo=PACIFIC)
    assert "1000" in str(err.value)
    assert statuses(fake, "captions.insert") == [200, 200]  # the third did not fit: never sent
    now[0] = datetime(2026, 11, 28, 8, 1, tzinfo=UTC)  # 00:01 in Los Angeles
    outcome = ch.publish(j)
    assert_complete(fake, media, outcome.remote_id)
    assert fake.calls("videos.insert") == 1


def test_quota_exceeded_from_youtube_defers_and_stops_calling(fake: YouTubeFake, media: Path) -> None:
    fake.model.unit_limit = 1000
    ch = run.channel(media, options(fake, media))
    now = [datetime(2026, 11, 27, 12, 0, tzinfo=UTC)]
    j = job(media, now=lambda: now[0])
    with pytest.raises(RateLimited) as err:
        ch.publish(j)
    assert err.value.retry_at is not None and err.value.retry_at.astimezone(PACIFIC).hour == 0
    assert statuses(fake, "captions.insert") == [200, 200, 403]
    calls = len(fake.model.log)
    with pytest.raises(RateLimited):  # same day: the ledger knows, YouTube is not asked again
        ch.publish(j)
    assert len(fake.model.log) == calls
    fake.model.next_day()
    now[0] += timedelta(days=1)
    outcome = ch.publish(j)
    assert_complete(fake, media, outcome.remote_id)


def test_upload_bucket_is_separate(fake: YouTubeFake, media: Path) -> None:
    fake.model.upload_limit = 0
    ch = run.channel(media, options(fake, media))
    with pytest.raises(RateLimited, match="quota"):
        ch.publish(job(media))
    assert fake.calls("chunk") == 0
    ledger = run.quota(media, "immd-youtube")
    assert ledger["uploads"] == 100 and ledger["units"] < 10


def test_shared_quota_pool(fake: YouTubeFake, media: Path) -> None:
    opts = options(fake, media, quota={"daily_units": 1800}, quota_pool="gcp-hk")
    first = run.channel(media, opts, name="immd-youtube")
    first.publish(job(media))  # 1301 units
    second = run.channel(media, opts, name="ocmfa-youtube")
    with pytest.raises(RateLimited, match="gcp-hk"):
        second.publish(Job(release=run.release(media), journal=Journal(),
                           renditions=run.renditions(media)))
    assert statuses(fake, "captions.insert") == [200] * 4  # 1301 + 400 fits, one more would not
    ledger = run.quota(media, "gcp-hk")
    assert ledger["units"] == 1701 and ledger["uploads"] == 2
    assert run.quota(media, "immd-youtube") == {}  # the pool, not the channel, holds the budget
    assert not (media / "state" / "_quota").exists()  # nothing outside the channels' own folders


def test_upload_limit_is_a_rejection_with_youtubes_message(fake: YouTubeFake, media: Path) -> None:
    fake.model.channel_upload_cap = 0
    ch = run.channel(media, options(fake, media))
    with pytest.raises(Rejected, match="exceeded the number of videos"):
        ch.publish(job(media))


def test_forbidden_thumbnail_is_a_rejection_but_keeps_the_video(fake: YouTubeFake, media: Path) -> None:
    fake.model.custom_thumbnails = False
    ch = run.channel(media, options(fake, media))
    j = job(media)
    with pytest.raises(Rejected, match="custom video thumbnails"):
        ch.publish(j)
    vid = j.journal.get("video_id")
    assert vid and fake.live_videos() == [vid]
    fake.model.custom_thumbnails = True
    assert ch.publish(j).remote_id == vid
    assert_complete(fake, media, vid)


SPENDER = """
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from channels.youtube.options import QuotaOptions
from channels.youtube.quota import Ledger
from publisher.errors import RateLimited
from publisher.store import Store, sqlite_url

ledger = Ledger(Store(sqlite_url(Path(sys.argv[1]))).accounts, QuotaOptions(daily_units=1000), "pool")
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
spent = 0
for _ in range(15):
    try:
        ledger.spend("thumbnails.set", datetime(2026, 11, 27, 12, tzinfo=UTC))
        spent += 1
    except RateLimited:
        pass
print(spent)
"""


def test_two_processes_sharing_a_pool_never_exceed_its_budget(tmp_path: Path) -> None:
    """Two processes spend from one pool in the state store at once: 2 x 15 calls of 50 units
    against a budget of 1000. Exactly 20 fit, every one is counted, none beyond."""
    state = tmp_path / "state"
    Store(sqlite_url(state))  # the schema exists before both start
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", SPENDER, str(state), str(tmp_path / f"ready{i}"),
                               str(go)], stdout=subprocess.PIPE, text=True) for i in range(2)]
    for i in range(2):
        for _ in range(600):
            if (tmp_path / f"ready{i}").exists() or procs[i].poll() is not None:
                break
            time.sleep(0.05)
    go.touch()  # both start spending together
    spent = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(spent) == 20 and all(n > 0 for n in spent), spent
    store = Store(sqlite_url(state))
    record = store.accounts.update("youtube-quota:pool", dict)
    assert record == {"day": "2026-11-27", "units": 1000, "uploads": 0}
    ledger = Ledger(store.accounts, QuotaOptions(), "pool")
    # the Pacific day turns at 08:00 UTC in winter: a new day starts from zero
    assert ledger.used(datetime(2026, 11, 28, 8, 0, tzinfo=UTC)) == {"units": 0, "uploads": 0}
