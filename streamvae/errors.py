"""One exception tree for the whole library.

Callers catch :class:`StreamVAEError` to handle anything streamvae raises on purpose;
everything else is a bug. Each error says what was wrong and what to do about it.

::

    StreamVAEError
    ├── ConfigError            (also a ValueError)  a config field is out of range or unknown
    ├── InputError             (also a ValueError)  data handed to the core has the wrong shape
    │                                               or non-finite values
    ├── TrainingError                               fitting could not produce a usable model
    │   └── NonFiniteLossError                      the loss became NaN or infinite
    └── ArtefactError                               a model artefact cannot be used
        ├── UnsafeArtefactError                     the file carries a pickle payload; refused
        │                                           before anything in it is executed
        ├── ArtefactFormatError                     not a streamvae artefact, or an unsupported
        │                                           format version
        └── ArtefactIntegrityError                  the content hash does not match the content
"""

from __future__ import annotations

__all__ = [
    "ArtefactError",
    "ArtefactFormatError",
    "ArtefactIntegrityError",
    "ConfigError",
    "InputError",
    "NonFiniteLossError",
    "StreamVAEError",
    "TrainingError",
    "UnsafeArtefactError",
]


class StreamVAEError(Exception):
    """Base of every error streamvae raises on purpose."""


class ConfigError(StreamVAEError, ValueError):
    """A configuration value is invalid; the message names the field."""


class InputError(StreamVAEError, ValueError):
    """Data passed to the core has the wrong shape, dtype or non-finite values."""


class TrainingError(StreamVAEError):
    """Training could not produce a usable model."""


class NonFiniteLossError(TrainingError):
    """The training loss became NaN or infinite."""


class ArtefactError(StreamVAEError):
    """A model artefact cannot be saved or loaded."""


class UnsafeArtefactError(ArtefactError):
    """The file would need unpickling to load; it is refused and nothing in it runs."""


class ArtefactFormatError(ArtefactError):
    """The file is not a streamvae artefact, or its format version is not supported."""


class ArtefactIntegrityError(ArtefactError):
    """The artefact's content hash does not match its content (corrupt or tampered)."""
