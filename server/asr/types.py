"""What speech recognition returns, as plain domain types (no wire format, no database).

Times are seconds from the start of the decoded audio unless a caller shifts them onto a stream clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Word:
    """One word with its timing (seconds) and Whisper's probability (0..1).

    ``word`` keeps Whisper's leading space inside :class:`AsrResult` so that ``"".join`` rebuilds the text in
    every language; finals strip it.
    """

    word: str
    start: float
    end: float
    probability: float

    def shifted(self, offset_s: float) -> Word:
        """The same word ``offset_s`` seconds later, times rounded to milliseconds."""
        return replace(self, start=round(self.start + offset_s, 3), end=round(self.end + offset_s, 3))


@dataclass
class AsrResult:
    """Text of one utterance after the guards.

    ``words`` times are seconds from the start of the decoded audio; ``dropped`` names the guard that removed
    text (``too_quiet``, ``no_speech``, ``known_phrase``) or is None. ``window`` says which Whisper window
    decided a final (``"short"``: the audio + 2 s, ``"full"``: 30 s; None for partials and dropped audio) and
    ``fallback`` why a short-window final was decoded again on the full window
    (:func:`server.asr.engine.short_final_doubt`), or None.
    """

    text: str
    language: str | None
    language_probability: float | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    words: list[Word] = field(default_factory=list)
    dropped: str | None = None
    window: str | None = None
    fallback: str | None = None
