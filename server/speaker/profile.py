"""The voice profile as a domain type, and the rules for profile names (no database in here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ProfileError
from .identity import UNKNOWN_LABEL


@dataclass(frozen=True)
class VoiceProfile:
    """An enrolled speaker: ``embedding`` is ``float32[192]``, L2-normalised; ``speech_s`` in seconds."""

    id: int
    name: str
    embedding: np.ndarray
    speech_s: float
    enrollments: int
    created_at: float
    updated_at: float


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 64:
        raise ProfileError("a profile name must have 1 to 64 characters")
    if name.lower() == UNKNOWN_LABEL:
        raise ProfileError("'unknown' is reserved for speakers that match no profile")
    return name
