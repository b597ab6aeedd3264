"""RindleField and RindleCollectionField on real models: attach after save, handles, detach
and purge on delete, and rollback with transaction.atomic()."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import pytest
from django.db import transaction
from djgallery.models import Album, Photo
from rindle_django.fields import RindleFile, Upload
from sqlalchemy import func, select

from rindle import Rindle
from rindle.domain.models import Asset, Attachment, Job


def _attachments(app: Rindle, owner_id: str, slot: str = "image") -> list[uuid.UUID]:
    with app.db.transaction() as s:
        return list(s.scalars(select(Attachment.asset_id).where(
            Attachment.owner_type == "djgallery.photo", Attachment.owner_id == owner_id,
            Attachment.slot == slot)))


def _count(app: Rindle, model: type) -> int:
    with app.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.django_db
def test_assigned_upload_is_stored_and_attached_after_save(
        rindle_app: Rindle, make_image: Callable[..., bytes],
        drain: Callable[[], object]) -> None:
    photo = Photo(title="sea")
    photo.image = Upload(make_image(120, 80), "sea.png")
    assert photo.image is None  # nothing stored before save
    photo.save()
    handle = photo.image
    assert isinstance(handle, RindleFile)
    assert _attachments(rindle_app, str(photo.pk)) == [handle.asset_id]
    drain()
    fresh = Photo.objects.get(pk=photo.pk).image
    assert fresh == handle
    assert (fresh.state, fresh.filename, fresh.width, fresh.height) == ("ready", "sea.png",
                                                                         120, 80)
    assert fresh.variants == {"thumb": "ready"}
    assert fresh.url("thumb").startswith(f"/rindle/media/photo/{handle.asset_id}/")
    assert "token=" in fresh.url()


@pytest.mark.django_db
def test_file_object_needs_a_name(make_image: Callable[..., bytes]) -> None:
    photo = Photo(title="x")
    with pytest.raises(ValueError, match="needs a name"):
        photo.image = io.BytesIO(make_image())
    named = io.BytesIO(make_image())
    named.name = "/somewhere/named.png"
    photo.image = named
    photo.save()
    assert photo.image is not None and photo.image.filename == "named.png"


@pytest.mark.django_db
def test_replacing_and_clearing_release_the_old_asset(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    photo = Photo.objects.create(title="a", image=Upload(make_image(), "a.png"))
    first = photo.image
    assert first is not None
    photo.image = Upload(make_image(color="red"), "b.png")
    photo.save()
    second = photo.image
    assert second is not None and second != first
    assert first.refresh().state == "deleted"  # attached nowhere else: purge queued
    photo.image = None
    photo.save()
    assert _attachments(rindle_app, str(photo.pk)) == []
    assert second.refresh().state == "deleted"


@pytest.mark.django_db
def test_existing_asset_by_asset_or_id_and_update_fields(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    asset = rindle_app.upload("photo", make_image(), filename="p.png")
    photo = Photo.objects.create(title="by asset", image=asset)
    assert _attachments(rindle_app, str(photo.pk)) == [asset.id]
    other = Photo.objects.create(title="by id", image=str(asset.id))
    assert other.image == RindleFile(asset.id)
    other.image = None
    other.save(update_fields=["title"])  # the image column is not saved: stays attached
    assert _attachments(rindle_app, str(other.pk)) == [asset.id]
    with pytest.raises(TypeError, match="cannot store int"):
        photo.image = 42


@pytest.mark.django_db
def test_delete_detaches_and_purges_an_asset_no_one_else_holds(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    shared = rindle_app.upload("photo", make_image(), filename="s.png")
    one = Photo.objects.create(title="one", image=shared)
    two = Photo.objects.create(title="two", image=shared)
    one.delete()
    assert rindle_app.get_asset(shared.id).state != "deleted"  # two still holds it
    Photo.objects.filter(pk=two.pk).delete()
    assert rindle_app.get_asset(shared.id).state == "deleted"
    assert _attachments(rindle_app, str(two.pk)) == []


@pytest.mark.django_db(transaction=True)
def test_rollback_leaves_no_attachment_no_job_no_state_change(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    kept = Photo.objects.create(title="kept", image=Upload(make_image(), "k.png"))
    assert kept.image is not None
    kept_id = kept.image.asset_id
    before = (_count(rindle_app, Attachment), _count(rindle_app, Job),
              _count(rindle_app, Asset), kept.image.state)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        Photo.objects.create(title="new", image=Upload(make_image(), "n.png"))
        kept.image = None  # would detach and purge the kept asset
        kept.save()
        assert _attachments(rindle_app, str(kept.pk)) == []  # visible inside
        raise Boom
    after = (_count(rindle_app, Attachment), _count(rindle_app, Job),
             _count(rindle_app, Asset), Photo.objects.get(pk=kept.pk).image.state)
    assert after == before
    assert Photo.objects.filter(title="new").count() == 0
    assert _attachments(rindle_app, str(kept.pk)) == [kept_id]


@pytest.mark.django_db(transaction=True)
def test_commit_keeps_what_the_atomic_block_wrote(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    jobs = _count(rindle_app, Job)
    with transaction.atomic():
        photo = Photo.objects.create(title="c", image=Upload(make_image(), "c.png"))
    assert photo.image is not None
    assert _attachments(rindle_app, str(photo.pk)) == [photo.image.asset_id]
    assert _count(rindle_app, Job) == jobs + 1  # its promotion


@pytest.mark.django_db
def test_collection_adds_in_order_reorders_removes_and_clears_on_delete(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    album = Album.objects.create(name="trip")
    a = album.shots.add(Upload(make_image(color="red"), "a.png"))
    b = album.shots.add(Upload(make_image(color="blue"), "b.png"))
    c = album.shots.add(Upload(make_image(color="green"), "c.png"), position=0)
    assert list(album.shots) == [c, a, b]
    album.shots.reorder([b, c, a])
    assert [f.filename for f in album.shots.all()] == ["b.png", "c.png", "a.png"]
    assert album.shots.remove(c) is True
    assert album.shots.remove(c) is False
    assert len(album.shots) == 2
    album.delete()
    assert {rindle_app.get_asset(x.asset_id).state for x in (a, b, c)} == {"deleted"}


@pytest.mark.django_db
def test_collection_needs_a_saved_instance() -> None:
    with pytest.raises(ValueError, match="save it before"):
        Album(name="unsaved").shots.all()


@pytest.fixture
def inline_jobs(settings: object) -> Rindle:
    """The project's app with ``jobs = {"executor": "inline"}`` (rebuilt by the settings
    change, and again when the test's override ends)."""
    from django.conf import settings as dj

    settings.RINDLE = {**dj.RINDLE, "jobs": {"executor": "inline"}}  # type: ignore[attr-defined]
    from rindle_django import get_app

    return get_app()


