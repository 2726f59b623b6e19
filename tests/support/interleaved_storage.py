"""The embedded object storage with hooks, to run another request at one exact moment.

Races between a request and the storage calls of another happen now and then in
production; a test makes the interleaving it needs happen every time by running the other
request from a hook. Each hook runs once, then clears itself: ``on_get`` just after the
next read (the reader has the bytes), ``on_exists`` and ``on_delete`` just before the next
existence check and delete, ``after_delete`` just after the next delete.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.blobs.local import LocalObjectStorage

Hook = Callable[[], object] | None


class InterleavedStorage(LocalObjectStorage):
    """The embedded object storage; each hook runs once, at its call."""

    on_get: Hook = None
    on_exists: Hook = None
    on_delete: Hook = None
    after_delete: Hook = None

    def get(
        self, bucket: str, name: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        data = super().get(bucket, name, start=start, end=end)
        hook, self.on_get = self.on_get, None
        if hook is not None:
            hook()
        return data

    def exists(self, bucket: str, name: str) -> bool:
        hook, self.on_exists = self.on_exists, None
        if hook is not None:
            hook()
        return super().exists(bucket, name)

    def delete(self, bucket: str, name: str) -> bool:
        hook, self.on_delete = self.on_delete, None
        if hook is not None:
            hook()
        deleted = super().delete(bucket, name)
        hook, self.after_delete = self.after_delete, None
        if hook is not None:
            hook()
        return deleted
