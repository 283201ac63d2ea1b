"""Helpers shared by the benchmark scripts in bench/ (speech_core.py, webrtc_latency.py).

Imported as ``from common import ...``: Python puts a script's own folder first on ``sys.path``, so this works
when a script is run as ``.venv/bin/python bench/<script>.py``. Importing this module loads numpy and
``server`` (constants only) and inserts the project root on ``sys.path``; it does not touch the network and
installs nothing by itself: call :func:`set_offline_env` and :func:`guard_network` first thing.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server import SAMPLE_RATE  # noqa: E402

SR = SAMPLE_RATE


# =====================================================================================================
# offline: hub variables and the in-process network guard
# =====================================================================================================
def set_offline_env() -> None:
    """Put the model hubs offline and switch their telemetry off, before anything that could reach one is imported.

    pyannote.audio (speaker-turn splitting) sends an OpenTelemetry span to otel.pyannote.ai on every model load
    unless PYANNOTE_METRICS_ENABLED is false; forced, not defaulted: a benchmark must never reach the network.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"


from netguard import NET_ATTEMPTS, guard_network  # noqa: E402, F401  (re-exported for the bench scripts)


def net_attempts_summary() -> str:
    """The count of refused network attempts, with the first five in parentheses."""
    return f"{len(NET_ATTEMPTS)}" + (f" ({'; '.join(NET_ATTEMPTS[:5])})" if NET_ATTEMPTS else "")


# =====================================================================================================
# formatting
# =====================================================================================================
def pct(values, q: float) -> float:
    """The q-th percentile of the non-None values (nan when there are none)."""
    v = [x for x in values if x is not None]
    return float(np.percentile(v, q)) if v else float("nan")


def f(x, nd: int = 2, unit: str = "") -> str:
    """``x`` with ``nd`` decimals and ``unit`` appended; '-' for None or a float nan."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{nd}f}{unit}"


def _numeric(s: str, first_word: bool = False) -> bool:
    if first_word:
        s = s.split(" ")[0]
    try:
        float(s.rstrip("%sx").replace("/", ""))
        return True
    except ValueError:
        return False


def table(headers: list[str], rows: list[list], indent: str = "  ", first_word: bool = False) -> None:
    """Print a plain-text table: numeric cells right-aligned, the last column and text left-aligned.

    ``first_word``: judge a cell numeric by its first space-separated word (so '1.2 / 3.4' is numeric).
    """
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        print(indent + "  ".join(c.ljust(w) if i == len(r) - 1 or not _numeric(c, first_word) else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths, strict=False))).rstrip())
        if n == 0:
            print(indent + "  ".join("-" * w for w in widths))


def section(title: str, width: int = 96) -> None:
    """Print a section header ``=== title ====…``, ``width`` columns past the '=== '."""
    print(f"\n=== {title} " + "=" * max(0, width - len(title)), flush=True)


# =====================================================================================================
# resources and the machine
# =====================================================================================================
def rss_now_mb() -> float:
    """Resident set size of this process now (MB), from /proc/self/status."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process (MB), ru_maxrss."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def own_cpu_s() -> float:
    """User + system CPU seconds used by this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_stat_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")
    hz = os.sysconf("SC_CLK_TCK")
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return (total - idle) / hz, total / hz


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as '1.23 0.98 0.75'."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _proc_field(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line
    except OSError:
        pass
    return None


def machine_summary(load_start: str) -> str:
    """'cpu: MODEL; cores: N (usable M); memory X GiB; load avg at start L' for a report header."""
    line = _proc_field("/proc/cpuinfo", "model name")
    cpu_model = line.split(":", 1)[1].strip() if line else "?"
    line = _proc_field("/proc/meminfo", "MemTotal:")
    mem_gb = int(line.split()[1]) / 1024 / 1024 if line else float("nan")
    return (f"cpu: {cpu_model}; cores: {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}); "
            f"memory {mem_gb:.1f} GiB; load avg at start {load_start}")


def pkg_version(pkg: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions_summary(packages: list[str], arch: bool = False) -> str:
    """'python X.Y.Z[ (arch)]; pkg1 V1; pkg2 V2; …' for a report header."""
    py = platform.python_version() + (f" ({platform.machine()})" if arch else "")
    return "; ".join([f"python {py}"] + [f"{p} {pkg_version(p)}" for p in packages])


# =====================================================================================================
# WER
# =====================================================================================================
_NORMALIZER = None


def english_normalizer():
    """Whisper's English text normaliser (whisper_normalizer), created once."""
    global _NORMALIZER
    if _NORMALIZER is None:
        from whisper_normalizer.english import EnglishTextNormalizer

        _NORMALIZER = EnglishTextNormalizer()
    return _NORMALIZER


