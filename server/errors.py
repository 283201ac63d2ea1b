"""Errors a user can cause and fix: one type with machine-readable codes.

The CLI prints them as one line without a traceback; :mod:`signaling.errors` maps each ``code`` to an HTTP
status and the one JSON error shape ``{"error": {"code", "message"}}``. Callers match on the class or the
``code``, never on the message text.
"""


class CallscribeError(Exception):
    """Base class of errors caused by input or configuration, not by a bug."""

    code = "error"


class AudioDecodeError(CallscribeError):
    """The input could not be decoded as audio (unreadable, empty, not audio)."""

    code = "bad_audio"


class AudioTooLong(AudioDecodeError):
    """The input holds more audio than allowed (``Settings.max_upload_s``); decoding stopped at the limit."""

    code = "too_long"


class ModelError(CallscribeError):
    """A model's weights are missing, corrupt or not loadable."""

    code = "model_unavailable"


class ProfileError(CallscribeError):
    """A voice-profile operation failed (unknown name, duplicate name, too little speech)."""

    code = "profile_error"


class ProfileNotFound(ProfileError):
    """No voice profile has that name."""

    code = "not_found"


class ProfileConflict(ProfileError):
    """Another voice profile already has that name."""

    code = "conflict"


class StoreError(CallscribeError):
    """The database is locked, unreadable, unreachable or not a callscribe database."""

    code = "store_error"


class SessionNotFound(CallscribeError):
    """No durable session has that id."""

    code = "not_found"


class SpeakerNotFound(CallscribeError):
    """No speaker (or no room) with that id."""

    code = "not_found"


class NameTaken(CallscribeError):
    """The name belongs to a voice profile (pass ``extend`` to add to it) or to another speaker of the room."""

    code = "name_taken"


class InvalidName(CallscribeError):
    """The name is empty, too long or reserved."""

    code = "invalid_name"


class NotInRoom(CallscribeError):
    """The request names a room the connection does not belong to."""

    code = "not_in_room"


class NotAnonymous(CallscribeError):
    """The speaker is already a voice profile (rename the profile instead)."""

    code = "not_anonymous"


class JobNotFound(CallscribeError):
    """No analysis job has that id."""

    code = "not_found"


class QueueFull(CallscribeError):
    """The analysis queue holds ``Settings.max_queued_jobs`` jobs already; retry later."""

    code = "queue_full"


class JobCancelled(CallscribeError):
    """The job was cancelled (or deleted) while it ran; raised inside the worker to stop its work."""

    code = "cancelled"
