"""The voice profile as a domain type, and the rules for profile names (no database in here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidName, NameTaken, NotAnonymous, ProfileError
from .identity import UNKNOWN_LABEL, SpeakerIdentity


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


def check_speaker_name(identity: SpeakerIdentity, name: str, others: set[str], where: str, *,
                       unknown_too: bool = False) -> str:
    """The cleaned ``name`` for anonymous speaker ``identity`` (or, with ``unknown_too``, a speaker too briefly
    heard to be placed: a finished recording's ``unknown`` turns), given the lower-cased labels ``others`` of the
    other speakers ``where`` (a room, a recording) — the rule shared by naming a room's speaker and a recording's.

    Raises:
        NotAnonymous: the speaker is a voice profile already (or unknown, without ``unknown_too``).
        InvalidName: empty, too long or reserved.  NameTaken: another speaker there has the name.
    """
    if identity.kind == "profile":
        raise NotAnonymous(f"{identity.id} is the voice profile {identity.label!r}; rename the profile")
    if identity.kind != "anonymous" and not unknown_too:
        raise NotAnonymous(f"{identity.id} is not a speaker yet (too little speech to tell who it is)")
    try:
        name = check_name(name)
    except ProfileError as exc:
        raise InvalidName(str(exc)) from None
    if name.lower() in others:
        raise NameTaken(f"another speaker in {where} is named {name!r}")
    return name
