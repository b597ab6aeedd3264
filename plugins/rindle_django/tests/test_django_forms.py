"""Uploads through real Django forms over the test Client: proxied (multipart POST) and
direct (the widget's endpoints, then the form with the signed token)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from djgallery.models import Photo

from rindle import Rindle


def _form_errors(response: Any, field: str) -> list[tuple[str | None, str]]:
    form = response.context["form"]
    return [(e.code, e.message) for e in form.errors.as_data().get(field, [])]


@pytest.mark.django_db
def test_upload_page_stores_attaches_and_shows_the_photo(
        client: Client, rindle_app: Rindle, make_image: Callable[..., bytes],
        drain: Callable[[], object]) -> None:
    page = client.get("/photos/new")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert re.search(r'<input type="file" name="image"[^>]*>', html)
    response = client.post("/photos/new", {
        "title": "dune", "image": SimpleUploadedFile("dune.png", make_image(200, 100),
                                                     content_type="image/png")})
    assert response.status_code == 302
    photo = Photo.objects.get(title="dune")
    assert response["Location"] == f"/photos/{photo.pk}"
    assert photo.image is not None
    assert (photo.image.filename, photo.image.width, photo.image.height) == ("dune.png", 200,
                                                                             100)
    held = rindle_app.attachment(("djgallery.photo", str(photo.pk)), "image")
    assert held is not None and held.id == photo.image.asset_id
    drain()
    shown = client.get(f"/photos/{photo.pk}").content.decode()
    assert '<p class="state">ready</p>' in shown
    assert re.search(r'srcset="/rindle/media/photo/[^" ]+ 64w"', shown), shown
    assert 'alt="dune"' in shown and 'sizes="64px"' in shown


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "name", "code"), [
    (b"hello world", "notes.png", "unknown_mime"),
    (None, "wrong.gif", "extension_mime_mismatch"),
])
def test_rejected_upload_is_a_form_error_with_rindles_code(
        client: Client, make_image: Callable[..., bytes], data: bytes | None, name: str,
        code: str) -> None:
    upload = SimpleUploadedFile(name, data if data is not None else make_image())
    response = client.post("/photos/new", {"title": "bad", "image": upload})
    assert response.status_code == 200
    errors = _form_errors(response, "image")
    assert [c for c, _ in errors] == [code]
    assert Photo.objects.count() == 0


@pytest.mark.django_db
def test_edit_keeps_the_asset_without_a_new_file_and_clear_empties_it(
        client: Client, rindle_app: Rindle, make_image: Callable[..., bytes],
        drain: Callable[[], object]) -> None:
    from djgallery.views import PhotoForm

    client.post("/photos/new", {"title": "keep",
                                "image": SimpleUploadedFile("k.png", make_image())})
    photo = Photo.objects.get(title="keep")
    kept = photo.image
    assert kept is not None
    form = PhotoForm({"title": "renamed"}, {}, instance=photo)
    assert '<a href="">k.png</a>' in form.as_p()  # not delivered before promotion
    drain()
    assert re.search(r'<a href="/rindle/media/photo/[^"]+">k.png</a>', form.as_p())
    assert form.is_valid(), form.errors
    assert form.save().image == kept
    form = PhotoForm({"title": "cleared", "image-clear": "on"}, {}, instance=photo)
    assert form.is_valid(), form.errors
    assert form.save().image is None
    assert rindle_app.attachment(("djgallery.photo", str(photo.pk)), "image") is None


def _direct_upload(client: Client, data: bytes, filename: str = "d.png") -> tuple[str, str]:
    """Run the widget's three requests; (grant, signed asset token)."""
    page = client.get("/photos/direct").content.decode()
    grant = re.search(r'data-rindle-grant="([^"]+)"', page)
    assert grant is not None
    assert 'src="/static/rindle_django/direct-upload.js"' in page
    started = client.post("/rindle/direct/initiate", json.dumps({
        "grant": grant.group(1), "filename": filename, "byte_size": len(data),
        "content_type": "image/png"}), content_type="application/json")
    assert started.status_code == 200, started.content
    request = started.json()["request"]
    assert request["method"] == "PUT" and request["url"].startswith("/rindle/media/photo/")
    put = client.generic("PUT", request["url"], data,
                         content_type=request["headers"].get("Content-Type", "image/png"),
                         **{f"HTTP_{k.upper().replace('-', '_')}": v
                            for k, v in request["headers"].items() if k != "Content-Type"})
    assert put.status_code == 201, b"".join(put.streaming_content)
    done = client.post("/rindle/direct/complete", json.dumps({
        "grant": grant.group(1), "session": started.json()["session"]}),
        content_type="application/json")
    assert done.status_code == 200, done.content
    assert done.json()["filename"] == filename
    return grant.group(1), done.json()["asset"]


