"""The ``rindle`` entry point of rindle-gcs: registers ``backend = "gcs"`` and its doctor
checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rindle import hookimpl
from rindle.errors import RindleError
from rindle.ops.doctor import Check
from rindle_gcs.storage import GCSStorage

if TYPE_CHECKING:
    from rindle import Rindle


@hookimpl
def register_storage_backends(register: Callable[[str, type], None]) -> None:
    """Provide ``backend = "gcs"``."""
    register("gcs", GCSStorage)


@hookimpl
def rindle_doctor_checks(app: Rindle) -> list[Check]:
    """For each gcs storage: the bucket answers a listing (ERROR if not), and the storage can
    sign URLs (WARN if not: private delivery and presigned uploads are then refused).

    A storage that cannot even be built is left to the core's storage check.
    """
    out: list[Check] = []
    for name in sorted(app.settings.storages):
        if dict(app.settings.storages[name]).get("backend") != "gcs":
            continue
        try:
            storage = app.storage(name)
        except RindleError:
            continue
        if not isinstance(storage, GCSStorage):
            continue
        try:
            storage.check_bucket()
            out.append(Check(f"gcs.{name}.bucket", "ok",
                             f"bucket {storage.bucket_name!r} is reachable", component="gcs"))
        except RindleError as exc:
            out.append(Check(f"gcs.{name}.bucket", "error", exc.message,
                             f"create bucket {storage.bucket_name!r} or fix [storages.{name}] "
                             "bucket/project/credentials_file", "gcs"))
        if storage.describe()["can_sign"]:
            out.append(Check(f"gcs.{name}.signing", "ok", "can sign V4 URLs",
                             component="gcs"))
        else:
            out.append(Check(f"gcs.{name}.signing", "warn",
                             "no service-account key: private delivery and presigned "
                             "uploads are refused",
                             f"set credentials_file in [storages.{name}] to a "
                             "service-account JSON key", "gcs"))
    return out
