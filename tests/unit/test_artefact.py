import io
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch

import streamvae as sv
from streamvae import (
    ArtefactError,
    ArtefactFormatError,
    ArtefactIntegrityError,
    UnsafeArtefactError,
    load_artefact,
    loads_artefact,
    save_artefact,
)
from streamvae.artefact import FORMAT_VERSION


@pytest.fixture
def model(tiny_config, tiny_windows):
    m = sv.RecurrentVAE(tiny_config)
    sv.fit(m, tiny_windows, sv.TrainConfig(epochs=2))
    return m


@pytest.fixture
def saved(tmp_path, model):
    path = tmp_path / "model.safetensors"
    digest = save_artefact(
        path,
        model,
        train_config=sv.TrainConfig(epochs=2),
        scaler={"kind": "standard", "mean": [0.0, 1.0], "scale": [1.0, 2.0]},
        threshold={"kind": "static_quantile", "value": 1.5},
        metadata={"data_span": ["2026-01-01T00:00:00Z", "2026-01-20T00:00:00Z"]},
    )
    return path, digest


def test_round_trip_gives_bit_identical_scores(saved, model, tiny_windows):
    path, _ = saved
    loaded = load_artefact(path).model
    a = sv.Scorer(model, sv.ScoringConfig(samples=3)).score_many(tiny_windows)
    b = sv.Scorer(loaded, sv.ScoringConfig(samples=3)).score_many(tiny_windows)
    assert np.array_equal(a.scores, b.scores)
    assert np.array_equal(a.contributions, b.contributions)


def test_artefact_describes_itself(saved, model):
    path, digest = saved
    art = load_artefact(path)
    assert art.format_version == FORMAT_VERSION
    assert art.content_hash == digest
    assert art.model.config == model.config
    assert art.train_config == sv.TrainConfig(epochs=2)
    assert art.scaler == {"kind": "standard", "mean": [0.0, 1.0], "scale": [1.0, 2.0]}
    assert art.threshold == {"kind": "static_quantile", "value": 1.5}
    assert art.metadata["data_span"][0] == "2026-01-01T00:00:00Z"
    assert art.code_version == sv.__version__


def test_saving_the_same_model_twice_gives_the_same_content_hash(tmp_path, model):
    assert save_artefact(tmp_path / "a", model) == save_artefact(tmp_path / "b", model)


def test_save_leaves_no_temporary_file_behind(saved):
    path, _ = saved
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]


def test_a_flipped_weight_byte_is_caught_by_the_content_hash(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtefactIntegrityError, match="content hash mismatch"):
        load_artefact(path)


def test_an_edited_manifest_is_caught_by_the_content_hash(saved):
    path, _ = saved
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    manifest = json.loads(header["__metadata__"]["manifest"])
    manifest["metadata"]["data_span"] = ["forged"]
    header["__metadata__"]["manifest"] = json.dumps(manifest)
    new_header = json.dumps(header).encode()
    new_header += b" " * (-len(new_header) % 8)
    path.write_bytes(struct.pack("<Q", len(new_header)) + new_header + data[8 + n :])
    with pytest.raises(ArtefactIntegrityError):
        load_artefact(path)


def test_a_truncated_file_is_refused(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ArtefactFormatError):
        load_artefact(path)


def test_a_missing_file_says_where_it_looked(tmp_path):
    with pytest.raises(ArtefactError, match="no artefact at"):
        load_artefact(tmp_path / "nope.safetensors")


def test_a_plain_safetensors_file_is_not_mistaken_for_an_artefact(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ArtefactFormatError, match="not a streamvae artefact"):
        load_artefact(path)


def test_a_newer_format_version_asks_for_an_upgrade(model):
    data, _ = sv.dumps_artefact(model)
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["format_version"] = "99"
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with pytest.raises(ArtefactFormatError, match=r"v99.*upgrade"):
        loads_artefact(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


class _Payload:
    """Unpickling this object would create the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_artefact_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    assert pickle.loads(path.read_bytes()) is not None  # the payload is real ...
    marker.unlink()  # ... and works; now reset the evidence
    with pytest.raises(UnsafeArtefactError, match=r"pickle.*nothing in it ran"):
        load_artefact(path)
    assert not marker.exists()


def test_a_torch_save_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "evil": _Payload(marker)}, path)
    with pytest.raises(UnsafeArtefactError, match=r"torch\.save"):
        load_artefact(path)
    assert not marker.exists()


def test_an_old_protocol_pickle_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=0))
    with pytest.raises(UnsafeArtefactError):
        load_artefact(path)
    assert not marker.exists()


def test_random_bytes_are_refused_with_a_format_error(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ArtefactError):
        load_artefact(path)


def test_a_zip_without_pickles_is_a_format_error(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("readme.txt", "hello")
    path = tmp_path / "x.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ArtefactFormatError, match="zip archive"):
        load_artefact(path)
