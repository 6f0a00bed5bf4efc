"""An asyncio TCP fault proxy on 127.0.0.1, for putting connection faults between publisher and a
loopback server: latency, a reset (RST) after N bytes, a stall (stop forwarding, keep the socket
open). HTTP-level faults such as 5xx bursts are the servers' job; this works below TLS and HTTP.

    with FaultProxy(upstream_port) as proxy:
        proxy.add(Fault("reset", after=64_000))     # the next connection to send 64 kB is reset
        proxy.always = Fault("latency", delay=0.02)  # every connection without a queued fault
        ... point the client at proxy.port ...
        assert proxy.stats["resets"] == 1

Faults wait in a queue; each fires on the first connection whose byte count in the fault's
direction ("up": client to server, "down": server to client) reaches ``after``. For random
faults, ``proxy.random(rate, seed)`` gives each new connection that chance of a reset or stall
at a random point (log-uniform) of its first 256 kB. The proxy runs
in its own thread, listens only on 127.0.0.1, and stops by itself after ``lifetime`` seconds;
a stalled connection is dropped after ``stall_for`` seconds or when the proxy stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["reset", "stall", "latency"]
Direction = Literal["up", "down"]
_Pair = tuple[asyncio.StreamWriter, asyncio.StreamWriter]
CHUNK = 16 * 1024


@dataclass
class Fault:
    kind: FaultKind
    after: int = 0  # bytes in ``direction`` before it fires (reset, stall)
    direction: Direction = "up"
    delay: float = 0.0  # seconds per forwarded chunk (latency)


@dataclass
class _Conn:
    number: int
    fault: Fault | None = None  # a fault taken from the queue for this connection, once fired
    planned: Fault | None = None  # a random fault drawn for this connection when it opened
    up: int = 0
    down: int = 0
    stalled: bool = False
    stall_until: float = 0.0


class FaultProxy:
    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", lifetime: float = 120.0,
                 stall_for: float = 30.0) -> None:
        if upstream_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to loopback servers")
        self.upstream = (upstream_host, upstream_port)
        self.lifetime = lifetime
        self.stall_for = stall_for
        self.queue: deque[Fault] = deque()
        self.always: Fault | None = None  # applied to every connection (after the queue is empty)
        self.stats: Counter[str] = Counter()
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._count = 0
        self._rate = 0.0
        self._rng = random.Random(0)

    # --- control from tests ---------------------------------------------------------------------
    def add(self, *faults: Fault) -> None:
        with self._lock:
            self.queue.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self.queue.clear()
            self.always = None
            self._rate = 0.0

    def random(self, rate: float, seed: int = 0) -> None:
        """From now on each new connection gets a reset or a stall with probability ``rate``."""
        with self._lock:
            self._rate, self._rng = rate, random.Random(seed)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the event loop -------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._done = asyncio.Event()
        self._loop.call_later(self.lifetime, self._done.set)
        self._ready.set()
        await self._done.wait()
        await self._close_all()

    async def _shutdown(self) -> None:
        self._done.set()

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._count += 1
            conn = _Conn(self._count)
            if self._rate and self._rng.random() < self._rate:
                kind: FaultKind = "reset" if self._rng.random() < 0.5 else "stall"
                way: Direction = "down" if self._rng.random() < 0.3 else "up"
                after = int(2 ** self._rng.uniform(6, 18))  # 64 B .. 256 kB, log-uniform
                conn.planned = Fault(kind, after=after, direction=way)
        self.stats["connections"] += 1
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except asyncio.CancelledError:  # the proxy is stopping
            writer.transport.abort()
            return
        except OSError:
            self.stats["upstream_refused"] += 1
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        pair = (writer, up_writer)
        try:
            await asyncio.gather(self._pipe(conn, "up", reader, up_writer, pair),
                                 self._pipe(conn, "down", up_reader, writer, pair))
        except asyncio.CancelledError:  # the proxy is stopping
            pass
        finally:
            for w in pair:
                w.close()
                self._writers.discard(w)

    def _take(self, conn: _Conn, direction: str, count: int) -> Fault | None:
        """The connection/size fault that fires now for this connection, if any."""
        planned = conn.planned
        if conn.fault is None and planned is not None and planned.direction == direction \
                and count >= planned.after:
            conn.fault = planned
            return planned
        with self._lock:
            if conn.fault is None and self.queue:
                head = self.queue[0]
                if head.kind != "latency" and head.direction == direction and count >= head.after:
                    conn.fault = self.queue.popleft()
                    return conn.fault
            always = self.always
        if (conn.fault is None and always is not None and always.kind != "latency"
                and always.direction == direction and count >= always.after):
            conn.fault = always
            return always
        return None

    def _delay(self) -> float:
        with self._lock:
            head = self.queue[0] if self.queue else None
            always = self.always
        for f in (head, always):
            if f is not None and f.kind == "latency":
                return f.delay
        return 0.0

    async def _pipe(self, conn: _Conn, direction: str, src: asyncio.StreamReader,
                    dst: asyncio.StreamWriter, pair: _Pair) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if conn.stalled:
                    if direction == "down":
                        return
                    # keep draining the client so its close is seen; give up at the deadline
                    left = conn.stall_until - loop.time()
                    if left <= 0 or not await asyncio.wait_for(src.read(CHUNK), left):
                        pair[0].transport.abort()
                        return
                    continue
                data = await src.read(CHUNK)
                if not data:
                    if not conn.stalled:
                        with contextlib.suppress(OSError, RuntimeError):
                            dst.write_eof()
                    return
                before = conn.up if direction == "up" else conn.down
                fault = self._take(conn, direction, before + len(data))
                if fault is not None:
                    allowed = max(0, fault.after - before)
                    if allowed:
                        dst.write(data[:allowed])
                        await dst.drain()
                    if fault.kind == "reset":
                        self.stats["resets"] += 1
                        for w in pair:
                            _rst(w)
                        return
                    # stall: the server side goes (freeing its worker); the client hears nothing
                    self.stats["stalls"] += 1
                    conn.stalled = True
                    conn.stall_until = loop.time() + self.stall_for
                    pair[1].transport.abort()
                    continue
                delay = self._delay()
                if delay:
                    self.stats["delayed_chunks"] += 1
                    await asyncio.sleep(delay)
                if direction == "up":
                    conn.up += len(data)
                else:
                    conn.down += len(data)
                self.stats[f"bytes_{direction}"] += len(data)
                dst.write(data)
                await dst.drain()
        except (TimeoutError, ConnectionError, OSError):
            if not conn.stalled or direction == "up":
                for w in pair:
                    w.transport.abort()


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a middlebox or crashed peer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
