"""URLs of the test project: the admin, rindle's routes and the gallery's upload page."""

from django.contrib import admin
from django.urls import include, path
from djgallery import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("rindle/", include("rindle_django.urls")),
    path("photos/new", views.upload_photo, name="photo-new"),
    path("photos/direct", views.direct_photo, name="photo-direct"),
    path("photos/<int:pk>", views.show_photo, name="photo-show"),
    path("photos/fail", views.upload_then_fail),
]
