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

__all__ = ["BackendContext", "Capability", "ObjectInfo", "PresignedRequest", "ResumableSession",
           "ResumableStatus", "Storage"]
