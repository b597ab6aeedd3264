"""Form field and widgets for rindle uploads.

:class:`RindleFormField` (the form field of :class:`rindle_django.fields.RindleField`)
takes either

* a proxied upload (default widget :class:`RindleFileInput`): the file comes with the form
  (``multipart/form-data``) and is stored through the profile during ``clean()``; a policy
  violation is a form error whose code is rindle's reason (``mime_not_allowed``, ...); or
* a direct upload (``direct=True``, widget :class:`RindleDirectUploadInput`): a small script
  sends the file straight to storage through the ``rindle_django.urls`` endpoints and puts
  a signed token of the verified asset in a hidden input; ``clean()`` accepts only such a
  token, for this field's profile, so a form cannot be made to attach an asset by its id.

A proxied upload is only *checked* while the form is cleaned (``app.check_upload``: the
profile's policy, nothing stored); its cleaned value is a :class:`rindle_django.fields.Upload`
that the model field stores through the profile and attaches when the instance is saved.
So a form that fails on another field, or is never saved, leaves no asset and no bytes
behind. (A plain ``forms.Form`` stores it itself:
``app.upload(profile, upload.source, filename=upload.filename)``.) A direct upload's cleaned
value is the verified asset's id. ``False`` (the clear checkbox) empties the slot.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from rindle.errors import RindleError
from rindle_django.conf import get_app
from rindle_django.fields import RindleFile, Upload

__all__ = [
    "ASSET_TOKEN_MAX_AGE",
    "RindleDirectUploadInput",
    "RindleFileInput",
    "RindleFormField",
    "asset_token",
    "grant_token",
    "read_asset_token",
]

#: Seconds a direct-upload asset token stays good for a form submission.
ASSET_TOKEN_MAX_AGE = 24 * 3600
_ASSET_SALT = "rindle_django.asset"
_GRANT_SALT = "rindle_django.grant"


def asset_token(asset_id: uuid.UUID, profile: str) -> str:
    """A signed token saying ``asset_id`` was uploaded for ``profile`` through this site."""
    return signing.dumps({"a": str(asset_id), "p": profile}, salt=_ASSET_SALT)


def read_asset_token(token: str, profile: str) -> uuid.UUID:
    """The asset id of a token from :func:`asset_token` for ``profile``.

    Raises ``ValidationError`` (code ``invalid_upload_token``) for a token that is
    tampered with, older than :data:`ASSET_TOKEN_MAX_AGE` or issued for another profile.
    """
    try:
        data = signing.loads(token, salt=_ASSET_SALT, max_age=ASSET_TOKEN_MAX_AGE)
        if not isinstance(data, dict) or data.get("p") != profile:
            raise signing.BadSignature("other profile")
        return uuid.UUID(str(data["a"]))
    except (signing.BadSignature, KeyError, ValueError):
        raise ValidationError("The upload could not be verified; upload the file again.",
                              code="invalid_upload_token") from None


def grant_token(profile: str) -> str:
    """A signed grant the direct-upload endpoints require: uploads for ``profile``."""
    return signing.dumps({"p": profile}, salt=_GRANT_SALT)


def read_grant(token: str, max_age: int = 6 * 3600) -> str:
    """The profile a grant from :func:`grant_token` allows; ``BadSignature`` otherwise."""
    data = signing.loads(token, salt=_GRANT_SALT, max_age=max_age)
    if not isinstance(data, dict) or not isinstance(data.get("p"), str):
        raise signing.BadSignature("malformed grant")
    return str(data["p"])


def _as_file(value: Any) -> RindleFile | None:
    if isinstance(value, RindleFile):
        return value
    if isinstance(value, uuid.UUID):
        return RindleFile(value)
    if isinstance(value, str) and value:
        try:
            return RindleFile(uuid.UUID(value))
        except ValueError:
            return None
    return None


class _Current:
    """The current asset as the clearable file input shows it: its file name, linked to
    the original once that is delivered (``url`` is empty before)."""

    def __init__(self, handle: RindleFile) -> None:
        self.handle = handle

    @property
    def url(self) -> str:
        try:
            return self.handle.url()
        except RindleError:  # not promoted yet, quarantined, deleted
            return ""

    def __str__(self) -> str:
        try:
            return self.handle.filename or str(self.handle.asset_id)
        except RindleError:
            return str(self.handle.asset_id)


class RindleFileInput(forms.ClearableFileInput):
    """A file input showing the current asset (a link to the original) and a clear box."""

    def format_value(self, value: Any) -> Any:
        """The current asset (its file name, linked to the original when delivered)."""
        found = _as_file(value)
        return _Current(found) if found is not None else super().format_value(value)

    def is_initial(self, value: Any) -> bool:
        """True for an asset the instance already holds (its id or its handle)."""
        return _as_file(value) is not None


class RindleDirectUploadInput(forms.Widget):
    """A file input whose file goes straight to storage (see the module docstring).

    Renders a hidden input (the form value: a signed asset token), a file input without a
    ``name`` (its bytes never reach the form post) and the script
    ``rindle_django/direct-upload.js``, which talks to the ``rindle-direct-*`` routes.
    """

    def __init__(self, profile: str, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.profile = profile

    @property
    def media(self) -> forms.Media:
        """The uploader script."""
        return forms.Media(js=["rindle_django/direct-upload.js"])

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None,
               renderer: Any = None) -> SafeString:
        """The hidden token input, the file input and the status line."""
        token = value if isinstance(value, str) and not _as_file(value) else ""
        element = (attrs or {}).get("id") or f"id_{name}"
        return format_html(
            '<span class="rindle-direct" data-rindle-grant="{}" data-rindle-initiate="{}" '
            'data-rindle-complete="{}"><input type="hidden" name="{}" id="{}" value="{}">'
            '<input type="file" data-rindle-for="{}"><output data-rindle-status></output>'
            "</span>",
            grant_token(self.profile), reverse("rindle-direct-initiate"),
            reverse("rindle-direct-complete"), name, element, token, element)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        """The token from the hidden input (empty: no new upload)."""
        return data.get(name) or None


class RindleFormField(forms.FileField):
    """Upload field for one rindle profile (see the module docstring)."""

    def __init__(self, *, profile: str, direct: bool = False, **kwargs: Any) -> None:
        self.profile = profile
        self.direct = direct
        if direct:
            kwargs.setdefault("widget", RindleDirectUploadInput(profile))
        else:
            kwargs.setdefault("widget", RindleFileInput)
        super().__init__(**kwargs)

    def to_python(self, data: Any) -> Any:
        """A direct-upload token stays text; an uploaded file is checked as by FileField."""
        if self.direct:
            return data or None
        return super().to_python(data)

    def clean(self, data: Any, initial: Any = None) -> Any:
        """Check the upload (proxied) or verify the token (direct).

        Returns an :class:`~rindle_django.fields.Upload` stored only when the model is
        saved (proxied) or the verified asset's id (direct), ``False`` to clear, or the
        initial value when nothing new came. A rejected upload is a ``ValidationError``
        with rindle's code, and nothing is stored.
        """
        if self.direct:
            if not data:
                if self.required and not initial:
                    raise ValidationError(self.error_messages["required"], code="required")
                return initial
            return read_asset_token(str(data), self.profile)
        value = super().clean(data, initial)
        if value is False or value is None or isinstance(
                value, (uuid.UUID, RindleFile, str, Upload)):
            return value
        try:
            get_app().check_upload(self.profile, value, filename=value.name)
        except RindleError as exc:
            raise ValidationError(exc.message, code=exc.code) from None
        finally:
            value.seek(0)  # the check read it; the save reads it again
        return Upload(value, os.path.basename(str(value.name)))

    def has_changed(self, initial: Any, data: Any) -> bool:
        """True when a new file or token came, or the clear box was ticked."""
        return not self.disabled and data is not None
