"""Who spoke: the speaker identity carried by every final, whatever decided it.

``kind`` says where the identity comes from:

- ``profile``: an enrolled voice profile; ``id`` is ``"profile:<row id>"``, ``label`` its display name;
- ``anonymous``: a voice that matched no profile but was recognised again within a room (clustered online);
  ``id`` is stable for the room, ``label`` e.g. ``"Speaker 1"``;
- ``unknown``: too short or too uncertain to place; ``label`` ``"unknown"``, ``id`` None — or a tentative
  ``"tentative:<n>"`` when the voice may yet turn out to be an anonymous speaker (a later relabel says so).

Pages and clients key on ``id`` (or ``kind`` for ``unknown``), never on the display label, which can change
when a profile is renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SpeakerKind = Literal["profile", "anonymous", "unknown"]

UNKNOWN_LABEL = "unknown"
"""Display label of a speaker that could not be placed (reserved: no profile may take this name)."""


@dataclass(frozen=True)
class SpeakerIdentity:
    """A speaker as every layer sees it: ``kind``, a stable ``id`` (None for unknown) and a display ``label``."""

    kind: SpeakerKind
    id: str | None
    label: str

    @classmethod
    def profile(cls, profile_id: int, name: str) -> SpeakerIdentity:
        return cls("profile", f"profile:{profile_id}", name)

    @property
    def profile_id(self) -> int | None:
        """The voice profile's row id for ``kind == "profile"``, else None."""
        if self.kind != "profile" or self.id is None:
            return None
        return int(self.id.split(":", 1)[1])

    @property
    def known(self) -> bool:
        return self.kind != "unknown"


UNKNOWN = SpeakerIdentity("unknown", None, UNKNOWN_LABEL)
"""The one identity of speakers that could not be placed."""
