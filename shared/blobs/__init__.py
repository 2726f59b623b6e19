"""The object storage port and its adapters (local folder embedded, Cloud Storage in production)."""

from shared.blobs.base import (
    ObjectAlreadyExistsError,
    ObjectInfo,
    ObjectPage,
    ObjectStorage,
    PreconditionFailedError,
    check_object_name,
)

__all__ = [
    "ObjectAlreadyExistsError",
    "ObjectInfo",
    "ObjectPage",
    "ObjectStorage",
    "PreconditionFailedError",
    "check_object_name",
]
