"""Fixtures every test directory shares."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "alert.schema.json"


def _date_time(text: object) -> bool:
    if not isinstance(text, str) or not text.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return False
    return True


@pytest.fixture(scope="session")
def validator() -> jsonschema.Draft202012Validator:
    """The published alert schema (docs/alert.schema.json), with date-time checked."""
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_date_time)  # jsonschema checks date-time only with extras
    return jsonschema.Draft202012Validator(schema, format_checker=checker)
