"""Storage: the backend protocol and the built-in local-filesystem backend."""

from rindle.storage.base import (
    BackendContext,
    Capability,
    ObjectInfo,
    PresignedRequest,
    ResumableSession,
    ResumableStatus,
    Storage,
)
from rindle.storage.batching import delete_in_batches

__all__ = ["BackendContext", "Capability", "ObjectInfo", "PresignedRequest", "ResumableSession",
           "ResumableStatus", "Storage", "delete_in_batches"]
