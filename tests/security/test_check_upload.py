"""app.check_upload takes a hostile file the way app.upload does (rindle-django's form field
runs it on every posted file): an endless stream is refused after reading at most
max_bytes plus one chunk, a path in the filename never survives, and nothing is stored,
recorded or left spooled. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from rindle import Rindle
from rindle.errors import UploadRejected
from tests.apps import MakeApp
from tests.lifecycle.conftest import PROFILES, jpeg_bytes
from tests.lifecycle.test_check_upload import nothing_kept

CHUNK = 1024 * 1024  # what the spooler reads at a time


class Endless:
    """A file object that never ends, counting what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        size = CHUNK if size < 0 else size
        self.read_bytes += size
        return b"\xff" * size


@pytest.fixture
def app(make_app: MakeApp) -> Rindle:
    return make_app(profiles=PROFILES)


def test_an_endless_stream_is_cut_off_past_max_bytes(app: Rindle) -> None:
    source = Endless()
    with pytest.raises(UploadRejected) as err:
        app.check_upload("photo", source, filename="a.jpg")  # type: ignore[arg-type]
    assert err.value.code == "max_bytes_exceeded"
    limit = app.profile("photo").upload_policy().max_bytes
    assert limit is not None and limit < source.read_bytes <= limit + CHUNK
    assert nothing_kept(app) == (0, [], [])


@pytest.mark.parametrize("name", ["../../etc/passwd.jpg", "..\\..\\win.jpg",
                                  "/abs/path.jpg", "a\x00b.jpg"])
def test_a_path_in_the_filename_never_survives(app: Rindle, name: str) -> None:
    checked = app.check_upload("photo", jpeg_bytes((8, 8)), filename=name)
    assert "/" not in checked.sanitized_filename and "\\" not in checked.sanitized_filename
    assert "\x00" not in checked.sanitized_filename and ".." not in checked.sanitized_filename
    assert nothing_kept(app) == (0, [], [])
