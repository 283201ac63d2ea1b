"""Files through the streaming processor: what ``callscribe transcribe`` and ``enroll`` run.

A file is decoded chunk by chunk and pushed through the very same :class:`StreamProcessor` a WebRTC peer
uses, as fast as the worker pool takes the work (``block=True`` back-pressure), so file results are the
streaming results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..audio.ingest import iter_file, probe
from ..compute.runtime import SpeechRuntime
from ..errors import ProfileError
from . import events
from .processor import StreamProcessor

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


def enroll_files(runtime: SpeechRuntime, name: str, paths: Sequence[str | Path]) -> events.EnrollmentCompleted:
    """Create or extend voice profile ``name`` from the speech in ``paths``.

    Raises:
        AudioDecodeError: a file is not decodable audio (checked for all files before anything is stored).
        ProfileError: too little speech, or the name is not allowed.
    """
    for path in paths:
        probe(path)
    outcome: list[events.Event] = []
    proc = StreamProcessor(runtime, outcome.append, block=True, partials=False)
    proc.enroll_start(name)
    gap = np.zeros(int(GAP_BETWEEN_FILES_S * SAMPLE_RATE), np.float32)
    for path in paths:
        for chunk in iter_file(path):
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
