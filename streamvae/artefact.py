"""Self-describing model artefacts that can be loaded without trusting the file.

An artefact is one safetensors file. Its header metadata holds a JSON manifest — format
version, model config, training config, scaler state, threshold state, free-form metadata
(data span, losses, code version) — and a SHA-256 content hash over the manifest and every
tensor. safetensors stores raw little-endian tensors and a JSON header; nothing in it is ever
executed, unlike ``torch.load`` on a pickle. Files that *are* pickles (plain pickles, or the zip
archives ``torch.save`` writes) are recognised by their opcodes — parsed with
:mod:`pickletools`, which reads opcodes without running them — and refused with
:class:`UnsafeArtefactError` before anything else happens.

One file rather than a directory so an artefact can be copied, hashed, or published to a
Kafka topic as a single message.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickletools
import struct
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from streamvae._version import __version__
from streamvae.config import TrainConfig, VAEConfig
from streamvae.errors import (
    ArtefactError,
    ArtefactFormatError,
    ArtefactIntegrityError,
    ConfigError,
    UnsafeArtefactError,
)
from streamvae.model.vae import RecurrentVAE

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Artefact",
    "dumps_artefact",
    "load_artefact",
    "loads_artefact",
    "save_artefact",
]

FORMAT_NAME = "streamvae.artefact"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_ARTEFACT_BYTES = 1024 * 1024 * 1024
_HASH_DOMAIN = b"streamvae-artefact\x00"


@dataclass(frozen=True)
class Artefact:
    """A loaded model and everything needed to use it the way it was trained.

    ``scaler`` and ``threshold`` are state slots (JSON-safe dicts) owned by the scaling and
    threshold stages; ``metadata`` is free-form provenance (data span, losses, code version).

    Example:
        >>> import tempfile, pathlib
        >>> model = RecurrentVAE(VAEConfig(channels=("a", "b"), window=8))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
        >>> digest = save_artefact(path, model, metadata={"note": "demo"})
        >>> art = load_artefact(path)
        >>> art.content_hash == digest, art.metadata["note"]
        (True, 'demo')
    """

    model: RecurrentVAE
    content_hash: str
    format_version: int
    train_config: TrainConfig | None = None
    scaler: dict[str, Any] | None = None
    threshold: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""


def _canonical(obj: Any) -> bytes:
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    except ValueError as exc:
        raise ArtefactError(f"artefact manifest must be JSON without NaN/inf: {exc}") from exc


def _content_hash(manifest: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256(_HASH_DOMAIN)
    h.update(_canonical(manifest))
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"\x00{name}\x00{t.dtype}\x00{tuple(t.shape)}\x00".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def dumps_artefact(
    model: RecurrentVAE,
    *,
    train_config: TrainConfig | None = None,
    scaler: Mapping[str, Any] | None = None,
    threshold: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[bytes, str]:
    """Serialise to bytes; returns ``(data, content_hash)``."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "code_version": __version__,
        "model_config": model.config.to_dict(),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "scaler": dict(scaler) if scaler is not None else None,
        "threshold": dict(threshold) if threshold is not None else None,
        "metadata": dict(metadata or {}),
    }
    digest = _content_hash(manifest, tensors)
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "manifest": _canonical(manifest).decode(),
        "content_hash": digest,
    }
    return st_save(tensors, metadata=header), digest


