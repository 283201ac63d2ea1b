"""What an analysis is asked to do: one validated model shared by the REST API, the job queue and the CLI."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..speaker.diarization import check_speaker_counts


class AnalysisOptions(BaseModel):
    """Options of one analysis.

    Attributes:
        language: ISO 639-1 code of the speech (``en``, ``ko``), or None to detect per region.
        diarize: find who spoke when over the whole file first (pyannote; :mod:`server.stream.diarize`);
            False = the live path's speaker attribution, utterance by utterance.
        num_speakers, min_speakers, max_speakers: speaker-count hints for the diarization (1–32).
        features: acoustic features per word (level, pitch, spectral centroid, MFCC summary).
        sentiment: a sentiment per segment and per-speaker counts.
    Raises (on validation):
        pydantic.ValidationError: a field out of range, unknown fields, or speaker counts that cannot all hold.
    """

    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$", description="ISO 639-1 code; none = detect")
    diarize: bool = True
    num_speakers: int | None = Field(None, ge=1, le=32)
    min_speakers: int | None = Field(None, ge=1, le=32)
    max_speakers: int | None = Field(None, ge=1, le=32)
    features: bool = True
    sentiment: bool = True

    @model_validator(mode="after")
    def _counts(self) -> AnalysisOptions:
        check_speaker_counts(self.num_speakers, self.min_speakers, self.max_speakers)  # ValueError subclass
        return self
