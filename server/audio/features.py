"""Acoustic features of words in a recording: level, pitch (F0), spectral centroid and an MFCC summary.

:class:`AcousticFeatures` computes frame-level tracks **once** for a whole recording (``float32[n]`` mono, normally at
16 kHz), on a 10 ms hop, and then summarises any time span (a word) by indexing into them — no per-word copy of the
audio, no per-word analysis. The tracks are computed in blocks of about 30 s, so the working memory of the analysis
does not grow with the recording's length; what is kept is small: for 10 minutes, 60 000 frames × (13 MFCC + centroid
+ level) float32 plus the pitch track (5 MiB in all, measured with tracemalloc).

Tracks (all on a 10 ms hop; times in seconds from the start of the recording):

- **level**: sum of squares of every 10 ms block of samples (float64), so a span's RMS is exact: whole blocks
  from the table, the partial blocks at its two ends from the audio itself (a view, at most one block per end).
  Convention (the same as :func:`server.asr.guards.rms_dbfs`, the speech layer's energy gate):
  ``level_dbfs = 20·log10(RMS)`` with samples in [-1, 1], so 0 dBFS is a full-scale *square* wave and a
  full-scale sine (amplitude 1.0, RMS 1/√2) is −3.01 dBFS; a sine of amplitude ``a`` reads ``20·log10(a/√2)``.
  (AES17's "dB FS", which puts the full-scale sine at 0, reads 3.01 dB higher.) Digital silence is reported as
  :data:`LEVEL_FLOOR_DBFS` (−120 dBFS) rather than −∞, so that results stay JSON.
- **F0**: Praat's autocorrelation pitch, "Sound: To Pitch (ac)..." (Boersma 1993, "Accurate short-term analysis of
  the fundamental frequency and the harmonics-to-noise ratio of a sampled sound", Proc. Institute of Phonetic
  Sciences 17, Amsterdam), via praat-parselmouth (``Sound.to_pitch_ac``). All settings are Praat's standard values
  (Praat manual, "Sound: To Pitch (ac)...": 15 candidates, "very accurate" off, silence threshold 0.03, voicing
  threshold 0.45, octave cost 0.01, octave-jump cost 0.35, voiced/unvoiced cost 0.14; time step 0.01 s, which is
  Praat's automatic 0.75/floor for the standard 75 Hz floor) except the ceiling: **75–500 Hz**. 75 Hz is Praat's
  standard pitch floor (it fixes the analysis window at 3/75 = 40 ms); 500 Hz is the top of the standard pitch range
  of Praat's Sound window (manual, "Intro 4.2. Configuring the pitch contour": 75–500 Hz; it suggests 75–300 Hz for
  many low-pitched voices and 100–500 Hz for many high-pitched ones). A recording analysed here mixes speakers
  nobody has described, so one range must hold both of those suggestions, and 75–500 Hz is exactly their union
  (the command's own ceiling is 600 Hz). The blocks are made to behave like one call on the whole recording: Praat
  judges silence relative to the *whole* sound's peak, so each block's silence threshold is rescaled by (recording
  peak / block peak); Praat centres its frame grid in the sound it is given, so blocks start at multiples of 2 hops
  and their lengths equal the recording's modulo 2 hops, which puts their frames on the recording's own grid; and
  each block carries 1 s of context on either side for the path finder (``tests/test_features.py`` compares the
  two: same frames, same voicing everywhere, F0 equal or within 0.4 % — Praat itself is not strictly local:
  appending 20 ms of zeros to a 30 s meeting excerpt moved some F0 values anywhere in it by up to 0.09 %).
- **spectral centroid** (``librosa.feature.spectral_centroid``) and **13 MFCC** (``librosa.feature.mfcc`` on
  ``librosa.power_to_db`` of a 40-band ``librosa.feature.melspectrogram``), from one STFT per block: Hann window of
  25 ms (400 samples at 16 kHz) in a 512-point FFT, frames centred at multiples of the hop (librosa's ``center=True``
  grid, zero padding at the recording's ends), mel filters with librosa's defaults (Slaney scale and area
  normalisation, 0 Hz to Nyquist). ``power_to_db`` uses ``ref=1.0, amin=1e-10`` and **no** ``top_db`` clipping
  (librosa's default of 80 dB below the maximum would make a frame's value depend on the block it was computed in).
  A frame whose spectrum is all zeros has no centroid (NaN in the track, ignored in means).

A span ``[start_s, end_s)`` takes the frames whose centre times fall inside it; a non-empty span too short to
contain a frame centre takes the one frame nearest its middle. Spans are clipped to the recording; what is left
empty gives :data:`EMPTY` (all None / empty tuples), never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import librosa
import numpy as np
import parselmouth

LEVEL_FLOOR_DBFS = -120.0
"""Level reported for digital silence (RMS 0), instead of −∞."""

HOP_S = 0.010
"""Hop of every frame-level track (seconds)."""

WIN_S = 0.025
"""STFT window length for centroid and MFCC (seconds)."""

N_MELS = 40
N_MFCC = 13
BLOCK_S = 30.0
"""Tracks are computed in blocks of this many seconds (bounded working memory)."""

PITCH_CONTEXT_S = 1.0
"""Extra audio on either side of each pitch block (for Praat's path finder and its 40 ms window)."""

# Praat's standard values for "Sound: To Pitch (ac)..." (Praat manual), apart from the range (module docstring).
PRAAT_PITCH = {
    "max_number_of_candidates": 15,
    "very_accurate": False,
    "silence_threshold": 0.03,
    "voicing_threshold": 0.45,
    "octave_cost": 0.01,
    "octave_jump_cost": 0.35,
    "voiced_unvoiced_cost": 0.14,
}


@dataclass(frozen=True)
class WordFeatures:
    """Acoustic summary of one span (normally a word).

    Attributes:
        level_dbfs: RMS level of the span's samples in dBFS, ``20·log10(RMS)`` (a full-scale sine is −3.01 dBFS;
            module docstring), floored at −120; None if the span is empty.
        f0_hz: median F0 (Hz) of the voiced Praat pitch frames in the span; None if none is voiced.
        centroid_hz: mean spectral centroid (Hz) of the span's frames; None if empty or digitally silent.
        mfcc_mean: the 13 MFCC means over the span's frames (librosa's dB-scaled DCT-II); ``()`` if empty.
        mfcc_std: the 13 MFCC population standard deviations over the same frames; ``()`` if empty.
    """

    level_dbfs: float | None
    f0_hz: float | None
    centroid_hz: float | None
    mfcc_mean: tuple[float, ...]
    mfcc_std: tuple[float, ...]

    def as_dict(self) -> dict:
        """JSON-ready: dBFS and Hz rounded to 0.1, MFCC to 0.01; None stays None, MFCC tuples become lists."""
        return {
            "level_dbfs": _round(self.level_dbfs, 1),
            "f0_hz": _round(self.f0_hz, 1),
            "centroid_hz": _round(self.centroid_hz, 1),
            "mfcc_mean": [round(v, 2) for v in self.mfcc_mean],
            "mfcc_std": [round(v, 2) for v in self.mfcc_std],
        }


EMPTY = WordFeatures(None, None, None, (), ())
"""Features of an empty span (or one wholly outside the recording)."""


def _peak(x: np.ndarray) -> float:
    """max |x| without allocating |x|."""
    return max(float(x.max()), -float(x.min())) if x.size else 0.0


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


class AcousticFeatures:
    """Frame-level tracks computed ONCE for a whole recording (float32[n] mono at 16 kHz), then summarised per span.

    Args:
        audio: ``float32[n]`` mono samples in [-1, 1] (other float dtypes are converted; the array is kept, not
            copied, and read again only for the edges of a span's level).
        sample_rate: Hz. The hop (10 ms), window (25 ms) and FFT size (next power of two) follow it.
        pitch_floor_hz, pitch_ceiling_hz: the F0 search range of Praat's autocorrelation method (default 75–500 Hz,
            module docstring).

    Attributes (the tracks, read-only by convention):
        centroid: ``float32[n_frames]`` spectral centroid in Hz (NaN: all-zero spectrum); frame ``i`` at ``i·hop/sr``.
        mfcc: ``float32[13, n_frames]`` MFCCs on the same frames.
        pitch_times, pitch_f0: ``float64[m]`` Praat frame times (s, increasing) and F0 (Hz, 0 where unvoiced).

    Raises:
        ValueError: ``audio`` is not one-dimensional floating-point, or the sample rate / pitch range is invalid.
    """

    def __init__(self, audio: np.ndarray, sample_rate: int = 16000, *, pitch_floor_hz: float = 75.0,
                 pitch_ceiling_hz: float = 500.0) -> None:
        audio = np.asarray(audio)
        if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"audio must be float[n] mono, got {audio.dtype}{list(audio.shape)}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if not 0 < pitch_floor_hz < pitch_ceiling_hz:
            raise ValueError(f"pitch range must satisfy 0 < floor < ceiling, got {pitch_floor_hz}–{pitch_ceiling_hz}")
        self.audio = audio.astype(np.float32, copy=False)
        self.sample_rate = int(sample_rate)
        self.pitch_floor_hz = float(pitch_floor_hz)
        self.pitch_ceiling_hz = float(pitch_ceiling_hz)
        self.hop = max(1, round(HOP_S * self.sample_rate))
        self.win_length = max(2, round(WIN_S * self.sample_rate))
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        n = self.audio.size
        self.duration_s = n / self.sample_rate
        self._block_ss = self._block_sums_of_squares()
        self._block_cum = np.concatenate([[0.0], np.cumsum(self._block_ss)])
        # STFT frames on librosa's center=True grid: frame i is centred at sample i*hop.
        self.n_frames = 1 + n // self.hop if n else 0
        self.centroid = np.full(self.n_frames, np.nan, np.float32)
        self.mfcc = np.zeros((N_MFCC, self.n_frames), np.float32)
        self._spectral_tracks()
        self.pitch_times, self.pitch_f0 = self._pitch_track()

    # -- tracks ------------------------------------------------------------------------------------------------

    def _block_sums_of_squares(self) -> np.ndarray:
        """float64[ceil(n/hop)]: sum of squares of each hop-long block of samples (the last one may be short)."""
        n, hop = self.audio.size, self.hop
        n_blocks = -(-n // hop)
        out = np.zeros(n_blocks, np.float64)
        step = max(1, int(BLOCK_S * self.sample_rate) // hop) * hop
        for a in range(0, n, step):
            x = self.audio[a:a + step].astype(np.float64)
            full = x.size // hop
            i = a // hop
            rows = x[:full * hop].reshape(full, hop)
            out[i:i + full] = np.einsum("ij,ij->i", rows, rows)
            if x.size > full * hop:
                tail = x[full * hop:]
                out[i + full] = float(tail @ tail)
        return out

    def _spectral_tracks(self) -> None:
        """Fill ``centroid`` (float32[n_frames], Hz, NaN for all-zero spectra) and ``mfcc`` (float32[13, n_frames])."""
        n, hop, n_fft, sr = self.audio.size, self.hop, self.n_fft, self.sample_rate
        if not self.n_frames:
            return
        half = n_fft // 2
        per_block = max(1, int(BLOCK_S * sr) // hop)
        for f0 in range(0, self.n_frames, per_block):
            f1 = min(self.n_frames, f0 + per_block)
            a, b = f0 * hop - half, (f1 - 1) * hop + half + (n_fft % 2)
            chunk = self.audio[max(a, 0):min(b, n)]
            if a < 0 or b > n:  # zero padding at the recording's ends, as librosa's center=True does
                chunk = np.pad(chunk, (max(0, -a), max(0, b - n)))
            spec = np.abs(librosa.stft(chunk, n_fft=n_fft, hop_length=hop, win_length=self.win_length,
                                       window="hann", center=False))
            spec = spec[:, :f1 - f0]
            centroid = librosa.feature.spectral_centroid(S=spec, sr=sr, n_fft=n_fft, hop_length=hop)[0]
            centroid[~(spec.sum(axis=0) > 0)] = np.nan
            self.centroid[f0:f1] = centroid
            power = np.square(spec, out=spec)
            mel = librosa.feature.melspectrogram(S=power, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=N_MELS)
            log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
            self.mfcc[:, f0:f1] = librosa.feature.mfcc(S=log_mel, sr=sr, n_mfcc=N_MFCC)

    def _pitch_track(self) -> tuple[np.ndarray, np.ndarray]:
        """(times float64[m] in s, F0 float64[m] in Hz with 0 = unvoiced): Praat "To Pitch (ac)", block by block."""
        n, sr = self.audio.size, self.sample_rate
        if not n:
            return np.zeros(0), np.zeros(0)
        global_peak = _peak(self.audio)
        if global_peak == 0.0:
            return np.zeros(0), np.zeros(0)
        # Praat centres its frames in the analysed sound. Pieces that start at a multiple of 2·hop samples and whose
        # length equals the recording's modulo 2·hop get frames on the very grid of the whole recording.
        grid = 2 * self.hop
        block = max(1, round(BLOCK_S * sr / grid)) * grid
        context = math.ceil(PITCH_CONTEXT_S * sr / grid) * grid
        times, values = [], []
        for c0 in range(0, n, block):
            c1 = min(n, c0 + block)
            a, b = max(0, c0 - context), c1 + context
            b = min(n, b + (n - (b - a)) % grid)
            piece = self.audio[a:b]
            peak = _peak(piece)
            if peak == 0.0:
                continue
            settings = dict(PRAAT_PITCH, silence_threshold=PRAAT_PITCH["silence_threshold"] * global_peak / peak)
            try:
                pitch = parselmouth.Sound(piece.astype(np.float64), sampling_frequency=sr, start_time=a / sr) \
                    .to_pitch_ac(time_step=self.hop / sr, pitch_floor=self.pitch_floor_hz,
                                 pitch_ceiling=self.pitch_ceiling_hz, **settings)
            except parselmouth.PraatError:  # shorter than one analysis window (3 / pitch floor)
                continue
            t = pitch.xs()
            f = pitch.selected_array["frequency"]
            keep = (t >= c0 / sr) & (t < c1 / sr)
            times.append(t[keep])
            values.append(f[keep])
        if not times:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(times), np.concatenate(values)

    # -- per span ----------------------------------------------------------------------------------------------

    def _clip(self, start_s: float, end_s: float) -> tuple[float, float] | None:
        """The span clipped to the recording, or None when nothing (or NaN) is left."""
        try:
            start, end = max(float(start_s), 0.0), min(float(end_s), self.duration_s)
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
            return None
        return start, end

    @staticmethod
    def _frames(times: np.ndarray, start: float, end: float) -> slice:
        """Indices of sorted frame ``times`` in [start, end); the one nearest the middle if none lies inside."""
        i, j = np.searchsorted(times, [start, end], side="left")
        if j > i or not times.size:
            return slice(int(i), int(j))
        mid = 0.5 * (start + end)
        k = int(np.clip(np.searchsorted(times, mid), 1, times.size - 1)) if times.size > 1 else 0
        if times.size > 1 and abs(times[k - 1] - mid) <= abs(times[k] - mid):
            k -= 1
        return slice(k, k + 1)

    def _stft_frames(self, start: float, end: float) -> slice:
        """STFT frames (centred at i·hop/sr) in [start, end), or the nearest one (the grid is regular)."""
        step = self.hop / self.sample_rate
        i = max(0, math.ceil(start / step - 1e-9))
        j = min(self.n_frames, math.ceil(end / step - 1e-9))
        if j > i:
            return slice(i, j)
        k = min(self.n_frames - 1, max(0, round(0.5 * (start + end) / step)))
        return slice(k, k + 1)

    def _level(self, start: float, end: float) -> float | None:
        a = round(start * self.sample_rate)
        b = min(self.audio.size, round(end * self.sample_rate))
        if b <= a:
            return None
        hop = self.hop
        ba, bb = -(-a // hop), b // hop  # whole blocks [ba, bb)
        if ba >= bb:
            x = self.audio[a:b].astype(np.float64)
            ss = float(x @ x)
        else:
            head = self.audio[a:ba * hop].astype(np.float64)
            tail = self.audio[bb * hop:b].astype(np.float64)
            ss = float(self._block_cum[bb] - self._block_cum[ba]) + float(head @ head) + float(tail @ tail)
        rms = math.sqrt(max(ss, 0.0) / (b - a))
        return max(LEVEL_FLOOR_DBFS, 20.0 * math.log10(rms)) if rms > 0 else LEVEL_FLOOR_DBFS

    def span(self, start_s: float, end_s: float) -> WordFeatures:
        """Summarise ``[start_s, end_s)`` (seconds): see :class:`WordFeatures`. Never raises for odd spans."""
        clipped = self._clip(start_s, end_s)
        if clipped is None or not self.n_frames:
            return EMPTY
        start, end = clipped
        level = self._level(start, end)
        if level is None:
            return EMPTY
        f0 = None
        if self.pitch_times.size:
            values = self.pitch_f0[self._frames(self.pitch_times, start, end)]
            voiced = values[values > 0]
            if voiced.size:
                f0 = float(np.median(voiced))
        frames = self._stft_frames(start, end)
        cent = self.centroid[frames]
        centroid = float(np.nanmean(cent)) if np.any(np.isfinite(cent)) else None
        mfcc = self.mfcc[:, frames].astype(np.float64)
        return WordFeatures(level, f0, centroid, tuple(float(v) for v in mfcc.mean(axis=1)),
                            tuple(float(v) for v in mfcc.std(axis=1)))

    def voiced_f0(self, spans: Iterable[tuple[float, float]]) -> list[float]:
        """All voiced F0 values (Hz, one per 10 ms pitch frame) inside the spans — e.g. for a speaker's mean pitch.

        Frames are selected as in :meth:`span` and counted once even where spans overlap; in time order."""
        if not self.pitch_times.size:
            return []
        mask = np.zeros(self.pitch_times.size, bool)
        for start_s, end_s in spans:
            clipped = self._clip(start_s, end_s)
            if clipped is not None:
                mask[self._frames(self.pitch_times, *clipped)] = True
        mask &= self.pitch_f0 > 0
        return [float(v) for v in self.pitch_f0[mask]]

    @staticmethod
    def describe() -> dict:
        """Library versions and parameters (defaults), for an analysis result's ``models`` field."""
        return {
            "libraries": {"librosa": librosa.__version__, "praat-parselmouth": parselmouth.__version__,
                          "praat": parselmouth.PRAAT_VERSION},
            "hop_s": HOP_S,
            "level": {"unit": "dBFS", "definition": "20*log10(RMS), full-scale sine = -3.01 dBFS",
                      "floor_dbfs": LEVEL_FLOOR_DBFS},
            "pitch": {"method": "Praat Sound: To Pitch (ac) (Boersma 1993)", "statistic": "median of voiced frames",
                      "pitch_floor_hz": 75.0, "pitch_ceiling_hz": 500.0, "time_step_s": HOP_S, **PRAAT_PITCH},
            "spectrum": {"window": "hann", "win_s": WIN_S, "n_fft_at_16k": 512, "n_mels": N_MELS, "n_mfcc": N_MFCC,
                         "centroid": "librosa.feature.spectral_centroid, mean of frames",
                         "mfcc": "librosa.feature.mfcc on power_to_db(mel, ref=1, top_db=None); mean and std"},
        }
