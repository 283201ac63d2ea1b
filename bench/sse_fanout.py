"""Fan-out of one room to many read-only viewers over server-sent events, across two nodes.

Node A (where the call would be) publishes finals into room ``fanout``; node B holds ``--viewers`` SSE viewers of
that room (``GET /api/rooms/fanout/events``), connected from a separate client process (so their parsing does not
share node B's event loop). Both nodes run in this process on loopback ports with one real Redis (Debian's
redis-server, started here and stopped at the end) and one database (a SQLite file, or a throwaway PostgreSQL
with ``--postgres``). Each final is a real :class:`server.stream.events.Final` published through node A's room
(stored in the database, appended to the room's Redis stream), read by node B from the stream and written to
every viewer. Delay = the viewer's receive time − the final's ``server_time`` (one machine, one clock).

Prints: p50/p95/p99/max delay, messages received / expected, Redis commands per final (``INFO commandstats``
before and after), the machine and its load. Usage::

    .venv/bin/python bench/sse_fanout.py --viewers 1000 --finals 40 --rate 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, f, guard_network, loadavg, machine_summary, pct, set_offline_env

set_offline_env()
guard_network("bench/sse_fanout.py", allow_loopback=True)  # 127.0.0.1 only
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway Redis / PostgreSQL servers of the tests

import aiohttp  # noqa: E402
import redis  # noqa: E402


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def viewers_process(url: str, n: int, seconds: float, ready, out) -> None:
    """Child process: ``n`` SSE viewers of ``url`` for ``seconds``; puts (connected, [delays], received) on ``out``."""
    _raise_nofile()
    import json

    async def main():
        delays: list[float] = []
        received = [0]
        connected = [0]

        async def one(http):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=seconds + 30, sock_read=seconds + 30)) as r:
                connected[0] += 1
                async for line in r.content:
                    if line.startswith(b"data:"):
                        m = json.loads(line[5:])
                        if m.get("type") == "final" and not m.get("backlog"):
                            delays.append(time.time() - m["server_time"])
                            received[0] += 1

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            tasks = [asyncio.create_task(one(http)) for _ in range(n)]
            deadline = time.monotonic() + 60
            while connected[0] < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            ready.set()
            await asyncio.sleep(seconds)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        out.put((connected[0], delays, received[0]))

    asyncio.run(main())


def command_calls(client: redis.Redis) -> int:
    return sum(v["calls"] for v in client.info("commandstats").values())


async def run(args) -> None:
    from aiohttp.test_utils import TestServer
    from postgres_server import free_port
    from redis_server import RedisServer

    from server.compose import create_app
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings
    from server.stream.events import Final

    load_start = loadavg()
    redis_srv = RedisServer()
    pg = None
    tmp = Path(tempfile.mkdtemp(prefix="callscribe-fanout-"))
    try:
        if args.postgres:
            from postgres_server import PostgresServer
            pg = PostgresServer()
            database = pg.url()
        else:
            database = str(tmp / "db.sqlite3")
        apps, servers = {}, []
        for name in ("a", "b"):
            port = free_port()
            settings = Settings(database=database, redis_url=redis_srv.url, node_id=name, port=port,
                                public_url=f"http://127.0.0.1:{port}", jobs_dir=tmp / f"jobs-{name}", job_workers=0,
                                sentiment=False, max_sse_viewers=args.viewers + 10, model_cache_dir=args.cache)
            runtime = SpeechRuntime.from_settings(settings, load_asr=False)
            app = create_app(runtime, settings)
            server = TestServer(app, host="127.0.0.1", port=port)
            await server.start_server()
            apps[name], servers = (app, port), [*servers, (server, runtime)]
        from signaling.app import ROOMS

        room = apps["a"][0][ROOMS].get("fanout")
        room.join("bench-caller", "Bench")
        url = f"http://127.0.0.1:{apps['b'][1]}/api/rooms/fanout/events"
        seconds = args.finals / args.rate + 5
        ctx = mp.get_context("spawn")
        ready, out = ctx.Event(), ctx.Queue()
        child = ctx.Process(target=viewers_process, args=(url, args.viewers, seconds, ready, out))
        child.start()
        await asyncio.to_thread(ready.wait, 90)
        await asyncio.sleep(1.0)
        stats = redis.Redis.from_url(redis_srv.url)
        calls_before = command_calls(stats)
        for i in range(args.finals):
            room.publish(Final(utterance_id=i, start=i, end=i + 0.9, speaker="Speaker 1", speaker_id="anon:1",
                               speaker_kind="anonymous", score=0.8, speaker_reason="cluster",
                               text=f"Final number {i} of the fan-out benchmark.", language="en"),
                         "bench-caller", "Bench")
            await asyncio.sleep(1 / args.rate)
        await asyncio.sleep(2.0)
        calls = command_calls(stats) - calls_before
        connected, delays, received = await asyncio.to_thread(out.get, True, seconds + 60)
        child.join(30)
        for server, runtime in servers:
            await server.close()
            runtime.close()
        expected = args.finals * args.viewers
        print("bench/sse_fanout.py — one room, SSE viewers on node B, finals published on node A (Redis stream)")
        print(f"  {machine_summary(load_start)}; load avg at end {loadavg()}")
        print(f"  database: {'PostgreSQL' if pg else 'SQLite'}; viewers connected {connected}/{args.viewers}; "
              f"finals {args.finals} at {args.rate}/s")
        print(f"  received {received}/{expected} ({100 * received / max(1, expected):.1f} %)")
        if delays:
            print(f"  delay final -> viewer: p50 {f(pct(delays, 50) * 1000, 1)} ms, p95 {f(pct(delays, 95) * 1000, 1)}"
                  f" ms, p99 {f(pct(delays, 99) * 1000, 1)} ms, max {f(max(delays) * 1000, 1)} ms")
        print(f"  Redis commands per final (all nodes, incl. heartbeats and blocking reads over the run): "
              f"{calls / args.finals:.1f}; database writes per final: 1 INSERT (SessionRecorder.final)")
    finally:
        redis_srv.stop()
        if pg is not None:
            pg.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--viewers", type=int, default=1000)
    p.add_argument("--finals", type=int, default=40)
    p.add_argument("--rate", type=float, default=2.0, help="finals per second")
    p.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of a SQLite file")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cs-cache")
    _raise_nofile()
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
