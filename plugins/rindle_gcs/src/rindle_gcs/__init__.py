"""rindle-gcs: Google Cloud Storage for rindle."""

from rindle_gcs import _rindle_core  # noqa: F401  (first: is this the rindle media library?)
from rindle_gcs.storage import GCSStorage, ResumableSession, ResumableStatus

__all__ = ["GCSStorage", "ResumableSession", "ResumableStatus"]
__version__ = "0.1.0"
