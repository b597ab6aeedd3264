"""Fixtures of the rindle-otel suite: a rindle app instrumented on an in-memory SDK pipeline
(built by ``otelkit.exporting``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otelkit import Photo, Pipeline, exporting
from tests.apps import MakeApp


@pytest.fixture
def pipeline(make_app: MakeApp) -> Iterator[Pipeline]:
    """A :class:`Rindle` (both dialects) exporting to an in-memory SDK pipeline."""
    with exporting(make_app(profiles=[Photo])) as pipeline:
        yield pipeline
