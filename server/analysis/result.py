"""The analysis result: one JSON-ready dict, and the few operations on it (export, naming a speaker).

Shape (times in seconds from the file's first sample)::

    {"language", "duration_s", "processing_s", "real_time_factor", "options": {...}, "models": {...},
     "speakers": [{"speaker", "speaker_id", "speaker_kind", "talk_time_s", "turns", "words",
                   "mean_pitch_hz" | null, "sentiment": {"positive": n, "negative": n, "neutral": n}}],
     "turns": [{"start", "end", "speaker", "speaker_id"}],   -- who spoke when (the diarization, overlap kept)
     "segments": [{"utterance_id", "turn", "start", "end", "speaker", "speaker_id", "speaker_kind", "score",
                   "text", "language", "sentiment": {"label", "score"} | null,
                   "words": [{"word", "start", "end", "probability", "features": {...}?}]}],
     "sentiment": {"positive": n, "negative": n, "neutral": n}}

A segment carries the fields of a ``final`` data-channel event (``docs/protocol.md``), so pages render it like a
call's final. ``features`` of a word: ``level_dbfs``, ``f0_hz`` (None when unvoiced), ``centroid_hz``,
``mfcc_mean`` / ``mfcc_std`` (13 each); ``mean_pitch_hz`` is the mean F0 of the speaker's voiced frames inside
its words. ``real_time_factor`` is processing seconds per second of audio.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..speaker.identity import SpeakerIdentity
from ..stream import events
from .options import AnalysisOptions

LABELS = ("positive", "negative", "neutral")


def build_result(finals: Sequence[events.Final], speakers: list[dict], turns: list[dict], *, duration_s: float,
                 features,
                 sentiments: Sequence | None, processing_s: float, models: dict,
                 options: AnalysisOptions) -> dict:
    """Assemble the result (see the module docstring) from the finals, the per-speaker totals, the diarized
    turns and the optional :class:`~server.audio.features.AcousticFeatures` and per-final sentiments."""
    segments = []
    for i, f in enumerate(finals):
        words = []
        for w in f.words or ():
            item = {"word": w.word, "start": round(float(w.start), 3), "end": round(float(w.end), 3),
                    "probability": round(float(w.probability), 3)}
            if features is not None:
                item["features"] = features.span(w.start, w.end).as_dict()
            words.append(item)
        s = sentiments[i] if sentiments is not None else None
        segments.append({
            "utterance_id": f.utterance_id, "turn": f.turn, "start": round(float(f.start), 3),
            "end": round(float(f.end), 3),
            "speaker": f.speaker, "speaker_id": f.speaker_id, "speaker_kind": f.speaker_kind, "score": f.score,
            "text": f.text, "language": f.language,
            "sentiment": None if s is None else {"label": s.label, "score": s.score}, "words": words})
    overall = Counter()
    for sp in speakers:
        mine = [seg for seg in segments if seg["speaker_id"] == sp["speaker_id"]]
        counts = Counter(seg["sentiment"]["label"] for seg in mine if seg["sentiment"])
        sp["sentiment"] = {k: counts.get(k, 0) for k in LABELS}
        overall.update(counts)
        sp["mean_pitch_hz"] = None
        if features is not None:
            f0 = features.voiced_f0((w["start"], w["end"]) for seg in mine for w in seg["words"])
            sp["mean_pitch_hz"] = round(sum(f0) / len(f0), 1) if f0 else None
    languages = Counter()
    for f in finals:
        languages[f.language] += max(1, len(f.words or ()))
    return {
        "language": languages.most_common(1)[0][0] if languages else options.language,
        "duration_s": round(duration_s, 3), "processing_s": round(processing_s, 3),
        "real_time_factor": round(processing_s / duration_s, 4) if duration_s else None,
        "options": options.model_dump(), "models": models, "speakers": speakers, "turns": turns,
        "segments": segments,
        "sentiment": {k: overall.get(k, 0) for k in LABELS},
    }


def finals_of(result: dict) -> list[events.Final]:
    """The result's segments as :class:`~server.stream.events.Final` (for the transcript exports)."""
    out = []
    for seg in result.get("segments", []):
        words = [events.Word(start=w["start"], end=w["end"], word=w["word"], probability=w.get("probability", 0.0))
                 for w in seg.get("words") or ()]
        out.append(events.Final(
            utterance_id=seg["utterance_id"], turn=seg.get("turn", 0), start=seg["start"], end=seg["end"],
            speaker=seg["speaker"], speaker_id=seg["speaker_id"], speaker_kind=seg["speaker_kind"],
            score=seg.get("score"), speaker_reason="diarization", text=seg["text"], language=seg.get("language"),
            words=words or None, server_time=0.0))
    return out


def rename_speaker(result: dict, speaker_id: str, identity: SpeakerIdentity) -> dict:
    """A copy of ``result`` with every segment and the speaker entry of ``speaker_id`` given ``identity``."""
    def relabel(item: dict) -> dict:
        if item.get("speaker_id") != speaker_id:
            return item
        return {**item, "speaker": identity.label, "speaker_id": identity.id, "speaker_kind": identity.kind}

    return {**result, "segments": [relabel(s) for s in result.get("segments", [])],
            "speakers": [relabel(s) for s in result.get("speakers", [])],
            "turns": [relabel(t) for t in result.get("turns", [])]}


def speaker_ids(result: dict) -> dict[str, dict]:
    """``speaker_id → speaker entry`` of a result."""
    return {s["speaker_id"]: s for s in result.get("speakers", []) if s.get("speaker_id")}
