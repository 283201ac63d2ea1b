"""Model resolution: wheels → verified local directories; never a hub."""

from __future__ import annotations

import pytest

from server import models
from server.errors import ModelError


def test_base_model_is_assembled_verified_and_reused(tmp_path):
    target = models.assemble_base_model(tmp_path)
    model_bin = target / "model.bin"
    assert model_bin.stat().st_size == models.BASE_MODEL_SIZE
    assert models._sha256(model_bin) == models.BASE_MODEL_SHA256
    assert {p.name for p in target.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    mtime = model_bin.stat().st_mtime_ns
    assert models.assemble_base_model(tmp_path) == target
    assert model_bin.stat().st_mtime_ns == mtime  # verified, not rebuilt


def test_corrupt_cached_model_is_rebuilt(tmp_path):
    target = models.assemble_base_model(tmp_path)
    with (target / "model.bin").open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00" * 64)
    assert not models._verify_base(target / "model.bin")
    models.assemble_base_model(tmp_path)
    assert models._verify_base(target / "model.bin")


def test_tiny_en_and_local_directories(tmp_path):
    tiny = models.resolve_whisper_model("tiny.en", tmp_path)
    assert (tiny / "model.bin").is_file()
    assert models.resolve_whisper_model(str(tiny), tmp_path) == tiny


def test_incomplete_directory_and_unknown_names_are_refused(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"tokenizer\.json"):
        models.resolve_whisper_model(str(tmp_path / "m"), tmp_path)
    with pytest.raises(ModelError, match="never fetched"):
        models.resolve_whisper_model("large-v3", tmp_path)


def test_bundled_speaker_segmentation_and_vad_weights_exist():
    assert models.campplus_checkpoint().stat().st_size > 20_000_000
    assert models.segmentation_checkpoint().is_file()
    assert models.silero_vad_onnx().is_file()
    with pytest.raises(ModelError):
        models.campplus_checkpoint(models.campplus_checkpoint().with_name("missing.pt"))
