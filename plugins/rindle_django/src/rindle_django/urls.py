"""``path("rindle/", include("rindle_django.urls"))``: delivery, webhooks, direct uploads.

* ``direct/initiate`` and ``direct/complete`` (``rindle-direct-initiate``,
  ``rindle-direct-complete``): the direct-upload widget's JSON endpoints;
* everything else (``rindle-delivery``): rindle's delivery app, i.e. ``media/<key>`` for
  the local storage (set its ``base_url`` to this mount, e.g. ``"/rindle"``) and
  ``webhooks/<provider>``.
"""

from __future__ import annotations

from django.urls import path, re_path

from rindle_django import views

urlpatterns = [
    path("direct/initiate", views.direct_initiate, name="rindle-direct-initiate"),
    path("direct/complete", views.direct_complete, name="rindle-direct-complete"),
    re_path(r"^(?P<path>.+)$", views.delivery, name="rindle-delivery"),
]
