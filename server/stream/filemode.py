"""Files through the streaming processor: what ``callscribe transcribe`` and ``enroll`` run, and the uploads of
the REST API (enroll, identify).

A file is decoded chunk by chunk and pushed through the very same :class:`StreamProcessor` a WebRTC peer
uses, as fast as the worker pool takes the work (``block=True`` back-pressure), so file results are the
streaming results. :func:`identify_file` finds the speech with the same VAD and endpointing and embeds it window
by window (:class:`server.speaker.identify.VoiceprintBuilder`), so memory does not grow with the file's length;
``max_s`` bounds how much audio is decoded at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..audio.ingest import iter_file, probe
from ..audio.vad import VadStream, make_classifier
from ..compute.runtime import SpeechRuntime
from ..errors import NameTaken, ProfileError
from ..settings import Settings
from ..speaker.identify import Identification, identify
from . import events
from .processor import StreamProcessor
from .segmenter import EndpointConfig, Segmenter, UtteranceEnded

Progress = Callable[[float], None]
"""Called with the seconds of audio pushed so far."""

GAP_BETWEEN_FILES_S = 1.0


def transcribe_file(runtime: SpeechRuntime, path: str | Path, *, language: str | None = None,
                    word_timestamps: bool | None = None, progress: Progress | None = None,
                    on_event: Callable[[events.Event], None] | None = None) -> list[events.Final]:
    """Transcribe one file; returns the finals in order (empty-text finals included), with the speaker
    corrections that came later applied (``on_event`` sees the events as they came). Voices that match no
    profile become the file's anonymous speakers (``Speaker 1``, …) when ``Settings.anonymous_speakers`` is on.

    Raises:
        AudioDecodeError: the file is not decodable audio.
    """
    collected: list[events.Event] = []

    def sink(ev: events.Event) -> None:
        collected.append(ev)
        if on_event is not None:
            on_event(ev)

    proc = StreamProcessor(runtime, sink, language=language, block=True, partials=False,
                           word_timestamps=word_timestamps)
    pushed = 0
    for chunk in iter_file(path):
        proc.push(chunk)
        pushed += chunk.size
        if progress is not None:
            progress(pushed / SAMPLE_RATE)
    proc.close()
    return events.relabeled(collected)


def enroll_files(runtime: SpeechRuntime, name: str, paths: Sequence[str | Path], *, add: bool = True,
                 max_s: float | None = None) -> events.EnrollmentCompleted:
    """Create voice profile ``name`` from the speech in ``paths``, or, when a profile has that name, add the speech
    to it (``add``) or refuse (``add=False``). At most ``Settings.max_enroll_s`` of speech is used (the processor's
    cap); ``max_s`` limits each file's audio (seconds decoded). With ``max_s`` every file is first decoded once
    to the end without being kept (cheap next to the speech work: about 4 s for 10 minutes of Opus), because the
    processor stores the enrollment as soon as the cap is reached, which may be before the file turns out too long
    or corrupt.

    Raises:
        AudioDecodeError: a file is not decodable audio (checked for all files before anything is stored; with
            ``max_s``, decoded to the end).
        AudioTooLong: a file holds more than ``max_s`` seconds of audio (nothing is stored).
        NameTaken: ``add`` is false and a profile is named ``name`` (nothing is decoded or stored).
        ProfileError: too little speech, or the name is not allowed.
    """
    for path in paths:
        probe(path)
    outcome: list[events.Event] = []
    proc = StreamProcessor(runtime, outcome.append, block=True, partials=False)
    proc.enroll_start(name, add=add)
    refused = [ev for ev in outcome if isinstance(ev, events.Error)]
    if refused:
        proc.close()
        if refused[0].code == "name_taken":
            raise NameTaken(refused[0].message)
        raise ProfileError(f"cannot enroll {name!r}: {refused[0].message}")
    if max_s is not None:
        for path in paths:
            for _ in iter_file(path, chunk_s=10.0, max_s=max_s):
                pass
    gap = np.zeros(int(GAP_BETWEEN_FILES_S * SAMPLE_RATE), np.float32)
    for path in paths:
        for chunk in iter_file(path, max_s=max_s):
            proc.push(chunk)
        proc.push(gap)
    proc.enroll_stop(source=", ".join(Path(p).name for p in paths))
    proc.close()
    for ev in outcome:
        if isinstance(ev, events.EnrollmentCompleted):
            return ev
        if isinstance(ev, events.EnrollmentFailed):
            raise ProfileError(f"cannot enroll {name!r}: {ev.reason}")
        if isinstance(ev, events.Error):
            raise ProfileError(f"cannot enroll {name!r}: {ev.message}")
    raise ProfileError(f"cannot enroll {name!r}: no result")


def identify_file(runtime: SpeechRuntime, path: str | Path, *, max_s: float | None = None,
                  max_speech_s: float | None = None) -> tuple[Identification, float]:
    """Whose voice is this recording? Scores its voiceprint (:func:`voiceprint_of_file`) against every voice
    profile with the identification rules (:func:`server.speaker.identify.identify`).

    Returns:
        The :class:`Identification` and the seconds of audio decoded.
    Raises:
        AudioDecodeError: not decodable audio.  AudioTooLong: more than ``max_s`` seconds of audio.
    """
    embedding, speech_s, audio_s = voiceprint_of_file(runtime, path, max_s=max_s, max_speech_s=max_speech_s)
    settings = runtime.settings
    result = identify(embedding, speech_s, runtime.profiles(), settings.speaker_threshold, settings.min_identify_s)
    return result, audio_s


def voiceprint_of_file(runtime: SpeechRuntime, path: str | Path, *, max_s: float | None = None,
                       max_speech_s: float | None = None) -> tuple[np.ndarray | None, float, float]:
    """One voiceprint of a recording's speech, as an enrollment of it would make.

    Speech is found with the live path's VAD and endpointing (:func:`speech_segments`) and embedded in windows as
    it is found (:meth:`SpeechRuntime.voiceprint`): memory stays at one window whatever the length. Only the first
    ``max_speech_s`` seconds of speech are used (default ``Settings.max_enroll_s``, the enrollment cap); the rest
    of the file is still decoded, up to ``max_s`` seconds of audio.

    Returns:
        ``(float32[192] L2-normalised or None when there was no speech to embed, seconds of speech used,
        seconds of audio decoded)``.
    Raises:
        AudioDecodeError: not decodable audio.  AudioTooLong: more than ``max_s`` seconds of audio.
    """
    settings = runtime.settings
    cap = settings.max_enroll_s if max_speech_s is None else max_speech_s
    builder = runtime.voiceprint()
    speech_s = 0.0
    decoded = 0
    chunks = iter_file(path, max_s=max_s)

    def counted() -> Iterator[np.ndarray]:
        nonlocal decoded
        for chunk in chunks:
            decoded += chunk.size
            yield chunk

    audio = counted()
    for seg_audio, seg_speech_s in speech_segments(settings, audio):
        keep = min(seg_speech_s, cap - speech_s)
        if keep < seg_speech_s:  # the cap falls inside this utterance: keep its first `keep` seconds of speech
            seg_audio = seg_audio[: round(keep / seg_speech_s * seg_audio.size)]
        builder.add(seg_audio)
        speech_s += keep
        if speech_s >= cap:
            break
    for _ in audio:  # past the cap: decode the rest only to hold it to max_s
        pass
    return builder.finish(), speech_s, decoded / SAMPLE_RATE


def speech_segments(settings: Settings, audio: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, float]]:
    """The utterances of a stream of ``float32[n]`` 16 kHz chunks, found with the VAD and endpointing of the live
    path (:class:`StreamProcessor`'s settings): ``(audio, speech seconds)`` each, the audio with its pre-roll and
    trailing silence as a final job gets it."""
    vad = VadStream(make_classifier(settings.vad, settings.vad_aggressiveness))
    segmenter = Segmenter(vad.frame_samples, EndpointConfig.from_settings(settings, partials=False))
    for chunk in audio:
        for frame, prob in vad.push(chunk):
            for ev in segmenter.push(frame, prob):
                if isinstance(ev, UtteranceEnded):
                    yield ev.segment.audio, ev.segment.duration
    for ev in segmenter.flush():
        if isinstance(ev, UtteranceEnded):
            yield ev.segment.audio, ev.segment.duration
