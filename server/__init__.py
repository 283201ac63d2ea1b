"""callscribe speech core.

The data path, one module per stage::

    ingest (decode/resample → 16 kHz mono float32) → vad → segmenter (endpointing)
    → speaker (embedding → voice profiles → name | unknown) → asr (Whisper) → events
    → processor (wires the stages for one stream)

Nothing in this package imports aiohttp; the WebRTC layer lives in ``signaling/``.
"""

SAMPLE_RATE = 16_000
"""Sample rate (Hz) of every internal audio buffer: ``float32[n_samples]`` in [-1, 1], mono."""
