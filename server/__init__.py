"""callscribe: the media and speech server.

The data path, one package per layer (README, "the data path in file names")::

    webrtc (aiortc peer, ICE) → audio (ingest, vad) → stream (segmenter → processor → assembly → events)
    → compute (typed jobs, worker pool, runtime) → speaker / asr (models) → store (database)
    → rooms (fan-out, backlog) → data channel (signaling) / export

The speech core (``audio``, ``stream``, ``speaker``, ``asr``, ``compute``, ``store``, ``export``) imports neither
aiohttp nor aiortc nor :mod:`signaling`; :mod:`server.compose` and :mod:`server.cli` are the composition root,
the only modules that wire everything together. The import-linter contracts in ``pyproject.toml`` enforce this.

callscribe never talks to a model hub or a telemetry service. Importing this package forces
``PYANNOTE_METRICS_ENABLED=false`` (pyannote.audio 4 otherwise sends OpenTelemetry traces to its own
server on every model load, ``pyannote/audio/telemetry/config.yaml``) and ``HF_HUB_OFFLINE=1``.
"""

import os

os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"

SAMPLE_RATE = 16_000
"""Sample rate (Hz) of every internal audio buffer: ``float32[n_samples]`` in [-1, 1], mono."""