@pytest.mark.django_db
def test_direct_upload_widget_flow_attaches_the_verified_asset(
        client: Client, rindle_app: Rindle, make_image: Callable[..., bytes],
        drain: Callable[[], object]) -> None:
    _, token = _direct_upload(client, make_image(90, 60))
    response = client.post("/photos/direct", {"title": "direct", "image": token})
    assert response.status_code == 302
    photo = Photo.objects.get(title="direct")
    assert photo.image is not None
    assert (photo.image.filename, photo.image.state) == ("d.png", "validating")
    drain()
    assert (photo.image.refresh().state, photo.image.width, photo.image.height) == (
        "ready", 90, 60)


@pytest.mark.django_db
def test_direct_form_requires_a_token(client: Client) -> None:
    response = client.post("/photos/direct", {"title": "none"})
    assert response.status_code == 200
    assert [c for c, _ in _form_errors(response, "image")] == ["required"]


def _asset_count(app: Rindle) -> int:
    from sqlalchemy import func, select

    from rindle.domain.models import Asset

    with app.db.sessionmaker() as s:
        return int(s.scalar(select(func.count()).select_from(Asset)) or 0)


def _stored(app: Rindle) -> set[str]:
    from pathlib import Path

    root = Path(app.settings.storages["default"]["root"])
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.django_db
def test_an_upload_in_a_form_failing_on_another_field_stores_nothing(
        client: Client, rindle_app: Rindle, make_image: Callable[..., bytes],
        drain: Callable[[], object]) -> None:
    """The image is fine, the title one character too long: no asset, no bytes; at the
    limit the form saves and stores exactly one asset, attached."""
    assets, stored = _asset_count(rindle_app), _stored(rindle_app)
    for length, status in ((101, 200), (100, 302)):
        response = client.post("/photos/new", {
            "title": "t" * length,
            "image": SimpleUploadedFile("p.png", make_image(), content_type="image/png")})
        assert response.status_code == status
        if status == 200:
            form = response.context["form"]
            assert [e.code for e in form.errors.as_data()["title"]] == ["max_length"]
            assert "image" not in form.errors
            assert (_asset_count(rindle_app), _stored(rindle_app)) == (assets, stored)
            assert Photo.objects.count() == 0
    photo = Photo.objects.get()
    assert photo.image is not None and photo.image.filename == "p.png"
    assert _asset_count(rindle_app) == assets + 1
    assert len(_stored(rindle_app) - stored) == 1
    held = rindle_app.attachment(("djgallery.photo", str(photo.pk)), "image")
    assert held is not None and held.id == photo.image.asset_id
    drain()


@pytest.mark.django_db
def test_a_cleaned_upload_waits_for_save_and_survives_model_validation(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    from djgallery.views import PhotoForm
    from rindle_django.fields import Upload

    old = Photo.objects.create(title="old", image=Upload(make_image(), "old.png"))
    assert old.image is not None
    kept = old.image.asset_id
    assets = _asset_count(rindle_app)
    form = PhotoForm({"title": "new"}, {"image": SimpleUploadedFile("n.png", make_image())},
                     instance=old)
    assert form.is_valid(), form.errors  # full_clean ran on the instance too
    pending = form.cleaned_data["image"]
    assert isinstance(pending, Upload) and pending.filename == "n.png"
    assert old.image is not None and old.image.asset_id == kept  # not stored yet
    assert _asset_count(rindle_app) == assets
    saved = form.save()
    assert saved.image is not None and saved.image.asset_id != kept
    assert saved.image.filename == "n.png" and _asset_count(rindle_app) == assets + 1
    assert rindle_app.get_asset(kept).state == "deleted"  # replaced: released
