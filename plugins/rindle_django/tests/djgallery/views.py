"""The upload pages of the test app (proxied and direct)."""

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from rindle_django.forms import RindleFormField

from djgallery.models import Photo


class PhotoForm(forms.ModelForm):  # type: ignore[type-arg]
    """Title and image, uploaded through the app."""

    class Meta:
        model = Photo
        fields = ["title", "image"]


class DirectPhotoForm(forms.ModelForm):  # type: ignore[type-arg]
    """Title and image, the image sent straight to storage by the widget's script."""

    image = RindleFormField(profile="photo", direct=True, required=True)

    class Meta:
        model = Photo
        fields = ["title", "image"]


def _page(request: HttpRequest, form_class: type[forms.ModelForm]) -> HttpResponse:  # type: ignore[type-arg]
    form = form_class(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        photo = form.save()
        return redirect("photo-show", pk=photo.pk)
    return render(request, "djgallery/upload.html", {"form": form})


def upload_photo(request: HttpRequest) -> HttpResponse:
    """GET: the form; POST: store the upload and show the photo."""
    return _page(request, PhotoForm)


def direct_photo(request: HttpRequest) -> HttpResponse:
    """The same page with the direct-upload widget."""
    return _page(request, DirectPhotoForm)


def show_photo(request: HttpRequest, pk: int) -> HttpResponse:
    """The photo with its thumbnail picture."""
    return render(request, "djgallery/show.html", {"photo": get_object_or_404(Photo, pk=pk)})


def upload_then_fail(request: HttpRequest) -> HttpResponse:
    """Save the photo inside a transaction, then fail: the whole request rolls back."""
    from django.db import transaction

    with transaction.atomic():
        form = PhotoForm(request.POST, request.FILES)
        if form.is_valid():
            form.save()
        raise RuntimeError("after save")
