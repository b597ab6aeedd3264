"""Model fields: :class:`RindleField` (one asset) and :class:`RindleCollectionField` (a list).

``avatar = RindleField(profile="avatar")`` stores the asset id in a nullable UUID column.
``instance.avatar`` is a :class:`RindleFile` (or ``None``); assigning an upload (a Django
``UploadedFile``, any binary file object with a name, or bytes via :class:`Upload`) stores
it through the profile when the instance is saved (model validation keeps it pending), an
:class:`~rindle.domain.models.Asset`,
a :class:`RindleFile` or an asset id attaches that asset, and ``None`` empties the slot.
After each save the asset is attached to the owner ``("app_label.model", pk)`` in the slot
named after the field (so the pk is known); deleting the instance detaches it, and rindle
purges an asset no one else holds. All of this runs on Django's connection: inside
``transaction.atomic()`` it commits or rolls back with the caller's transaction.

``photos = RindleCollectionField(profile="photo")`` adds no column: ``instance.photos`` is a
:class:`RindleCollection` (ordered, in rindle's attachments) of the saved instance.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from django.db import models
from django.db.models import signals

from rindle_django.conf import get_app

__all__ = ["RindleCollection", "RindleCollectionField", "RindleField", "RindleFile", "Upload"]


@dataclass(frozen=True)
class Upload:
    """Bytes or a binary file to store through a profile, with the filename it came as."""

    source: bytes | BinaryIO
    filename: str


def owner_of(instance: models.Model) -> tuple[str, str]:
    """The rindle owner of a saved model instance: ``("app_label.model", str(pk))``."""
    if instance.pk is None:
        raise ValueError(f"{type(instance).__name__} has no primary key yet: save it before "
                         "attaching assets to it")
    return (instance._meta.label_lower, str(instance.pk))


def _as_upload(value: Any) -> Upload | None:
    """An :class:`Upload` for an upload-like value (UploadedFile, named binary file)."""
    if isinstance(value, Upload):
        return value
    if hasattr(value, "read"):
        name = getattr(value, "name", None)
        if not name:
            raise ValueError("a file assigned to a RindleField needs a name; wrap it: "
                             "rindle_django.fields.Upload(fileobj, filename=...)")
        if hasattr(value, "seek"):
            value.seek(0)
        return Upload(cast(BinaryIO, value), os.path.basename(str(name)))
    return None


def _as_asset_id(value: Any) -> uuid.UUID | None:
    """The asset id a value names (None, UUID, its text, an Asset or a RindleFile)."""
    if value is None or value == "":
        return None
    if isinstance(value, RindleFile):
        return value.asset_id
    if isinstance(value, uuid.UUID):
        return value
    asset_id = getattr(value, "id", None)
    if isinstance(asset_id, uuid.UUID) and hasattr(value, "storage_key"):
        return asset_id  # a rindle Asset
    if isinstance(value, str):
        return uuid.UUID(value)
    raise TypeError(f"cannot store {type(value).__name__} in a RindleField: give an upload, "
                    "an Asset, a RindleFile, an asset id or None")


def _check_profile(obj: object, name: str, *, single: bool) -> list[Any]:
    """System-check messages for a field using profile ``name``."""
    from django.core import checks

    from rindle.errors import RindleError, UnknownProfile

    try:
        profile = get_app().profile(name)
    except UnknownProfile as exc:
        return [checks.Error(f"profile {name!r} is not configured", hint=exc.message,
                             obj=obj, id="rindle_django.E001")]
    except RindleError as exc:
        return [checks.Error(f"settings.RINDLE does not build a rindle app: {exc.message}",
                             obj=obj, id="rindle_django.E002")]
    if single and profile.collection:
        return [checks.Error(f"profile {name!r} is a collection profile",
                             hint="use RindleCollectionField for it", obj=obj,
                             id="rindle_django.E003")]
    return []


class RindleFile:
    """One asset as a model field holds it; the row is read once, on first use.

    ``url(variant)`` is a delivery URL (signed unless the profile is public; a variant that
    is not ready falls back to the original); ``state``, ``filename``, ``width``,
    ``height``, ``content_type``, ``byte_size`` come from the asset row, ``variants`` maps
    each variant name to its state. :meth:`refresh` reads the row again.
    """

    def __init__(self, asset_id: uuid.UUID, *, asset: Any = None) -> None:
        self.asset_id = asset_id
        self._asset = asset

    @property
    def asset(self) -> Any:
        """The rindle asset row (``rindle.domain.models.Asset``), variants loaded (read on
        first use)."""
        if self._asset is None:
            self._asset = get_app().get_asset(self.asset_id)
        return self._asset

    def refresh(self) -> RindleFile:
        """Forget the cached row (the next attribute reads it again); returns self."""
        self._asset = None
        return self

    def url(self, variant: str | None = None, **options: Any) -> str:
        """The delivery URL of the original or of ``variant`` (see :meth:`rindle.Rindle.url`)."""
        return get_app().url(self.asset_id, variant, **options)

    @property
    def state(self) -> str:
        """The asset's lifecycle state (``analyzing``, ``ready``, ``quarantined``, ...)."""
        return str(self.asset.state)

    @property
    def variants(self) -> dict[str, str]:
        """Variant name -> state (``planned``, ``ready``, ``failed``, ...)."""
        return {name: v.state for name, v in sorted(self.asset.variants.items())}

    @property
    def ready_variants(self) -> list[str]:
        """The names of the variants that are ready, sorted."""
        return [name for name, state in self.variants.items() if state == "ready"]

    @property
    def filename(self) -> str | None:
        """The name the file was uploaded as (sanitised by rindle)."""
        return cast("str | None", self.asset.filename)

    @property
    def width(self) -> int | None:
        """Width in pixels, once probed."""
        return cast("int | None", self.asset.width)

    @property
    def height(self) -> int | None:
        """Height in pixels, once probed."""
        return cast("int | None", self.asset.height)

    @property
    def content_type(self) -> str | None:
        """The media type sniffed from the bytes."""
        return cast("str | None", self.asset.content_type)

    @property
    def byte_size(self) -> int | None:
        """Size of the original in bytes."""
        return cast("int | None", self.asset.byte_size)

    @property
    def kind(self) -> str:
        """``image``, ``video``, ``audio`` or ``file``."""
        return str(self.asset.kind)

    def __str__(self) -> str:
        return str(self.asset_id)

    def __repr__(self) -> str:
        return f"<RindleFile {self.asset_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RindleFile) and other.asset_id == self.asset_id

    def __hash__(self) -> int:
        return hash(self.asset_id)


