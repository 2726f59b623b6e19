"""The embedded object storage with hooks, to run another request at one exact moment.

Races between a request and the storage calls of another happen now and then in
production; a test makes the interleaving it needs happen every time by running the other
request from a hook. Each hook runs once, then clears itself: ``on_get`` just after the
next read (the reader has the bytes), ``on_exists``, ``on_put`` and ``on_delete`` just
before the next existence check, write and delete, ``after_put``, ``after_delete`` and
``after_delete_prefix`` just after the next write, delete and folder deletion (whose own
deletes run the delete hooks too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shared.blobs.base import Data, ObjectInfo
from shared.blobs.local import LocalObjectStorage

Hook = Callable[[], object] | None


class InterleavedStorage(LocalObjectStorage):
    """The embedded object storage; each hook runs once, at its call."""

    on_get: Hook = None
    on_exists: Hook = None
    on_put: Hook = None
    after_put: Hook = None
    on_delete: Hook = None
    after_delete: Hook = None
    after_delete_prefix: Hook = None

    def _run(self, name: str) -> None:
        hook = getattr(self, name)
        setattr(self, name, None)
        if hook is not None:
            hook()

    def get(
        self, bucket: str, name: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        data = super().get(bucket, name, start=start, end=end)
        self._run("on_get")
        return data

    def exists(self, bucket: str, name: str) -> bool:
        self._run("on_exists")
        return super().exists(bucket, name)

    def put(
        self,
        bucket: str,
        name: str,
        data: Data,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        self._run("on_put")
        info = super().put(
            bucket,
            name,
            data,
            content_type=content_type,
            metadata=metadata,
            if_generation_match=if_generation_match,
        )
        self._run("after_put")
        return info

    def delete(self, bucket: str, name: str, *, if_generation_match: int | None = None) -> bool:
        self._run("on_delete")
        deleted = super().delete(bucket, name, if_generation_match=if_generation_match)
        self._run("after_delete")
        return deleted

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        removed = super().delete_prefix(bucket, prefix)
        self._run("after_delete_prefix")
        return removed
