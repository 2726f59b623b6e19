"""The object storage port and its adapters (local folder embedded, Cloud Storage in production)."""

from shared.blobs.base import (
    ObjectAlreadyExistsError,
    ObjectInfo,
    ObjectPage,
    ObjectStorage,
    check_object_name,
)
from shared.errors import PreconditionFailedError

__all__ = [
    "ObjectAlreadyExistsError",
    "ObjectInfo",
    "ObjectPage",
    "ObjectStorage",
    "PreconditionFailedError",
    "check_object_name",
]