@pytest.mark.django_db(transaction=True)
def test_inline_jobs_run_after_djangos_commit_and_never_after_a_rollback(
        inline_jobs: Rindle, make_image: Callable[..., bytes]) -> None:
    assert inline_jobs.settings.jobs.executor == "inline"
    with transaction.atomic():
        photo = Photo.objects.create(title="inline", image=Upload(make_image(), "i.png"))
        assert photo.image is not None
        assert photo.image.state == "analyzing"  # promotion waits for the commit
    assert photo.image.refresh().state == "ready"  # ran once Django committed
    assert photo.image.variants == {"thumb": "ready"}
    jobs = _count(inline_jobs, Job)
    with pytest.raises(RuntimeError), transaction.atomic():
        Photo.objects.create(title="gone", image=Upload(make_image(), "g.png"))
        raise RuntimeError("rolled back")
    assert _count(inline_jobs, Job) == jobs
    assert Photo.objects.filter(title="gone").count() == 0


@pytest.mark.parametrize(("rindle", "ids"), [
    (None, []),
    ({"profiles": ["djgallery.media.Shot"]}, ["rindle_django.E001"]),
    ({"profiles": ["djgallery.media.Photo"], "storages": {"default": {"backend": "nope"}}},
     ["rindle_django.E002"]),
    ({"profiles": ["djgallery.media.Photo"], "database_url": "sqlite://"},
     ["rindle_django.E002"]),
])
def test_system_checks_name_a_missing_profile_and_a_bad_setting(
        settings: object, rindle: dict[str, object] | None, ids: list[str]) -> None:
    from django.conf import settings as dj

    if rindle is not None:
        settings.RINDLE = {**dj.RINDLE, **rindle}  # type: ignore[attr-defined]
    messages = Photo._meta.get_field("image").check()
    assert [m.id for m in messages] == ids, [m.msg for m in messages]


def test_a_collection_profile_in_a_single_field_is_an_error() -> None:
    from rindle_django.fields import RindleField

    field = RindleField(profile="shot")
    field.name = "shot"
    field.model = Photo
    messages = [m for m in field.check() if m.id.startswith("rindle_django")]
    assert [(m.id, m.hint) for m in messages] == [
        ("rindle_django.E003", "use RindleCollectionField for it")]


def _stored(app: Rindle) -> set[str]:
    from pathlib import Path

    root = Path(app.settings.storages["default"]["root"])
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.django_db(transaction=True)
def test_rollback_deletes_the_bytes_an_upload_stored_and_commit_keeps_them(
        rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    from rindle_django.db import run_rollback_effects

    run_rollback_effects()  # what earlier tests' rolled-back transactions left
    before = _stored(rindle_app)
    with pytest.raises(RuntimeError), transaction.atomic():
        Photo.objects.create(title="r", image=Upload(make_image(), "r.png"))
        inside = _stored(rindle_app) - before
        assert len(inside) == 1  # stored, waiting for the outcome
        raise RuntimeError("roll back")
    assert _stored(rindle_app) - before == inside  # the block has ended: nothing ran yet
    assert run_rollback_effects() == 1
    assert _stored(rindle_app) == before
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint rolled back
            Photo.objects.create(title="s", image=Upload(make_image(), "s.png"))
            raise RuntimeError("inner")
        kept = Photo.objects.create(title="k", image=Upload(make_image(), "k.png"))
    assert run_rollback_effects() == 1  # the savepoint's object only
    assert kept.image is not None
    assert len(_stored(rindle_app) - before) == 1
    assert run_rollback_effects() == 0


@pytest.mark.django_db(transaction=True)
def test_a_request_that_rolled_back_leaves_no_bytes(
        client: object, rindle_app: Rindle, make_image: Callable[..., bytes]) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = _stored(rindle_app)
    with pytest.raises(RuntimeError, match="after save"):
        client.post("/photos/fail", {  # type: ignore[attr-defined]
            "title": "fail after save",
            "image": SimpleUploadedFile("x.png", make_image())})
    assert _stored(rindle_app) == before
    assert Photo.objects.count() == 0
