"""Anonymous speakers: online clustering of voices that match no voice profile, shared by a room's streams.

Each finished utterance (or speaker turn) long enough to embed and matching no enrolled profile is compared by
cosine similarity with the centroids of the room's anonymous speakers (the speaker-embedding clustering of
online diarizers: Coria et al., "Overlap-aware low-latency online speaker diarization based on end-to-end local
segmentation", ASRU 2021 — diart — keeps one centroid per speaker and joins a new embedding to the closest one
within a distance threshold, else opens a new speaker):

- best centroid at ``join_threshold`` or above → that speaker (``reason="cluster"``); its centroid becomes
  the speech-weighted mean of everything it was given;
- else, with at least ``new_speaker_min_s`` of speech → a new speaker ``Speaker <n>`` (``reason="new_speaker"``);
  shorter stretches are too uncertain to found a speaker (CAM++ identification is poor below ~1–2 s,
  docs/measurements.md) and stay ``unknown`` (``reason="uncertain"``) under a *tentative* id
  (``"tentative:<n>"``): when more unmatched speech like it brings it to ``new_speaker_min_s``, it becomes a
  new speaker, and when a speaker's centroid comes to match it, it joins that speaker — either way a relabel
  (``merged``) moves its finals.

Labels are decided once per finished utterance and never flicker. Corrections come as :class:`Relabel`
records that the caller turns into ``speaker_relabeled`` events (history is not rewritten silently):

- ``merged``: two speakers' centroids drifted together (similarity ≥ ``merge_threshold``, both with at least
  ``new_speaker_min_s`` of speech): the one with less speech joins the other;
- ``enrolled``: a voice profile enrolled meanwhile matches a speaker's centroid (≥ the profile threshold);
- ``named``: someone gave the speaker a name (:meth:`AnonymousSpeakers.name`), optionally saved as a profile
  (:meth:`AnonymousSpeakers.link`).

Thresholds: measured on the AMI meeting excerpts and the pyannote sample (``bench/attribution_eval.py``).
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..settings import Settings
from .embedding import normalise
from .identity import UNKNOWN_LABEL, SpeakerIdentity
from .profile import VoiceProfile

ANON_PREFIX = "anon:"
TENTATIVE_PREFIX = "tentative:"
MAX_TENTATIVE = 16


@dataclass(frozen=True)
class Relabel:
    """Every final labelled ``from_id`` now belongs to ``identity`` (``reason``: merged | enrolled | named)."""

    from_id: str
    identity: SpeakerIdentity
    reason: str


@dataclass(frozen=True)
class Assignment:
    """Outcome of :meth:`AnonymousSpeakers.assign`: the identity (``kind`` anonymous, profile when the speaker
    was linked to a profile, or unknown), the best centroid cosine ``score`` (None without speakers), the
    ``reason`` (``cluster``, ``new_speaker``, ``uncertain``) and the corrections it caused."""

    identity: SpeakerIdentity
    score: float | None
    reason: str
    relabels: tuple[Relabel, ...] = ()


@dataclass(frozen=True)
class SpeakerSummary:
    """One anonymous speaker of a room: its current identity, seconds of speech and utterances heard."""

    identity: SpeakerIdentity
    speech_s: float
    utterances: int


class SpeakerClusters(Protocol):
    """What a room's streams and naming need of its anonymous speakers: :class:`AnonymousSpeakers` in one
    process, :class:`server.cluster.speakers.SharedSpeakers` when several nodes share a room (the same methods,
    the state kept in Redis). ``first_number``: the number the first speaker gets when nothing is known yet."""

    first_number: int

    def assign(self, embedding: np.ndarray, duration_s: float,
               profiles: Sequence[VoiceProfile] = ()) -> Assignment: ...

    def find(self, speaker_id: str) -> SpeakerSummary: ...

    def voiceprint(self, speaker_id: str) -> tuple[np.ndarray, float]: ...

    def name(self, speaker_id: str, label: str) -> Relabel: ...

    def link(self, speaker_id: str, profile: SpeakerIdentity) -> Relabel: ...

    def labels_in_use(self) -> set[str]: ...

    def summaries(self) -> list[SpeakerSummary]: ...

    def __len__(self) -> int: ...


@dataclass
class _Speaker:
    number: int
    label: str
    total: np.ndarray  # speech-weighted sum of the L2-normalised embeddings, float64[192]
    speech_s: float
    utterances: int = 1
    profile: SpeakerIdentity | None = None  # set once linked to a voice profile
    merged_into: str | None = None

    @property
    def id(self) -> str:
        return f"{ANON_PREFIX}{self.number}"

    @property
    def centroid(self) -> np.ndarray:
        return normalise(self.total)

    @property
    def identity(self) -> SpeakerIdentity:
        return self.profile or SpeakerIdentity("anonymous", self.id, self.label)


@dataclass
class _Tentative:
    """Unmatched speech too short to found a speaker: shown as unknown under a tentative id until more speech
    like it (or a speaker it matches) resolves it."""

    id: str
    total: np.ndarray
    speech_s: float

    @property
    def centroid(self) -> np.ndarray:
        return normalise(self.total)

    @property
    def identity(self) -> SpeakerIdentity:
        return SpeakerIdentity("unknown", self.id, UNKNOWN_LABEL)


@dataclass
class AnonymousSpeakers:
    """The anonymous speakers of one room (or one file); thread-safe.

    Args:
        join_threshold: cosine similarity to a speaker's centroid that joins it.
        new_speaker_min_s: seconds of speech an unmatched stretch needs to become a new speaker.
        merge_threshold: centroid similarity at which two speakers are merged.
        profile_threshold: similarity at which a speaker's centroid is taken to be an enrolled profile
            (``Settings.speaker_threshold``).
        max_speakers: beyond this many speakers, unmatched speech stays ``unknown``.
        first_number: the number of the first speaker opened (``Speaker N``, ``anon:N``); a room rebuilt from the
            database after a restart continues after the numbers its stored transcript already uses.
    """

    join_threshold: float = 0.62
    new_speaker_min_s: float = 2.0
    merge_threshold: float = 0.75
    profile_threshold: float = 0.55
    max_speakers: int = 64
    first_number: int = 1
    _speakers: dict[str, _Speaker] = field(default_factory=dict)
    _tentative: dict[str, _Tentative] = field(default_factory=dict)
    _next_tentative: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnonymousSpeakers:
        """A registry with the configured thresholds (``Settings.anonymous_*``, ``speaker_threshold``)."""
        return cls(join_threshold=settings.anonymous_join_threshold,
                   new_speaker_min_s=settings.anonymous_new_speaker_s,
                   merge_threshold=settings.anonymous_merge_threshold,
                   profile_threshold=settings.speaker_threshold)

    # -- the online decision -------------------------------------------------------------------
    def assign(self, embedding: np.ndarray, duration_s: float,
               profiles: Sequence[VoiceProfile] = ()) -> Assignment:
        """Place one stretch of speech that matched no profile.

        Args:
            embedding: ``float32[192]``, L2-normalised speaker embedding of the stretch.
            duration_s: its length in seconds (its weight in the centroid).
            profiles: the enrolled profiles now (a speaker whose centroid matches one is relabelled to it).
        """
        emb = np.asarray(embedding, dtype=np.float64).reshape(-1)
        with self._lock:
            relabels = self._link_enrolled(profiles)
            live = [s for s in self._speakers.values() if s.merged_into is None]
            best, score = None, None
            if live:
                sims = np.stack([s.centroid for s in live]) @ emb
                i = int(np.argmax(sims))
                best, score = live[i], float(sims[i])
            if best is not None and score >= self.join_threshold:
                best.total += duration_s * emb
                best.speech_s += duration_s
                best.utterances += 1
                relabels += self._merge_near(best)
                target = self._resolve(best)
                relabels += self._absorb_tentative(target)
                return Assignment(target.identity, score, "cluster", tuple(relabels))
            full = len(live) >= self.max_speakers
            pending = self._closest_tentative(emb)
            if pending is not None:
                pending.total += duration_s * emb
                pending.speech_s += duration_s
                if pending.speech_s >= self.new_speaker_min_s and not full:
                    del self._tentative[pending.id]
                    speaker = self._open(pending.total, pending.speech_s)
                    relabels.append(Relabel(pending.id, speaker.identity, "merged"))
                    return Assignment(speaker.identity, score, "new_speaker", tuple(relabels))
                return Assignment(pending.identity, score, "uncertain", tuple(relabels))
            if duration_s < self.new_speaker_min_s or full:
                pending = _Tentative(f"{TENTATIVE_PREFIX}{self._next_tentative}", duration_s * emb, duration_s)
                self._next_tentative += 1
                self._tentative[pending.id] = pending
                while len(self._tentative) > MAX_TENTATIVE:
                    del self._tentative[next(iter(self._tentative))]
                return Assignment(pending.identity, score, "uncertain", tuple(relabels))
            speaker = self._open(duration_s * emb, duration_s)
            return Assignment(speaker.identity, score, "new_speaker", tuple(relabels))

    def _open(self, total: np.ndarray, speech_s: float) -> _Speaker:
        number = self.first_number + len(self._speakers)
        speaker = _Speaker(number, f"Speaker {number}", total.copy(), speech_s)
        self._speakers[speaker.id] = speaker
        return speaker

    def _closest_tentative(self, emb: np.ndarray) -> _Tentative | None:
        if not self._tentative:
            return None
        pending = list(self._tentative.values())
        sims = np.stack([t.centroid for t in pending]) @ emb
        i = int(np.argmax(sims))
        return pending[i] if sims[i] >= self.join_threshold else None

    def _absorb_tentative(self, speaker: _Speaker) -> list[Relabel]:
        """Tentative stretches that now match ``speaker`` join it (their finals are relabelled)."""
        out = []
        for pending in list(self._tentative.values()):
            if float(pending.centroid @ speaker.centroid) >= self.join_threshold:
                del self._tentative[pending.id]
                speaker.total += pending.total
                speaker.speech_s += pending.speech_s
                out.append(Relabel(pending.id, speaker.identity, "merged"))
        return out

    def _resolve(self, speaker: _Speaker) -> _Speaker:
        while speaker.merged_into is not None:
            speaker = self._speakers[speaker.merged_into]
        return speaker

    def _merge_near(self, speaker: _Speaker) -> list[Relabel]:
        if speaker.speech_s < self.new_speaker_min_s:
            return []
        out = []
        for other in list(self._speakers.values()):
            if other is speaker or other.merged_into is not None or other.speech_s < self.new_speaker_min_s:
                continue
            if other.profile is not None and speaker.profile is not None and other.profile != speaker.profile:
                continue
            if float(other.centroid @ speaker.centroid) < self.merge_threshold:
                continue
            keep, gone = (speaker, other) if speaker.speech_s >= other.speech_s else (other, speaker)
            if gone.profile is not None and keep.profile is None:
                keep, gone = gone, keep
            keep.total += gone.total
            keep.speech_s += gone.speech_s
            keep.utterances += gone.utterances
            gone.merged_into = keep.id
            out.append(Relabel(gone.id, keep.identity, "merged"))
            speaker = keep
        return out

    def _link_enrolled(self, profiles: Sequence[VoiceProfile]) -> list[Relabel]:
        if not profiles:
            return []
        matrix = np.stack([p.embedding for p in profiles])
        out = []
        for s in self._speakers.values():
            if s.profile is not None or s.merged_into is not None:
                continue
            sims = matrix @ s.centroid
            i = int(np.argmax(sims))
            if sims[i] >= self.profile_threshold:
                s.profile = SpeakerIdentity.profile(profiles[i].id, profiles[i].name)
                out.append(Relabel(s.id, s.profile, "enrolled"))
        return out

    # -- afterwards: names and profiles --------------------------------------------------------
    def _get(self, speaker_id: str) -> _Speaker:
        speaker = self._speakers.get(speaker_id)
        if speaker is None:
            raise KeyError(speaker_id)
        return self._resolve(speaker)

    def find(self, speaker_id: str) -> SpeakerSummary:
        """The speaker ``speaker_id`` (``"anon:N"``; a merged id gives the speaker it joined).

        Raises:
            KeyError: no such speaker in this room.
        """
        with self._lock:
            s = self._get(speaker_id)
            return SpeakerSummary(s.identity, s.speech_s, s.utterances)

    def voiceprint(self, speaker_id: str) -> tuple[np.ndarray, float]:
        """``(float32[192] centroid, seconds of speech)`` of the speaker, to enroll it as a voice profile.

        Raises:
            KeyError: no such speaker.
        """
        with self._lock:
            s = self._get(speaker_id)
            return s.centroid, s.speech_s

    def name(self, speaker_id: str, label: str) -> Relabel:
        """Give anonymous speaker ``speaker_id`` the display label ``label`` (no profile is made).

        Raises:
            KeyError: no such speaker.  ValueError: the speaker is already a voice profile.
        """
        with self._lock:
            s = self._get(speaker_id)
            if s.profile is not None:
                raise ValueError(f"{speaker_id} is the voice profile {s.profile.label!r}")
            s.label = label
            return Relabel(s.id, s.identity, "named")

    def link(self, speaker_id: str, profile: SpeakerIdentity) -> Relabel:
        """Tie the speaker to voice ``profile`` (after it was saved as one): its finals now carry the profile.

        Raises:
            KeyError: no such speaker.
        """
        with self._lock:
            s = self._get(speaker_id)
            s.profile = profile
            s.label = profile.label
            return Relabel(s.id, profile, "named")

    def labels_in_use(self) -> set[str]:
        """Display labels of the room's current speakers, lower-cased."""
        with self._lock:
            return {s.identity.label.lower() for s in self._speakers.values() if s.merged_into is None}

    def summaries(self) -> list[SpeakerSummary]:
        """The room's current (unmerged) speakers in order of first appearance."""
        with self._lock:
            return [SpeakerSummary(s.identity, s.speech_s, s.utterances)
                    for s in self._speakers.values() if s.merged_into is None]

    def __len__(self) -> int:
        with self._lock:
            return sum(s.merged_into is None for s in self._speakers.values())

    # -- the whole state, for a registry shared by several processes ---------------------------
    def state(self) -> dict:
        """Everything the registry learnt (speakers, tentative stretches, numbering; not the thresholds) as a
        JSON-ready dict; :meth:`restore` reads it back exactly (the sums are float64 bytes, base64)."""
        with self._lock:
            return {
                "v": STATE_VERSION, "first_number": self.first_number, "next_tentative": self._next_tentative,
                "speakers": [{"number": s.number, "label": s.label, "total": _pack(s.total), "speech_s": s.speech_s,
                              "utterances": s.utterances, "merged_into": s.merged_into,
                              "profile": None if s.profile is None else [s.profile.id, s.profile.label]}
                             for s in self._speakers.values()],
                "tentative": [{"id": t.id, "total": _pack(t.total), "speech_s": t.speech_s}
                              for t in self._tentative.values()],
            }

    def restore(self, state: dict) -> None:
        """Replace what this registry knows with ``state`` (from :meth:`state`, maybe another process's).

        Raises:
            ValueError: ``state`` is not such a dict (unknown version, missing or malformed fields).
        """
        try:
            if state.get("v") != STATE_VERSION:
                raise ValueError(f"unknown speaker state version {state.get('v')!r}")
            speakers = {}
            for d in state["speakers"]:
                profile = None
                if d["profile"] is not None:
                    profile = SpeakerIdentity("profile", str(d["profile"][0]), str(d["profile"][1]))
                s = _Speaker(int(d["number"]), str(d["label"]), _unpack(d["total"]), float(d["speech_s"]),
                             int(d["utterances"]), profile, d["merged_into"])
                speakers[s.id] = s
            tentative = {str(d["id"]): _Tentative(str(d["id"]), _unpack(d["total"]), float(d["speech_s"]))
                         for d in state["tentative"]}
            first, next_tentative = int(state["first_number"]), int(state["next_tentative"])
        except (KeyError, TypeError, IndexError, AttributeError, binascii.Error) as exc:
            raise ValueError(f"malformed speaker state: {exc!r}") from None
        with self._lock:
            self._speakers, self._tentative = speakers, tentative
            self.first_number, self._next_tentative = first, next_tentative


STATE_VERSION = 1


def _pack(total: np.ndarray) -> str:
    return base64.b64encode(np.asarray(total, dtype="<f8").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 8:
        raise binascii.Error("not a float64 array")
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)