def save_artefact(
    path: str | os.PathLike[str],
    model: RecurrentVAE,
    *,
    train_config: TrainConfig | None = None,
    scaler: Mapping[str, Any] | None = None,
    threshold: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Write atomically (temp file, fsync, rename): a crash never leaves a half-written file
    under ``path``. Returns the content hash."""
    data, digest = dumps_artefact(
        model, train_config=train_config, scaler=scaler, threshold=threshold, metadata=metadata
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return digest


def load_artefact(path: str | os.PathLike[str]) -> Artefact:
    """Load and verify an artefact file. Never unpickles anything."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ArtefactError(f"no artefact at {p}") from None
    if size > MAX_ARTEFACT_BYTES:
        raise ArtefactFormatError(f"{p} is {size} bytes, larger than any streamvae artefact")
    return loads_artefact(p.read_bytes(), source=str(p))


def _refuse_pickles(data: bytes, source: str) -> None:
    if data[:4] == b"PK\x03\x04":
        names: list[str] = []
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            pass
        if any(n.endswith(".pkl") for n in names) or not names:
            raise UnsafeArtefactError(
                f"{source} is a torch.save/zip archive with pickled objects; loading it could "
                "execute arbitrary code, so it was refused and nothing in it ran. streamvae only "
                "loads safetensors artefacts: re-export the model with `streamvae train` or "
                "streamvae.save_artefact from a trusted environment"
            )
        raise ArtefactFormatError(f"{source} is a zip archive, not a streamvae artefact")
    try:
        ops = pickletools.genops(io.BytesIO(data[: 64 * 1024]))
        first = next(ops)
        is_pickle = first[0].name == "PROTO" or any(op[0].name == "STOP" for op in ops)
    except Exception:  # not a pickle stream: genops raises on the first invalid opcode
        is_pickle = False
    if is_pickle:
        raise UnsafeArtefactError(
            f"{source} is a Python pickle; loading it could execute arbitrary code, so it was "
            "refused and nothing in it ran. streamvae only loads safetensors artefacts"
        )


def _read_header(data: bytes, source: str) -> dict[str, Any]:
    if len(data) < 10:
        _refuse_pickles(data, source)
        raise ArtefactFormatError(f"{source} is too short ({len(data)} bytes) to be an artefact")
    (n,) = struct.unpack("<Q", data[:8])
    if not (2 <= n <= MAX_HEADER_BYTES and 8 + n <= len(data) and data[8:9] == b"{"):
        _refuse_pickles(data, source)
        raise ArtefactFormatError(
            f"{source} is not a safetensors file (bad header); expected a streamvae artefact"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtefactFormatError(f"{source}: unreadable safetensors header: {exc}") from exc
    if not isinstance(header, dict):
        raise ArtefactFormatError(f"{source}: safetensors header is not a JSON object")
    return header


def _reject_constant(name: str) -> None:
    raise ArtefactFormatError(f"artefact manifest contains {name}, which is not valid JSON")


def loads_artefact(data: bytes, source: str = "<bytes>") -> Artefact:
    """Load and verify an artefact from bytes (e.g. a Kafka message value)."""
    header = _read_header(data, source)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ArtefactFormatError(
            f"{source} is a safetensors file but not a streamvae artefact (no '{FORMAT_NAME}' "
            "marker in its metadata)"
        )
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ArtefactFormatError(f"{source}: format_version is not an integer") from None
    if version not in SUPPORTED_VERSIONS:
        raise ArtefactFormatError(
            f"{source} has artefact format v{version}; this streamvae ({__version__}) reads "
            f"{sorted(SUPPORTED_VERSIONS)} — upgrade streamvae to load it"
        )
    try:
        manifest = json.loads(meta.get("manifest", ""), parse_constant=_reject_constant)
        tensors = st_load(data)
    except ArtefactFormatError:
        raise
    except Exception as exc:
        raise ArtefactFormatError(f"{source}: corrupt artefact: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtefactFormatError(f"{source}: manifest is not a JSON object")
    expected = meta.get("content_hash")
    actual = _content_hash(manifest, tensors)
    if expected != actual:
        raise ArtefactIntegrityError(
            f"{source}: content hash mismatch (header says {expected}, content is {actual}); "
            "the file is corrupt or was modified — restore it from the registry"
        )
    try:
        model_config = VAEConfig.from_dict(manifest["model_config"])
        raw_train = manifest.get("train_config")
        train_config = TrainConfig.from_dict(raw_train) if raw_train is not None else None
    except (KeyError, TypeError, ConfigError) as exc:
        raise ArtefactFormatError(f"{source}: invalid config in manifest: {exc}") from exc
    model = RecurrentVAE(model_config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ArtefactFormatError(
            f"{source}: weights do not match the model config: {exc}"
        ) from exc
    model.eval()
    return Artefact(
        model=model,
        content_hash=actual,
        format_version=version,
        train_config=train_config,
        scaler=manifest.get("scaler"),
        threshold=manifest.get("threshold"),
        metadata=manifest.get("metadata") or {},
        code_version=str(manifest.get("code_version", "")),
    )
