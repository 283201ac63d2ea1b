"""Whisper decoding: the shared engine and its hallucination guards."""