class _Descriptor:
    """``instance.<field>``: a :class:`RindleFile` or None; assignment as the module says."""

    def __init__(self, field: RindleField) -> None:
        self.field = field

    def __get__(self, instance: models.Model | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__.get(self.field.attname)
        return None if value is None else RindleFile(value)

    def __set__(self, instance: models.Model, value: Any) -> None:
        pending = _as_upload(value)
        if pending is not None:
            instance.__dict__[self.field.pending_key] = pending
            return
        instance.__dict__.pop(self.field.pending_key, None)
        instance.__dict__[self.field.attname] = _as_asset_id(value)


if TYPE_CHECKING:
    from django import forms

    # Assigning takes an upload, an Asset, a RindleFile, an asset id or None (checked at
    # runtime: TypeError otherwise); reading gives a RindleFile or None (the descriptor).
    # Django's field classes are not subscriptable at runtime.
    _AssetIdField = models.UUIDField[object, "RindleFile | None"]
else:
    _AssetIdField = models.UUIDField


class RindleField(_AssetIdField):
    """A rindle asset of ``profile`` held by a model instance (see the module docstring).

    The column is a nullable UUID (the asset id); ``blank=True`` by default. The slot is
    the field's name. The form field is :class:`rindle_django.forms.RindleFormField`.
    """

    description = "A rindle asset (its id)"

    def __init__(self, *args: Any, profile: str, **kwargs: Any) -> None:
        self.profile = profile
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        """The field as migrations write it: ``RindleField(profile=...)``."""
        name, _path, args, kwargs = super().deconstruct()
        kwargs["profile"] = self.profile
        for key in ("null", "blank"):
            if kwargs.get(key) is True:
                del kwargs[key]
        return name, "rindle_django.fields.RindleField", args, kwargs

    def check(self, **kwargs: Any) -> list[Any]:
        """Django's checks plus: the profile is configured (``rindle_django.E001``), the
        ``RINDLE`` setting builds an app (``E002``), and the profile is not a collection
        one (``E003``: use :class:`RindleCollectionField`)."""
        return [*super().check(**kwargs), *_check_profile(self, self.profile, single=True)]

    @property
    def pending_key(self) -> str:
        """Where an instance keeps an upload waiting for save."""
        return f"_rindle_pending_{self.attname}"

    def contribute_to_class(self, cls: type[models.Model], name: str,
                            private_only: bool = False) -> None:
        """Install the descriptor and the save/delete receivers on ``cls``."""
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, self.attname, _Descriptor(self))
        if not cls._meta.abstract:
            uid = f"rindle_django:{cls._meta.label_lower}:{name}"
            signals.post_save.connect(self._after_save, sender=cls, weak=False,
                                      dispatch_uid=uid)
            signals.post_delete.connect(self._after_delete, sender=cls, weak=False,
                                        dispatch_uid=uid)

    def clean(self, value: Any, model_instance: models.Model | None) -> Any:
        """Django's clean, except that an instance holding an upload waiting for save
        cleans to that :class:`Upload`: ``Model.full_clean`` assigns the result back, and
        the upload stays pending (a ModelForm's new file is not dropped for the asset the
        instance held, nor refused as blank)."""
        if model_instance is not None:
            pending = model_instance.__dict__.get(self.pending_key)
            if pending is not None:
                return pending
        return super().clean(value, model_instance)

    def to_python(self, value: Any) -> Any:
        """An asset id (UUID) for ids, Assets and RindleFiles; ValidationError otherwise."""
        if isinstance(value, RindleFile):
            return value.asset_id
        if value is not None and hasattr(value, "storage_key"):
            return _as_asset_id(value)
        return super().to_python(value)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        """Store a pending upload through the profile; the column gets its asset id."""
        pending = model_instance.__dict__.pop(self.pending_key, None)
        if pending is not None:
            asset = get_app().upload(self.profile, pending.source, filename=pending.filename)
            model_instance.__dict__[self.attname] = asset.id
        return model_instance.__dict__.get(self.attname)

    def value_from_object(self, obj: models.Model) -> Any:
        """The asset id (what forms and serializers see)."""
        return obj.__dict__.get(self.attname)

    def save_form_data(self, instance: models.Model, data: Any) -> None:
        """A form's cleaned value: ``False`` clears, None keeps, anything else is assigned."""
        if data is False:
            setattr(instance, self.attname, None)
        elif data is not None:
            setattr(instance, self.attname, data)

    def formfield(self, form_class: type[forms.Field] | None = None,
                  choices_form_class: type[forms.ChoiceField] | None = None,
                  **kwargs: Any) -> forms.Field:
        """:class:`rindle_django.forms.RindleFormField` for this profile (or ``form_class``,
        given the same arguments); ``choices_form_class`` is not used."""
        from rindle_django.forms import RindleFormField

        defaults: dict[str, Any] = {"profile": self.profile, "required": not self.blank}
        defaults.update(kwargs)
        if not _upload_widget(defaults.get("widget")):
            defaults.pop("widget", None)  # the admin's UUID text input, for a UUIDField
        if form_class is None:
            form_class = RindleFormField
        return form_class(**{k: v for k, v in defaults.items()
                             if k in ("profile", "required", "label", "help_text", "widget",
                                      "initial", "direct", "disabled")})

    def _after_save(self, sender: type, instance: models.Model, created: bool,
                    update_fields: frozenset[str] | None = None, raw: bool = False,
                    **_: Any) -> None:
        if raw or (update_fields is not None and self.name not in update_fields):
            return
        asset_id = instance.__dict__.get(self.attname)
        app = get_app()
        if asset_id is not None:
            app.attach(asset_id, owner_of(instance), self.name)
        elif not created:
            app.detach(owner_of(instance), self.name)

    def _after_delete(self, sender: type, instance: models.Model, **_: Any) -> None:
        if instance.__dict__.get(self.attname) is not None and instance.pk is not None:
            get_app().detach(owner_of(instance), self.name)


