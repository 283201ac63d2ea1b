"""Naming a room's anonymous speaker afterwards, optionally saving its voice as a profile.

The user sees "Speaker 2", types "Alice": every final of that speaker in the room takes the name (a
``speaker_relabeled`` event, reason ``named``, for every subscriber) and, with ``save``, a voice profile
"Alice" is created — or, with ``extend``, an existing one extended — from the speech the room collected for
that speaker (its centroid embedding, weighted by its seconds of speech), so the next call recognises the voice
without an enrollment step. The data channel (``name_speaker``) and REST (``POST /api/rooms/{room}/speakers/
{id}/name``) both come here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..compute.runtime import SpeechRuntime
from ..errors import SpeakerNotFound
from ..speaker.clusters import SpeakerSummary
from ..speaker.identity import SpeakerIdentity
from ..speaker.profile import check_speaker_name
from ..stream.events import SpeakerRelabeled
from .hub import Room, RoomHub


@dataclass(frozen=True)
class Named:
    """The outcome: the relabel to publish in the room, and the profile id when the voice was saved."""

    event: SpeakerRelabeled
    profile_id: int | None


class SpeakerNaming:
    """Names anonymous speakers of the rooms in ``rooms``, saving voices in ``runtime``'s profile store."""

    def __init__(self, rooms: RoomHub, runtime: SpeechRuntime) -> None:
        self.rooms = rooms
        self.runtime = runtime

    def room(self, name: str) -> Room:
        """Raises: SpeakerNotFound: no such room (or it has no anonymous speakers)."""
        room = self.rooms.find(name)
        if room is None or room.speakers is None:
            raise SpeakerNotFound(f"no room {name!r}")
        return room

    def speakers(self, room_name: str) -> list[SpeakerSummary]:
        """The room's anonymous speakers (named or saved ones included), in order of first appearance."""
        return self.room(room_name).speakers.summaries()

    def name(self, room_name: str, speaker_id: str, name: str, *, save: bool = False,
             extend: bool = False) -> Named:
        """Give anonymous speaker ``speaker_id`` of room ``room_name`` the name ``name``.

        Blocking (a database write when ``save``): call it off the event loop, then publish ``Named.event``
        in the room.

        Raises:
            SpeakerNotFound: no such room or speaker.  NotAnonymous: the speaker is already a voice profile.
            InvalidName: empty, too long or reserved name.  NameTaken: a profile has the name and ``extend`` is
            off (or ``save`` is off), or another speaker of the room has it.  ProfileError: too little speech
            to save.  StoreError: the database cannot be written.
        """
        speakers = self.room(room_name).speakers
        try:
            current = speakers.find(speaker_id)
        except KeyError:
            raise SpeakerNotFound(f"no speaker {speaker_id!r} in room {room_name!r}") from None
        others = speakers.labels_in_use() - {current.identity.label.lower()}
        name = check_speaker_name(current.identity, name, others, f"room {room_name!r}")
        self.runtime.check_unclaimed(name, extend=save and extend)
        if not save:
            relabel = speakers.name(speaker_id, name)
            return Named(SpeakerRelabeled.of(relabel.from_id, relabel.identity, relabel.reason), None)
        embedding, speech_s = speakers.voiceprint(speaker_id)
        profile = self.runtime.save_voice(name, embedding, speech_s, f"named in room {room_name}", extend=extend)
        relabel = speakers.link(speaker_id, SpeakerIdentity.profile(profile.id, profile.name))
        return Named(SpeakerRelabeled.of(relabel.from_id, relabel.identity, relabel.reason), profile.id)
