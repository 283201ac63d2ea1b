"""callscribe speech core.

The data path, one module per stage::

    ingest (decode/resample → 16 kHz mono float32) → vad → segmenter (endpointing)
    → speaker (embedding → voice profiles → name | unknown) → asr (Whisper) → events
    → processor (wires the stages for one stream)

Nothing in this package imports aiohttp; the WebRTC layer lives in ``signaling/``.

callscribe never talks to a model hub or a telemetry service. Importing this package forces
``PYANNOTE_METRICS_ENABLED=false`` (pyannote.audio 4 otherwise sends OpenTelemetry traces to its own
server on every model load, ``pyannote/audio/telemetry/config.yaml``) and ``HF_HUB_OFFLINE=1``.
"""

import os

os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"

SAMPLE_RATE = 16_000
"""Sample rate (Hz) of every internal audio buffer: ``float32[n_samples]`` in [-1, 1], mono."""
