"""The admin over HTTP with a superuser, and the template tags' output."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template
from django.test import Client
from djgallery.models import Photo
from rindle_django.fields import Upload

from rindle import Rindle


@pytest.mark.django_db
def test_admin_change_list_thumbnail_and_change_form_state(
        admin_client: Client, make_image: Callable[..., bytes],
        drain: Callable[[], object]) -> None:
    photo = Photo.objects.create(title="cliff", image=Upload(make_image(), "cliff.png"))
    listing = admin_client.get("/admin/djgallery/photo/").content.decode()
    assert '<span class="rindle-state">analyzing</span>' in listing  # not delivered yet
    drain()
    listing = admin_client.get("/admin/djgallery/photo/").content.decode()
    thumb = re.search(r'<img src="(/rindle/media/photo/[^"]+)" alt="" height="48" '
                      r'loading="lazy">', listing)
    assert thumb is not None, listing
    served = admin_client.get(thumb.group(1).replace("&amp;", "&"))
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    change = admin_client.get(f"/admin/djgallery/photo/{photo.pk}/change/").content.decode()
    assert '<span class="rindle-state">ready</span> cliff.png 120\u00d780' in change
    assert "variants: thumb (ready)" in change
    empty = Photo.objects.create(title="bare")
    change = admin_client.get(f"/admin/djgallery/photo/{empty.pk}/change/").content.decode()
    assert "<b>image</b>: empty" in change


@pytest.mark.django_db
def test_admin_add_form_uploads(admin_client: Client, rindle_app: Rindle,
                                make_image: Callable[..., bytes]) -> None:
    response = admin_client.post("/admin/djgallery/photo/add/", {
        "title": "from admin", "image": SimpleUploadedFile("adm.png", make_image())})
    assert response.status_code == 302, response.content.decode()[-2000:]
    photo = Photo.objects.get(title="from admin")
    assert photo.image is not None and photo.image.filename == "adm.png"


def _render(source: str, **context: object) -> str:
    return Template("{% load rindle %}" + source).render(Context(context))


@pytest.mark.django_db
def test_template_tags(rindle_app: Rindle, make_image: Callable[..., bytes],
                       drain: Callable[[], object]) -> None:
    photo = Photo.objects.create(title="tag", image=Upload(make_image(120, 80), "t.png"))
    assert _render('{% rindle_picture photo.image "thumb" %}', photo=photo) == ""
    assert _render("{% rindle_url photo.image %}", photo=photo) == ""
    drain()
    out = _render('{% rindle_picture photo.image "thumb" sizes="64px" alt=title %}',
                  photo=photo, title='a "quoted" <b>')
    assert out.startswith("<picture>") and out.endswith("</picture>"), out
    assert re.search(r'<img src="/rindle/media/photo/[^"]+" srcset="/rindle/media/photo/'
                     r'[^" ]+ 64w" sizes="64px" alt="a &quot;quoted&quot; &lt;b&gt;" '
                     r'width="64" height="64"></picture>', out), out
    url = _render('{% rindle_url photo.image "thumb" %}', photo=photo)
    assert url.startswith(f"/rindle/media/photo/{photo.image.asset_id}/") and "&amp;" not in url
    assert _render("{% rindle_video photo.image %}", photo=photo) == ""  # not a video
    assert _render("{% rindle_audio photo.image %}", photo=photo) == ""
    assert _render('{% rindle_picture nothing "thumb" %}', nothing=None) == ""
    assert _render("{% rindle_url nothing %}", nothing=None) == ""


@pytest.mark.django_db
def test_change_list_reads_the_thumbnail_urls_of_a_page_in_one_query(
        admin_client: Client, rindle_app: Rindle, make_image: Callable[..., bytes],
        drain: Callable[[], object]) -> None:
    from sqlalchemy import event

    for n in range(6):
        Photo.objects.create(title=f"p{n}", image=Upload(make_image(), f"p{n}.png"))
    drain()
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(rindle_app.db.engine, "before_cursor_execute", count)
    try:
        listing = admin_client.get("/admin/djgallery/photo/").content.decode()
    finally:
        event.remove(rindle_app.db.engine, "before_cursor_execute", count)
    assert len(re.findall(r'<img src="/rindle/media/photo/', listing)) == 6
    assert len(statements) <= 2, statements  # one batch, whatever the page size
