"""rindle-s3: Amazon S3 and S3-compatible storage for rindle."""

from rindle_s3 import _rindle_core  # noqa: F401  (first: is this the rindle media library?)
from rindle_s3.storage import S3Storage

__all__ = ["S3Storage"]
__version__ = "0.1.0"