def wer_of(ref: str, hyp: str) -> dict:
    """WER after Whisper's English normalisation (jiwer.process_words): wer, S, D, I and N (reference words).

    For a corpus WER pass the joined texts: ``wer_of(" ".join(refs), " ".join(hyps))``.
    """
    import jiwer

    norm = english_normalizer()
    r, h = norm(ref).strip(), norm(hyp).strip()
    if not r:
        return {"wer": float("nan"), "S": 0, "D": 0, "I": len(h.split()), "N": 0}
    if not h:
        n = len(r.split())
        return {"wer": 1.0, "S": 0, "D": n, "I": 0, "N": n}
    out = jiwer.process_words(r, h)
    n = out.hits + out.substitutions + out.deletions
    return {"wer": out.wer, "S": out.substitutions, "D": out.deletions, "I": out.insertions, "N": n}


# =====================================================================================================
# data: clips of the real recordings, laid out one after another
# =====================================================================================================
def load_manifest(root: Path) -> dict[str, dict]:
    """The data folder's manifest.jsonl, keyed by each entry's ``path``."""
    manifest = {}
    for line in (root / "manifest.jsonl").read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            manifest[d["path"]] = d
    return manifest


@dataclass
class Clip:
    """One recording: its path relative to the data folder, its speaker label, its reference text, its audio."""

    path: str
    speaker: str
    text: str | None
    audio: np.ndarray

    @property
    def dur(self) -> float:
        return self.audio.size / SR

    @property
    def name(self) -> str:
        return Path(self.path).stem


@dataclass
class Placed:
    """A clip placed in a longer buffer: start and end in seconds from the buffer's first sample."""

    clip: Clip
    start: float
    end: float
    expect_speaker: str | None = None


def lay_out(clips: list[Clip], gap_s: float, lead_s: float, tail_s: float,
            expect: list[str] | None = None) -> tuple[np.ndarray, list[Placed]]:
    """Concatenate clips with ``gap_s`` of digital silence between them (plus lead/tail silence).

    Returns the float32 buffer and where each clip lies in it (with ``expect[i]`` as its expected speaker).
    """
    parts = [np.zeros(int(lead_s * SR), np.float32)]
    placed, pos = [], int(lead_s * SR)
    for i, clip in enumerate(clips):
        if i:
            parts.append(np.zeros(int(gap_s * SR), np.float32))
            pos += int(gap_s * SR)
        parts.append(clip.audio.astype(np.float32))
        placed.append(Placed(clip, pos / SR, (pos + clip.audio.size) / SR, expect[i] if expect else None))
        pos += clip.audio.size
    parts.append(np.zeros(int(tail_s * SR), np.float32))
    return np.concatenate(parts), placed


def match_spans(clips: list[tuple[float, float]], finals: list[tuple[float, float]],
                min_overlap: float = 0.1) -> dict:
    """Map finals ``(start, end)`` to clips ``(start, end)`` (seconds) by time overlap.

    Returns ``per_clip`` (final indices per clip), ``owner`` (the clip of each final with most overlap, None
    when it overlaps none) and the counts ``ok`` (clips with one final), ``split`` (several), ``missed`` (none),
    ``merged`` (finals over several clips), ``extra`` (finals over no clip).
    """
    per_clip: list[list[int]] = [[] for _ in clips]
    owner: list[int | None] = []
    merged = extra = 0
    for k, (f_start, f_end) in enumerate(finals):
        ov = [max(0.0, min(f_end, c_end) - max(f_start, c_start)) for c_start, c_end in clips]
        hits = [i for i, o in enumerate(ov) if o >= min_overlap]
        if len(hits) > 1:
            merged += 1
        if not hits:
            extra += 1
            owner.append(None)
            continue
        for i in hits:
            per_clip[i].append(k)
        owner.append(max(range(len(ov)), key=ov.__getitem__))
    return {
        "per_clip": per_clip,
        "owner": owner,
        "ok": sum(1 for c in per_clip if len(c) == 1),
        "split": sum(1 for c in per_clip if len(c) > 1),
        "missed": sum(1 for c in per_clip if not c),
        "merged": merged,
        "extra": extra,
    }
