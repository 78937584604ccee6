"""A versioned model registry in a directory: ``v0001.safetensors`` … and a ``latest`` pointer.

Why a directory of immutable files: a model version is an artefact that never changes once
written (its content hash is in its manifest), so "saving" is creating a new file, and the only
mutable thing is the pointer naming the serving version. Both are written so that a crash at
any instant leaves the registry consistent:

- an artefact is written to a temporary file, flushed and fsynced, then *linked* to its final
  name (``os.link`` fails if the name exists: two writers never overwrite each other's
  version) and the directory is fsynced; a crash before the link leaves only a temporary file
  (ignored, and removed by the next writer);
- the pointer is a one-line file replaced atomically (``os.replace``) after the artefact it
  names is durable, so ``latest`` never names a missing or partial artefact.

Rollback moves the pointer; nothing is deleted. Every version records why it exists in its
manifest metadata (``created``, ``reason``, ``gate``), which ``streamvae models list|show``
print.

Example:
    >>> import tempfile
    >>> reg = ModelRegistry(tempfile.mkdtemp())
    >>> reg.latest() is None
    True
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamvae.artefact import Artefact, loads_artefact
from streamvae.errors import InputError

__all__ = ["ModelInfo", "ModelRegistry", "RegistryError"]

_VERSION = re.compile(r"^v(\d{4,})$")
_SUFFIX = ".safetensors"
LATEST = "latest"


class RegistryError(InputError):
    """The registry cannot do what was asked (no such version, nothing to roll back to)."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One registered version, as ``streamvae models list`` shows it.

    Example:
        >>> ModelInfo("v0002", 1.7e9, "ab12", 163_840, {}, False).version
        'v0002'
    """

    version: str
    created: float  # epoch seconds (the manifest's ``created``, else the file's mtime)
    content_hash: str
    size: int  # bytes
    metadata: Mapping[str, Any]
    latest: bool


def version_name(number: int) -> str:
    return f"v{number:04d}"


def version_number(version: str, default: int | None = None) -> int:
    """v0007 → 7. Anything else raises, or gives ``default`` when one is passed (0 reads
    "older than every published version")."""
    m = _VERSION.match(version)
    if m is None:
        if default is not None:
            return default
        raise RegistryError(f"{version!r} is not a version name (expected v0001, v0002, …)")
    return int(m.group(1))


class ModelRegistry:
    """Versioned artefacts in ``root`` (see the module docstring).

    Example:
        >>> # reg = ModelRegistry("/var/lib/streamvae/models")
        >>> # version = reg.save(artefact_bytes, reason="drift")   # 'v0003', now latest
        >>> # reg.rollback()                                        # back to 'v0002'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def versions(self) -> list[str]:
        """Every complete version, oldest first."""
        found = []
        for p in self.root.iterdir():
            if p.suffix == _SUFFIX and _VERSION.match(p.stem):
                found.append(p.stem)
        return sorted(found, key=version_number)

    def latest(self) -> str | None:
        """The version the pointer names (None for an empty registry)."""
        try:
            text = (self.root / LATEST).read_text().strip()
        except FileNotFoundError:
            return None
        version_number(text)
        return text

    def path(self, version: str) -> Path:
        version_number(version)
        p = self.root / f"{version}{_SUFFIX}"
        if not p.is_file():
            have = ", ".join(self.versions()) or "none"
            raise RegistryError(f"no model {version} in {self.root} (versions: {have})")
        return p

    def load(self, version: str | None = None) -> Artefact:
        """The artefact of ``version`` (default: latest)."""
        v = version or self.latest()
        if v is None:
            raise RegistryError(f"the registry {self.root} is empty: nothing to load")
        p = self.path(v)
        return loads_artefact(p.read_bytes(), str(p))

    def info(self, version: str) -> ModelInfo:
        p = self.path(version)
        art = loads_artefact(p.read_bytes(), str(p))
        meta = dict(art.metadata)
        created = meta.get("created")
        return ModelInfo(
            version,
            float(created) if isinstance(created, int | float) else p.stat().st_mtime,
            art.content_hash,
            p.stat().st_size,
            meta,
            version == self.latest(),
        )

    def list(self) -> list[ModelInfo]:
        return [self.info(v) for v in self.versions()]

    def next_version(self) -> str:
        have = self.versions()
        return version_name(version_number(have[-1]) + 1 if have else 1)

    # ------------------------------------------------------------------ writing

    def save(self, data: bytes, version: str | None = None, *, make_latest: bool = True) -> str:
        """Register artefact bytes (from ``Detector.export_model`` or ``dumps_artefact``) as
        ``version`` (default: the next free one) and, by default, point ``latest`` at it."""
        loads_artefact(data, "<artefact to register>")  # never register something unloadable
        self._clean_temporaries()
        tmp = self.root / f".tmp-{os.getpid()}-{uuid.uuid4().hex}{_SUFFIX}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            for _ in range(1000):
                v = version or self.next_version()
                try:
                    os.link(tmp, self.root / f"{v}{_SUFFIX}")
                    break
                except FileExistsError:
                    if version is not None:
                        raise RegistryError(
                            f"{version} already exists in {self.root}; versions never change"
                        ) from None
            else:  # pragma: no cover - a thousand concurrent writers
                raise RegistryError(f"could not allocate a version in {self.root}")
        finally:
            tmp.unlink(missing_ok=True)
        self._fsync_dir()
        if make_latest:
            self.set_latest(v)
        return v

    def set_latest(self, version: str) -> None:
        self.path(version)  # it must exist (and be durable: save fsynced it)
        tmp = self.root / f".tmp-{os.getpid()}-latest-{uuid.uuid4().hex}"
        with open(tmp, "w") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / LATEST)
        self._fsync_dir()

    def rollback(self, to: str | None = None) -> str:
        """Point ``latest`` at ``to`` (default: the version before the current latest)."""
        if to is None:
            current = self.latest()
            older = [
                v
                for v in self.versions()
                if current is None or version_number(v) < version_number(current)
            ]
            if not older:
                raise RegistryError(
                    f"nothing to roll back to: {current or 'no version'} is the oldest in "
                    f"{self.root}"
                )
            to = older[-1]
        self.set_latest(to)
        return to

    def export(self, version: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a version's artefact to ``dest`` (a file, or a directory to put it in)."""
        src = self.path(version)
        target = Path(dest)
        if target.is_dir():
            target = target / src.name
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
        return target

    def _clean_temporaries(self) -> None:
        """Remove temporaries of writers that died (their pid is in the name; no clock)."""
        for p in self.root.glob(".tmp-*"):
            try:
                pid = int(p.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    p.unlink()
            except PermissionError:
                pass  # alive, another user's

    def _fsync_dir(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
