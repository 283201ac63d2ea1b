"""Audio in: decoding and resampling to 16 kHz mono ``float32`` (:mod:`.ingest`) and per-frame voice activity
(:mod:`.vad`). First stage of the data path; knows nothing of HTTP or WebRTC."""
