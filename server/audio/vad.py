"""Voice activity detection: frame-by-frame speech/non-speech classifiers behind one interface.

- :class:`WebRtcVad`: Google's WebRTC VAD (``webrtcvad-wheels``), 30 ms frames of 16-bit PCM.
- :class:`SileroVad`: Silero VAD v6 (ONNX, shipped in the faster-whisper wheel), driven directly so its
  LSTM state (``h``/``c``) and 64-sample context carry across 512-sample frames; faster-whisper's own
  wrapper resets the state on every call and so cannot stream (docs/measurements.md).

:class:`VadStream` cuts input of any length into the classifier's frames and returns
``(frame, speech_probability)`` pairs.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .. import SAMPLE_RATE


class FrameClassifier(Protocol):
    """Classifies fixed-size frames of 16 kHz mono float32 audio."""

    frame_samples: int

    def speech_prob(self, frame: np.ndarray) -> float:
        """Speech probability in [0, 1] of ``float32[frame_samples]``."""

    def reset(self) -> None:
        """Forget all stream state."""


class WebRtcVad:
    """webrtcvad on 30 ms frames (480 samples). Returns 1.0 for speech, 0.0 otherwise.

    Args:
        aggressiveness: webrtcvad mode, 0 (least) to 3 (most aggressive filtering of non-speech).
    """

    frame_samples = SAMPLE_RATE * 30 // 1000

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def speech_prob(self, frame: np.ndarray) -> float:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return 1.0 if self._vad.is_speech(pcm, SAMPLE_RATE) else 0.0

    def reset(self) -> None:  # webrtcvad keeps no state we can reset; frames are classified alone
        pass


class SileroVad:
    """Silero VAD v6 (ONNX), streaming over 512-sample (32 ms) frames with carried state.

    Inputs follow the model's signature: ``input float32[1, 64 + 512]`` (context + frame),
    ``h``/``c float32[1, 1, 128]``; output ``speech_probs float32[1]``.
    """

    frame_samples = 512
    _context = 64

    def __init__(self, model_path: str | None = None) -> None:
        import onnxruntime

        from ..models import silero_vad_onnx

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(model_path or silero_vad_onnx()), providers=["CPUExecutionProvider"], sess_options=opts
        )
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._ctx = np.zeros(self._context, dtype=np.float32)

    def speech_prob(self, frame: np.ndarray) -> float:
        x = np.concatenate([self._ctx, frame.astype(np.float32, copy=False)])[None, :]
        prob, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._ctx = x[0, -self._context :].copy()
        return float(prob.reshape(-1)[0])


def make_classifier(kind: str, aggressiveness: int = 2) -> FrameClassifier:
    """Build the classifier named by ``Settings.vad`` (``"webrtc"`` or ``"silero"``)."""
    if kind == "webrtc":
        return WebRtcVad(aggressiveness)
    if kind == "silero":
        return SileroVad()
    raise ValueError(f"unknown VAD {kind!r}")


class VadStream:
    """Buffers audio of any length into classifier frames.

    ``push(samples)`` returns a list of ``(frame float32[frame_samples], prob)`` in stream order;
    incomplete tail samples wait for the next push.
    """

    def __init__(self, classifier: FrameClassifier) -> None:
        self.classifier = classifier
        self._buf = np.zeros(0, dtype=np.float32)

    @property
    def frame_samples(self) -> int:
        return self.classifier.frame_samples

    @staticmethod
    def check(samples: np.ndarray) -> None:
        """Raise ValueError unless ``samples`` is ``float32[n]``."""
        if samples.dtype != np.float32 or samples.ndim != 1:
            raise ValueError(f"expected float32[n] mono audio, got {samples.dtype}{list(samples.shape)}")

    def reset(self) -> int:
        """Drop buffered samples and the classifier's state (after a pause); returns how many were dropped."""
        dropped = self._buf.size
        self._buf = np.zeros(0, dtype=np.float32)
        self.classifier.reset()
        return dropped

    def push(self, samples: np.ndarray) -> list[tuple[np.ndarray, float]]:
        self.check(samples)
        buf = np.concatenate([self._buf, samples]) if self._buf.size else samples
        n = self.frame_samples
        whole = buf.size // n * n
        out = [(buf[i : i + n], self.classifier.speech_prob(buf[i : i + n])) for i in range(0, whole, n)]
        self._buf = buf[whole:].copy()
        return out
