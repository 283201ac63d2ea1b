"""WebRTC transport (aiortc): one peer per call (:mod:`.peer`) and the ICE configuration (:mod:`.ice`). The wire
protocol spoken on the data channel lives in :mod:`signaling.protocol`; this package only moves bytes and audio."""