def _upload_widget(widget: Any) -> bool:
    """Whether ``widget`` (a class or an instance) can carry an upload."""
    from django import forms

    from rindle_django.forms import RindleDirectUploadInput

    kind = widget if isinstance(widget, type) else type(widget)
    return issubclass(kind, (forms.FileInput, RindleDirectUploadInput))


class RindleCollection:
    """The ordered assets in one collection slot of a saved instance.

    Iterating, ``len()``, ``list()`` and indexing read the slot (one query each time);
    :meth:`add` stores an upload (or takes an asset) and inserts it, :meth:`remove` detaches
    one (purged when no one else holds it), :meth:`reorder` sets the order.
    """

    def __init__(self, field: RindleCollectionField, instance: models.Model) -> None:
        self.field = field
        self.instance = instance

    @property
    def owner(self) -> tuple[str, str]:
        """The rindle owner (the instance must be saved)."""
        return owner_of(self.instance)

    def all(self) -> list[RindleFile]:
        """The assets in position order."""
        held = get_app().attachments(self.owner).get(self.field.name, [])
        assets = held if isinstance(held, list) else [held]
        return [RindleFile(a.id, asset=a) for a in assets]

    def __iter__(self) -> Iterator[RindleFile]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self.all())

    def __getitem__(self, index: int) -> RindleFile:
        return self.all()[index]

    def add(self, value: Any, *, position: int | None = None) -> RindleFile:
        """Insert an upload, Asset, RindleFile or asset id at ``position`` (None: last)."""
        app = get_app()
        pending = _as_upload(value)
        if pending is not None:
            asset_id = app.upload(self.field.profile, pending.source,
                                  filename=pending.filename).id
        else:
            found = _as_asset_id(value)
            if found is None:
                raise ValueError("cannot add None to a collection")
            asset_id = found
        app.attach(asset_id, self.owner, self.field.name, position=position, collection=True)
        return RindleFile(asset_id)

    def remove(self, value: Any) -> bool:
        """Detach one asset; False when the slot did not hold it."""
        asset_id = _as_asset_id(value)
        return get_app().detach(self.owner, self.field.name, asset_id)

    def reorder(self, values: Sequence[Any]) -> None:
        """Put the slot's assets in this order (a permutation of what it holds)."""
        ids = [i for i in (_as_asset_id(v) for v in values) if i is not None]
        get_app().reorder(self.owner, self.field.name, ids)

    def clear(self) -> int:
        """Detach every asset; the number detached."""
        files = self.all()
        for item in files:
            get_app().detach(self.owner, self.field.name, item.asset_id)
        return len(files)


class RindleCollectionField:
    """An ordered collection of assets of ``profile``; no column (see the module)."""

    def __init__(self, *, profile: str) -> None:
        self.profile = profile
        self.name = ""

    def contribute_to_class(self, cls: type[models.Model], name: str) -> None:
        """Install the accessor and the delete receiver on ``cls``."""
        self.name = name
        setattr(cls, name, self)
        if not cls._meta.abstract:
            signals.post_delete.connect(self._after_delete, sender=cls, weak=False,
                                        dispatch_uid=f"rindle_django:{cls._meta.label_lower}:"
                                                     f"{name}")

    def __get__(self, instance: models.Model | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return RindleCollection(self, instance)

    def _after_delete(self, sender: type, instance: models.Model, **_: Any) -> None:
        if instance.pk is not None:
            RindleCollection(self, instance).clear()
