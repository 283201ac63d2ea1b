"""Errors a user can cause and fix; the CLI prints them without a traceback."""


class CallscribeError(Exception):
    """Base class of errors caused by input or configuration, not by a bug."""

    code = "error"


class AudioDecodeError(CallscribeError):
    """The input could not be decoded as audio (unreadable, empty, not audio)."""

    code = "bad_audio"


class ModelError(CallscribeError):
    """A model's weights are missing, corrupt or not loadable."""

    code = "model_unavailable"


class ProfileError(CallscribeError):
    """A voice-profile operation failed (unknown name, duplicate name, too little speech)."""

    code = "profile_error"


class StoreError(CallscribeError):
    """The profile database is locked, unreadable or not a callscribe database."""

    code = "store_error"
