"""``callscribe`` command line — with :mod:`server.compose`, the composition root.

User errors (bad audio, unknown profile, locked database, missing model) print one line
``callscribe: error: …`` on stderr and exit with status 1; usage errors exit with 2 (argparse).
Settings flags override ``CALLSCRIBE_*`` environment variables, which override the defaults
(:mod:`server.settings`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from turn.coturn import TurnError

from . import logs
from .errors import CallscribeError

# CLI flag → Settings field (only flags given on the command line override the environment)
_SETTING_FLAGS = {
    "database": "database",
    "model": "whisper_model",
    "device": "device",
    "compute_type": "compute_type",
    "vad": "vad",
    "threshold": "speaker_threshold",
    "silence_ms": "silence_ms",
    "max_utterance_s": "max_utterance_s",
    "language": "language",
    "workers": "asr_workers",
    "host": "host",
    "port": "port",
    "cert": "cert",
    "key": "key",
    "max_peers": "max_peers",
    "idle_timeout_s": "idle_timeout_s",
    "ice_host": "ice_host_addresses",
    "api_key": "api_key",
    "insecure_no_auth": "insecure_no_auth",
    "sentiment": "sentiment",
    "redis": "redis_url",
    "public_url": "public_url",
    "node_id": "node_id",
}


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings (override CALLSCRIBE_* environment variables)")
    g.add_argument("--database", help="the database: a SQLite file, or a URL such as postgresql+psycopg://user@host/db "
                   "(several nodes share one PostgreSQL)")
    g.add_argument("--model", help="Whisper model: base, tiny.en, or a local CTranslate2 directory")
    g.add_argument("--device", choices=["cpu", "cuda", "auto"])
    g.add_argument("--compute-type", help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA)")
    g.add_argument("--vad", choices=["webrtc", "silero"])
    g.add_argument("--threshold", type=float, help="cosine similarity needed to name a speaker")
    g.add_argument("--silence-ms", type=int, help="trailing silence that ends an utterance")
    g.add_argument("--max-utterance-s", type=float, help="force-cut utterances at this length")
    g.add_argument("--workers", type=int, help="parallel decodes on the shared model")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callscribe", description="Realtime speaker-labelled transcription.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe a recording with speaker labels")
    t.add_argument("audio", type=Path, help="any file PyAV/FFmpeg decodes (any rate, any channels)")
    t.add_argument("--language", help="ISO 639-1 code (e.g. en, ko); default: detect per utterance")
    t.add_argument("--format", choices=["text", "json", "srt", "vtt", "rttm"], default="text",
                   help="rttm: NIST speaker turns (with --diarize: the diarization itself, overlap kept)")
    t.add_argument("--words", action="store_true", help="include word timings (json)")
    t.add_argument("--no-sentiment", dest="sentiment", action="store_false", default=None,
                   help="no sentiment per final (CALLSCRIBE_SENTIMENT=false)")
    d = t.add_argument_group("diarization (whole file: pyannote segmentation-3.0 + CAM++ clustering)")
    d.add_argument("--diarize", action="store_true",
                   help="find who spoke when in the whole file first; voices matching no profile become "
                        "'Speaker 1', 'Speaker 2', …")
    d.add_argument("--num-speakers", type=int, metavar="N", help="exactly N speakers (with --diarize)")
    d.add_argument("--min-speakers", type=int, metavar="N", help="at least N speakers (with --diarize)")
    d.add_argument("--max-speakers", type=int, metavar="N", help="at most N speakers (with --diarize)")
    t.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    _common(t)

    an = sub.add_parser("analyze", help="analyse a recording: diarized transcript with word timings, acoustic "
                        "features per word, sentiment, per-speaker statistics")
    an.add_argument("audio", type=Path, help="any audio or video file PyAV/FFmpeg decodes (its audio track is used)")
    an.add_argument("--language", help="ISO 639-1 code (e.g. en, ko); default: detect")
    an.add_argument("--format", choices=["json", "text", "txt", "srt", "vtt", "rttm"], default="json",
                    help="json: the whole result (words, features, sentiment, statistics)")
    an.add_argument("--no-diarize", dest="diarize", action="store_false",
                    help="attribute speakers utterance by utterance (the live path) instead of diarizing the file")
    an.add_argument("--num-speakers", type=int, metavar="N")
    an.add_argument("--min-speakers", type=int, metavar="N")
    an.add_argument("--max-speakers", type=int, metavar="N")
    an.add_argument("--no-features", dest="features", action="store_false", help="skip acoustic features")
    an.add_argument("--no-sentiment", dest="sentiment", action="store_false", default=None, help="skip sentiment")
    an.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    _common(an)

    e = sub.add_parser("enroll", help="create a voice profile from recordings (≥ 3 s of speech), or --add to one")
    e.add_argument("name", help="display name of the speaker")
    e.add_argument("audio", type=Path, nargs="+")
    e.add_argument("--add", action="store_true",
                   help="add the speech to the existing profile of that name (without it an existing name is refused)")
    _common(e)

    sv = sub.add_parser("serve", help="run the WebRTC server (signaling, pages, API)")
    sv.add_argument("--host", help="bind address (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="HTTP(S) port (default 8080)")
    sv.add_argument("--cert", type=Path, help="TLS certificate (PEM)")
    sv.add_argument("--key", type=Path, help="TLS private key (PEM)")
    sv.add_argument("--max-peers", type=int, help="concurrent calls before 503 server_busy")
    sv.add_argument("--idle-timeout-s", type=float, help="close calls with neither speech nor messages this long")
    sv.add_argument("--ice-host", action="append", help="gather ICE host candidates only on this address (repeat)")
    sv.add_argument("--no-sentiment", dest="sentiment", action="store_false", default=None,
                    help="no sentiment update after each final (CALLSCRIBE_SENTIMENT=false)")
    cl = sv.add_argument_group("several nodes (docs/cluster.md)")
    cl.add_argument("--redis", metavar="URL", help="join a cluster through this Redis (redis://host:6379/0): node "
                    "registry, calls redirected by load, room events across nodes, the shared job queue")
    cl.add_argument("--public-url", metavar="URL", help="this node's URL as clients and other nodes reach it "
                    "(redirects point here; default http(s)://host:port)")
    cl.add_argument("--node-id", help="this node's name in the registry (default hostname:port)")
    a = sv.add_argument_group("access control")
    a.add_argument("--api-key", help="operator key (Authorization: Bearer KEY) that turns access control on; prefer "
                   "CALLSCRIBE_API_KEY, command lines are visible to other users of the machine")
    a.add_argument("--insecure-no-auth", action="store_true", default=None,
                   help="serve a non-loopback --host WITHOUT any access control (only on a trusted network)")
    _common(sv)

    wk = sub.add_parser("worker", help="run analysis jobs from the shared queue (no HTTP server, no calls): on "
                        "any machine that reaches the database and Redis")
    wk.add_argument("--redis", metavar="URL", help="the cluster's Redis (redis://host:6379/0): the shared job queue "
                    "and the registry this worker heartbeats in, so a job it leaves when killed is re-run elsewhere")
    wk.add_argument("--jobs", type=int, metavar="N", help="jobs run at once (default CALLSCRIBE_JOB_WORKERS, at "
                    "least 1)")
    wk.add_argument("--node-id", help="this worker's name in the registry and in the jobs it runs (default "
                    "hostname:pid)")
    _common(wk)

    tk = sub.add_parser("token", help="mint a room token and invite link (signed offline with the server's secret)")
    tk.add_argument("--room", required=True, help="the room the token is limited to")
    tk.add_argument("--role", required=True, choices=["speaker", "viewer"],
                    help="speaker: call and enroll in the room; viewer: follow it")
    tk.add_argument("--ttl", type=int, metavar="S", help="lifetime in seconds (default CALLSCRIBE_TOKEN_TTL_S, 3600)")
    tk.add_argument("--server", help="the server's public URL for the invite link (default: from --host/--port)")
    tk.add_argument("--api-key", help="the server's API key (default CALLSCRIBE_API_KEY; or CALLSCRIBE_TOKEN_SECRET)")
    tk.add_argument("-v", "--verbose", action="count", default=0)

    c = sub.add_parser("call", help="send a recording to a server over WebRTC and print its transcript live")
    c.add_argument("audio", type=Path)
    c.add_argument("--server", required=True, help="server URL, e.g. http://127.0.0.1:8080")
    c.add_argument("--enroll", action="append", default=[], metavar="NAME=AUDIO",
                   help="enroll a voice over the data channel first (repeat for several speakers)")
    c.add_argument("--speed", type=float, default=1.0, help="send N times faster than real time (default 1)")
    c.add_argument("--language", help="ISO 639-1 code; default: detect per utterance")
    c.add_argument("--room", help="room to join (default: a new one)")
    c.add_argument("--json", action="store_true", help="print every message as a JSON line")
    c.add_argument("--relay", action="store_true", help="send media only through the server's TURN relay")
    c.add_argument("--ice-host", action="append", help="gather ICE host candidates only on this address (repeat)")
    c.add_argument("--token", help="a speaker token for the room (callscribe token) or the API key")
    c.add_argument("--add", action="store_true", help="--enroll adds to profiles that exist (else refused)")
    c.add_argument("-v", "--verbose", action="count", default=0)

    tu = sub.add_parser("turn", help="run coturn (TURN relay) with callscribe's shared secret, for local use")
    tu.add_argument("--listen", default="127.0.0.1", help="address coturn listens and relays on")
    tu.add_argument("--port", type=int, help="TURN port (default: CALLSCRIBE_TURN_PORT, 3478)")
    tu.add_argument("--min-port", type=int, default=49160, help="relay port range start")
    tu.add_argument("--max-port", type=int, default=49200, help="relay port range end")
    tu.add_argument("--allow-loopback-peers", action="store_true",
                    help="let the relay reach a callscribe server on 127.0.0.1 (one-box setups, tests)")
    tu.add_argument("-v", "--verbose", action="count", default=0)

    ls = sub.add_parser("listen", help="follow a room's transcript live (what was said so far first)")
    ls.add_argument("room")
    ls.add_argument("--server", required=True, help="server URL, e.g. http://127.0.0.1:8080")
    ls.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    ls.add_argument("--json", action="store_true", help="print every message as a JSON line")
    ls.add_argument("--ice-host", action="append", help="gather ICE host candidates only on this address (repeat)")
    ls.add_argument("--token", help="a viewer or speaker token for the room (callscribe token) or the API key")
    ls.add_argument("-v", "--verbose", action="count", default=0)

    se = sub.add_parser("sentiment", help="label lines of text on standard input positive / negative / neutral "
                        "(one JSON object per line)")
    se.add_argument("--language", choices=["en", "ko"], help="default: per line, Hangul → ko, else en")
    se.add_argument("-v", "--verbose", action="count", default=0)

    pr = sub.add_parser("profiles", help="list, rename or delete voice profiles")
    psub = pr.add_subparsers(dest="action", required=True)
    _common(psub.add_parser("list", help="list enrolled voice profiles"))
    rn = psub.add_parser("rename", help="rename a voice profile")
    rn.add_argument("old")
    rn.add_argument("new")
    _common(rn)
    de = psub.add_parser("delete", help="delete a voice profile")
    de.add_argument("name")
    _common(de)
    return parser


def _settings(args: argparse.Namespace):
    from .settings import Settings

    overrides = {field: getattr(args, flag) for flag, field in _SETTING_FLAGS.items()
                 if getattr(args, flag, None) is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise CallscribeError(f"invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from .audio.ingest import probe
    from .compose import build_runtime
    from .export.formats import render

    counts = {"num_speakers": args.num_speakers, "min_speakers": args.min_speakers,
              "max_speakers": args.max_speakers}
    if args.diarize:
        from .speaker.diarization import check_speaker_counts

        check_speaker_counts(**counts)
    elif any(v is not None for v in counts.values()):
        raise CallscribeError("--num-speakers, --min-speakers and --max-speakers need --diarize")
    settings = _settings(args)
    info = probe(args.audio)  # fail fast on bad input, before loading models
    runtime = build_runtime(settings)
    annotation = None
    try:
        if args.diarize:
            finals, annotation = _diarized(runtime, args, counts, info.duration_s)
        else:
            finals = _streamed(runtime, args, info.duration_s)
    finally:
        runtime.close()
    meta = {"file": str(args.audio), "duration_s": info.duration_s, "model": settings.whisper_model}
    if args.diarize:
        meta["diarization"] = {k: v for k, v in counts.items() if v is not None}
    out = render(finals, args.format, meta, annotation=annotation)
    if args.output:
        args.output.write_text(out, encoding="utf-8")
    else:
        sys.stdout.write(out)
    return 0


class _Bar:
    """A tqdm progress bar on a terminal (one per stage), nothing otherwise."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name, self.enabled, self.bar = name, enabled, None

    def stage(self, desc: str, total_s: float) -> None:
        self.close()
        if self.enabled and total_s:
            from tqdm import tqdm

            self.bar = tqdm(total=round(total_s, 1), unit="s", desc=desc, file=sys.stderr,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                                       "[{elapsed}<{remaining}]")

    def __call__(self, seconds: float) -> None:
        if self.bar is not None:
            self.bar.update(min(seconds, self.bar.total) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _streamed(runtime, args: argparse.Namespace, duration_s: float | None):
    from .stream.filemode import transcribe_file

    bar = _Bar(args.audio.name, bool(duration_s and duration_s >= 30 and sys.stderr.isatty()))
    bar.stage(args.audio.name, duration_s or 0.0)
    try:
        return transcribe_file(runtime, args.audio, language=args.language, word_timestamps=args.words,
                               progress=bar)
    finally:
        bar.close()


def _diarized(runtime, args: argparse.Namespace, counts: dict, duration_s: float | None):
    """``transcribe --diarize``: the finals (words kept only with ``--words``) and the relabelled diarization."""
    from .stream.diarize import diarize_file

    bar = _Bar(args.audio.name, sys.stderr.isatty())
    if bar.enabled:
        print(f"callscribe: loading the diarization pipeline for {args.audio.name}", file=sys.stderr, flush=True)
    try:
        result = diarize_file(runtime, args.audio, language=args.language, progress=bar,
                              on_stage=lambda name, total: bar.stage(f"{name} {args.audio.name}", total),
                              **counts)
    finally:
        bar.close()
    finals = result.finals if args.words else [f.model_copy(update={"words": None}) for f in result.finals]
    return finals, result.annotation


def _cmd_analyze(args: argparse.Namespace) -> int:
    """``callscribe analyze``: what an analysis job does (:func:`server.analysis.pipeline.analyze_file`), with a
    progress bar on a terminal."""
    import json

    from .analysis.options import AnalysisOptions
    from .analysis.pipeline import analyze_file
    from .analysis.result import finals_of
    from .audio.ingest import probe
    from .compose import build_runtime
    from .export.formats import render

    try:
        options = AnalysisOptions(language=args.language, diarize=args.diarize, num_speakers=args.num_speakers,
                                  min_speakers=args.min_speakers, max_speakers=args.max_speakers,
                                  features=args.features, sentiment=args.sentiment is not False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f" --{str(p).replace('_', '-')}" for p in first["loc"])
        raise CallscribeError(f"invalid option{where}: {first['msg'].removeprefix('Value error, ')}") from None
    probe(args.audio)  # fail fast on bad input, before loading models
    runtime = build_runtime(_settings(args))
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=100, file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")

    def progress(percent: float, stage: str, message: str) -> None:
        if bar is not None:
            bar.set_description_str(message, refresh=False)
            bar.update(max(0.0, percent - bar.n))

    try:
        result = analyze_file(runtime, args.audio, options, progress=progress, background=False).result
    finally:
        if bar is not None:
            bar.close()
        runtime.close()
    fmt = "text" if args.format == "txt" else args.format
    if fmt == "json":
        out = json.dumps({"file": str(args.audio), **result}, ensure_ascii=False, indent=1) + "\n"
    else:
        out = render(finals_of(result), fmt, {"file": str(args.audio)})
    if args.output:
        args.output.write_text(out, encoding="utf-8")
    else:
        sys.stdout.write(out)
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    from .compose import build_runtime
    from .speaker.profile import check_name
    from .stream.filemode import enroll_files

    check_name(args.name)
    runtime = build_runtime(_settings(args), load_asr=False)
    try:
        _refuse_existing(runtime.store, args.name, args.add)
        done = enroll_files(runtime, args.name, args.audio, add=args.add)
        profile = runtime.store.get(done.name)
    finally:
        runtime.close()
    print(f"enrolled {profile.name!r} (profile {profile.id}): {done.speech_s:.1f} s of speech; "
          f"profile now {profile.enrollments} enrollment(s), {profile.speech_s:.1f} s")
    return 0


def _refuse_existing(store, name: str, add: bool) -> None:
    """Raises CallscribeError when a profile ``name`` exists and ``add`` is not given."""
    from .errors import ProfileNotFound

    if add:
        return
    try:
        existing = store.get(name)
    except ProfileNotFound:
        return
    raise CallscribeError(f"a voice profile named {existing.name!r} already exists ({existing.enrollments} "
                          f"enrollment(s), {existing.speech_s:.1f} s): pass --add to add this speech to it, or choose "
                          "another name")


def _cmd_profiles(args: argparse.Namespace) -> int:
    from .store.profiles import ProfileStore

    store = ProfileStore(_settings(args).database)
    try:
        if args.action == "list":
            profiles = store.list()
            if not profiles:
                print("no voice profiles enrolled")
            for p in profiles:
                print(f"{p.id:>4}  {p.name:<24} {p.speech_s:6.1f} s speech  {p.enrollments} enrollment(s)")
        elif args.action == "rename":
            p = store.rename(args.old, args.new)
            print(f"renamed {args.old!r} to {p.name!r}")
        elif args.action == "delete":
            store.delete(args.name)
            print(f"deleted {args.name!r}")
    finally:
        store.close()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import ssl

    from aiohttp import web

    from signaling.auth import check_exposure

    from .compose import build_runtime, create_app, ice_servers
    from .webrtc.ice import configure_host_addresses

    settings = _settings(args)
    if bool(settings.cert) != bool(settings.key):
        raise CallscribeError("--cert and --key go together")
    warning = check_exposure(settings)  # before anything loads: an open server on a public address is refused
    if warning is not None:
        logging.getLogger("callscribe").warning(warning)
        print(f"callscribe: {warning}", file=sys.stderr, flush=True)
    ssl_context = None
    if settings.cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(settings.cert, settings.key)
        except (OSError, ssl.SSLError) as exc:
            raise CallscribeError(f"cannot load the TLS certificate/key: {exc}") from None
    configure_host_addresses(settings.ice_host_addresses)
    ice = ice_servers(settings)  # a TURN misconfiguration fails here, before the models load
    runtime = build_runtime(settings)
    scheme = "https" if ssl_context else "http"
    print(f"callscribe: serving on {scheme}://{settings.host}:{settings.port}/ (Ctrl-C to stop)", flush=True)
    try:
        web.run_app(create_app(runtime, ice=ice), host=settings.host, port=settings.port, ssl_context=ssl_context,
                    print=None, access_log=None)
    except OSError as exc:
        raise CallscribeError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    finally:
        runtime.close()
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    """``callscribe worker``: ``--jobs`` analysis-job threads on the queue of :func:`server.jobs.service.queue_target`
    (``--redis``: the cluster's huey Redis queue, https://huey.readthedocs.io) over the shared ``--database``, until
    SIGINT or SIGTERM; then a running job gets :meth:`JobService.stop`'s timeout to finish (else another worker
    re-runs it). With ``--redis`` the worker heartbeats in the node registry under its runner name and sweeps for
    jobs whose worker died (:mod:`server.jobs.liveness`). Prints one line once it takes jobs."""
    import signal
    import threading

    from .cluster.registry import NodeRegistry, connect
    from .compose import build_runtime
    from .jobs.service import JobService, queue_target
    from .store.jobs import JobStore

    settings = _settings(args)
    if args.jobs is not None and args.jobs < 1:
        raise CallscribeError("--jobs must be at least 1")
    jobs = max(1, settings.job_workers if args.jobs is None else args.jobs)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    service = None
    try:
        runtime = build_runtime(settings)
        try:
            registry = NodeRegistry(connect(settings.redis_url), settings.node_ttl_s) if settings.redis_url else None
            service = JobService(runtime, JobStore(runtime.store.database), registry=registry,
                                 worker=settings.node_id)
            if not stop.is_set():  # a signal while the models loaded: stop before taking any job
                service.start(workers=jobs, heartbeat=True)
                print(f"callscribe: worker {service.runner.worker} running {jobs} job worker"
                      f"{'s' if jobs != 1 else ''} on {_redacted(queue_target(settings))} (Ctrl-C to stop)",
                      flush=True)
                stop.wait()
                logging.getLogger(__name__).info("worker stopping", extra={"worker": service.runner.worker})
        finally:
            if service is not None:
                service.stop()
            runtime.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _redacted(target) -> str:
    """A queue location for printing: a URL's password replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    text = str(target)
    parts = urlsplit(text)
    if "://" not in text or parts.password is None:
        return text
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _cmd_call(args: argparse.Namespace) -> int:
    import asyncio

    from signaling.client import call_file

    from .audio.ingest import load_audio
    from .webrtc.ice import configure_host_addresses

    settings = _settings(args)
    configure_host_addresses(settings.ice_host_addresses)
    voices = []
    for spec in args.enroll:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CallscribeError(f"--enroll takes NAME=AUDIO, got {spec!r}")
        voices.append((name, load_audio(path)))
    audio = load_audio(args.audio)

    # ICE servers come from the server (/api/ice-servers: TURN with fresh credentials) unless set locally
    result = asyncio.run(call_file(args.server, audio, enroll=voices, ice_servers=settings.ice_servers or None,
                                   speed=args.speed, language=args.language, room=args.room,
                                   on_message=_printer(args.json), relay_only=args.relay, token=args.token,
                                   add=args.add))
    return 1 if result.errors else 0


def _printer(as_json: bool):
    """Print server messages: JSON lines, or chat lines (finals) with partials and notices on stderr."""
    import json

    from .export.formats import chat_line
    from .stream.events import Final

    def show(message: dict) -> None:
        if as_json:
            print(json.dumps(message, ensure_ascii=False), flush=True)
        elif message["type"] == "final" and message["text"]:
            final = Final.model_validate({k: v for k, v in message.items() if k in Final.model_fields})
            print(chat_line(final), flush=True)
        elif message["type"] == "partial":
            print(f"  … {message['text']}", file=sys.stderr, flush=True)
        elif message["type"] in ("enrollment_completed", "enrollment_failed", "error"):
            detail = message.get("reason") or message.get("message") or message.get("name", "")
            print(f"callscribe: {message['type']}: {detail}", file=sys.stderr, flush=True)

    return show


def _cmd_turn(args: argparse.Namespace) -> int:
    import subprocess

    from turn.coturn import CoturnConfig, start

    settings = _settings(args)
    cfg = CoturnConfig(secret=settings.turn_secret or "", listening_ip=args.listen,
                       port=args.port or settings.turn_port, min_port=args.min_port, max_port=args.max_port,
                       allow_loopback_peers=args.allow_loopback_peers)
    proc, conf = start(cfg)
    print(f"callscribe: coturn on turn:{cfg.listening_ip}:{cfg.port} (config {conf}); clients get credentials "
          f"valid {settings.turn_ttl_s} s from /api/ice-servers", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
    finally:
        conf.unlink(missing_ok=True)
        conf.parent.rmdir()


def _cmd_listen(args: argparse.Namespace) -> int:
    import asyncio

    from signaling.client import listen

    from .webrtc.ice import configure_host_addresses

    settings = _settings(args)
    configure_host_addresses(settings.ice_host_addresses)
    try:
        asyncio.run(listen(args.server, args.room, seconds=args.seconds, ice_servers=settings.ice_servers or None,
                           on_message=_printer(args.json), token=args.token))
    except KeyboardInterrupt:
        pass
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    """Print a room token (first line) and its invite URL (second line); what it allows and until when on
    stderr. Signed offline with the same secret as the server (``CALLSCRIBE_TOKEN_SECRET``, or derived from
    ``CALLSCRIBE_API_KEY``), so the server must share those settings."""
    import datetime

    from signaling.auth import Authenticator, invite_path

    settings = _settings(args)
    authn = Authenticator(settings)
    if not authn.can_mint:
        raise CallscribeError("no API key (CALLSCRIBE_API_KEY or --api-key) or token secret (CALLSCRIBE_TOKEN_SECRET) "
                              "to sign the token with: use the server's")
    minted = authn.mint(args.room, args.role, args.ttl)
    base = args.server or f"{'https' if settings.cert else 'http'}://{settings.host}:{settings.port}"
    print(minted.token)
    print(base.rstrip("/") + invite_path(minted.room, minted.role, minted.token), flush=True)
    until = datetime.datetime.fromtimestamp(minted.expires_at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"callscribe: {minted.role} token for room {minted.room!r}, valid until {until}", file=sys.stderr)
    return 0


def _cmd_sentiment(args: argparse.Namespace) -> int:
    """``callscribe sentiment``: each line of stdin → ``{"label", "score"}`` on stdout (nulls for an empty or
    punctuation-only line), flushed per line (:class:`server.sentiment.TextSentiment`)."""
    import json

    from .sentiment import TextSentiment

    classifier = TextSentiment()
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")  # undecodable bytes become U+FFFD, not a traceback
    for line in sys.stdin:
        s = classifier.classify(line.rstrip("\r\n"), args.language)
        print(json.dumps({"label": s.label if s else None, "score": s.score if s else None}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.verbose)
    handlers = {"transcribe": _cmd_transcribe, "analyze": _cmd_analyze, "enroll": _cmd_enroll,
                "profiles": _cmd_profiles, "serve": _cmd_serve, "call": _cmd_call, "listen": _cmd_listen,
                "turn": _cmd_turn, "token": _cmd_token, "sentiment": _cmd_sentiment, "worker": _cmd_worker}
    try:
        return handlers[args.command](args)
    except (CallscribeError, TurnError) as exc:
        print(f"callscribe: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("callscribe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
