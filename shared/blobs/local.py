"""The embedded object storage: files under the data directory, indexed by SQLite.

``index.sqlite3`` (``_local_index``) holds one row per object with its metadata; the
bytes of each generation larger than ``INLINE_MAX_BYTES`` live in a file of their own
(``_local_files``: hashed names, written once, never changed), smaller objects (the
timestamps JSON beside each audio file, say) in the index row itself. Why not a file at
the object's own path with a JSON sidecar: Cloud Storage lets ``a`` and ``a/b`` both
exist, allows 1024-byte names and lists in byte order with paging; a filesystem path can
do none of that.

A large write goes to a temporary file beside its target (fsynced when ``durable``), is
renamed into place and becomes visible when its index row commits; a small one is only
that row. Index writers are serialized across threads and processes, which makes
``if_generation_match`` race-safe for both. Old generations' files are removed after the
commit, on a worker thread; a reader that loses that race simply reads the index again.
A process crash can leave an orphan file, never a torn object: an inline object's bytes
commit in the same WAL transaction as its row, so they need no fsync of their own. Like
the SQLite document store, the index runs with ``synchronous=NORMAL`` and directories are
not fsynced, so a power loss may forget the last writes, inline or not: the usual trade
for a development store.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cloudevents.http import CloudEvent

from shared.blobs._local_files import (
    FileLayout,
    checksums,
    chunks_of,
    read_up_to,
    remove,
    start_hash,
    write_stream,
)
from shared.blobs._local_index import (
    ObjectIndex,
    check_precondition,
    from_micros,
    now_micros,
)
from shared.blobs.base import (
    DEFAULT_CHUNK_SIZE,
    Data,
    ObjectInfo,
    ObjectPage,
    ObjectStorage,
    SignedUpload,
    check_bucket_name,
    check_chunk_size,
    check_content_type,
    check_generation,
    check_metadata,
    check_object_name,
    check_prefix,
    check_range,
    check_signed_upload_request,
    check_signed_url_request,
    check_upload_size,
    known_size,
)
from shared.blobs.events import finalized_event
from shared.blobs.signing import UrlSigner
from shared.errors import InvalidRequestError, NotFoundError, PreconditionFailedError

logger = logging.getLogger(__name__)

Publisher = Callable[[CloudEvent], None]
_READ_ATTEMPTS = 5
# Objects up to this size live in their index row rather than in a file of their own.
# SQLite writes small blobs faster than the filesystem creates, fsyncs and renames a file
# (``python -m bench.blobs`` times 6 KB puts against fsynced atomic writes), and the WAL
# commit makes the row and its bytes one atomic change, so no separate fsync is needed and
# a torn object is still impossible. Larger blobs gain less: each is written twice (WAL,
# then checkpoint) and brings the next fsynced checkpoint closer. ``bench.blobs`` also times
# puts at 32-256 KB both ways: inline is faster at 32 and 64 KB, slower from 128 KB on
# (on 2026-12-07, about 1.3-1.8 x a fsynced file at 128 KB, 1.9-2.6 x at 256 KB).
INLINE_MAX_BYTES = 64 * 1024


class LocalObjectStorage(ObjectStorage):
    """Object storage in a local folder; safe for many threads and several processes.

    ``signing_key`` signs download URLs served by the gateway at
    ``{public_base_url}/_blobs/``; ``on_finalized`` receives the Eventarc-shaped
    ``object.v1.finalized`` CloudEvent after every put, copy and move (it must not
    block: ``EventPoster`` queues). ``durable=False`` skips the fsync of each data file
    (objects stored inline have none); ``bench.synthesis`` turns the ``durable`` attribute
    off for a while to time what the fsync costs a synthesis. ``inline_max_bytes`` is there
    for ``bench.blobs``, which times the same puts on either side of the limit.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        signing_key: bytes,
        public_base_url: str,
        max_upload_bytes: int,
        on_finalized: Publisher | None = None,
        durable: bool = True,
        inline_max_bytes: int = INLINE_MAX_BYTES,
    ) -> None:
        super().__init__(max_upload_bytes=max_upload_bytes)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.signer = UrlSigner(signing_key, public_base_url)
        self._on_finalized = on_finalized
        self.durable = durable
        self._inline_max_bytes = inline_max_bytes
        self._index = ObjectIndex(self.root / "index.sqlite3")
        self._files = FileLayout(self.root)
        self._workers = ThreadPoolExecutor(thread_name_prefix="blobs")

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        self._index.close()

    def _in_background(self, function: Callable[..., None], *args: Any) -> Future[None]:
        try:
            return self._workers.submit(function, *args)
        except RuntimeError:  # closed: do it here and now
            done: Future[None] = Future()
            function(*args)
            done.set_result(None)
            return done

    # -- writes ------------------------------------------------------------------------

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
        check_bucket_name(bucket)
        check_object_name(name)
        check_content_type(content_type)
        custom = check_metadata(metadata)
        check_generation(if_generation_match)
        check_upload_size(known_size(data), self.max_upload_bytes)
        head: bytes | bytearray | memoryview
        if isinstance(data, bytes | bytearray | memoryview):
            head, rest = data, None
        else:
            # One byte past the inline limit tells whether the stream fits in its index row;
            # a larger one goes on from there to a file, never whole into memory.
            head, rest = read_up_to(data, self._inline_max_bytes + 1), data
        fields: dict[str, Any] = {"content_type": content_type, "metadata": custom}
        if memoryview(head).nbytes <= self._inline_max_bytes:
            content = bytes(head)
            check_upload_size(len(content), self.max_upload_bytes)
            md5_hash, crc32c = checksums(content)
            fields.update(size=len(content), md5_hash=md5_hash, crc32c=crc32c)
            info = self._commit_new(
                bucket, name, content, if_generation_match=if_generation_match, fields=fields
            )
        else:
            # The MD5, slower than writing, starts before the file is even created.
            hashed = start_hash(head, self._in_background)
            temp, handle = self._files.temp_file(bucket, name)
            try:
                with handle:
                    size, md5_hash, crc32c = write_stream(
                        handle,
                        head,
                        rest,
                        max_bytes=self.max_upload_bytes,
                        durable=self.durable,
                        background=self._in_background,
                        hashed_head=hashed,
                    )
                fields.update(size=size, md5_hash=md5_hash, crc32c=crc32c)
                info = self._commit_new(
                    bucket, name, temp, if_generation_match=if_generation_match, fields=fields
                )
            except BaseException:
                # Committed, the file was renamed into place: only a failure leaves it. (A
                # needless unlink here waits on the directory while the old generation's
                # file is removed beside it.)
                remove(temp)
                raise
        self._publish(info)
        return info

    def _commit_new(
        self,
        bucket: str,
        name: str,
        content: bytes | str,
        *,
        if_generation_match: int | None,
        fields: dict[str, Any],
        remove_source: tuple[str, str, int] | None = None,
    ) -> ObjectInfo:
        """Make ``content`` the next generation of ``bucket/name`` and return its info.

        Bytes are stored inline in the index row; a str names a temporary file, renamed
        into place (the caller removes it on failure). ``remove_source`` names an object
        (bucket, name, generation) whose index row goes in the same commit (a move);
        _SourceChanged means it is at another generation.
        """
        old_files: list[str] = []
        with self._index.transaction() as conn:
            current = self._index.current(conn, bucket, name)
            check_precondition(bucket, name, current, if_generation_match)
            if remove_source is not None:
                source_bucket, source_name, source_generation = remove_source
                moved = self._index.current(conn, source_bucket, source_name)
                if moved is None or moved.generation != source_generation:
                    raise _SourceChangedError()
                self._index.remove(conn, source_bucket, source_name)
                if moved.in_file:
                    old_files.append(self._files.data_path(*remove_source))
            now = now_micros()
            generation = max(now, current.generation + 1) if current else now
            target: str | None = None
            inline_data: bytes | None = None
            if isinstance(content, str):
                target = self._files.data_path(bucket, name, generation)
                os.replace(content, target)
            else:
                inline_data = content
            try:
                self._index.upsert(
                    conn, bucket, name, generation, fields, now=now, inline_data=inline_data
                )
            except BaseException:
                if target is not None:
                    remove(target)
                raise
        if current is not None and current.in_file:
            old_files.append(self._files.data_path(bucket, name, current.generation))
        # Old generations are garbage once the index moved on: remove them off the caller's
        # path (unlinking a large file is not free); close() waits for these removals.
        if old_files:
            self._in_background(remove, *old_files)
        return ObjectInfo(
            bucket=bucket,
            name=name,
            size=fields["size"],
            content_type=fields["content_type"],
            md5_hash=fields["md5_hash"],
            crc32c=fields["crc32c"],
            generation=generation,
            metageneration=1,
            time_created=from_micros(now),
            updated=from_micros(now),
            metadata=dict(fields["metadata"]),
        )

    def copy(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        *,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        return self._copy(bucket, name, dest_bucket, dest_name, if_generation_match, move=False)

    def move(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        *,
        if_generation_match: int | None = None,
    ) -> ObjectInfo:
        if (bucket, name) == (dest_bucket, dest_name):
            raise InvalidRequestError("An object cannot be moved onto itself")
        return self._copy(bucket, name, dest_bucket, dest_name, if_generation_match, move=True)

    def _copy(
        self,
        bucket: str,
        name: str,
        dest_bucket: str,
        dest_name: str,
        if_generation_match: int | None,
        *,
        move: bool,
    ) -> ObjectInfo:
        for b, n in ((bucket, name), (dest_bucket, dest_name)):
            check_bucket_name(b)
            check_object_name(n)
        check_generation(if_generation_match)
        for _ in range(_READ_ATTEMPTS):
            found = self._index.info_with_data(bucket, name)
            if found is None:
                raise NotFoundError(f"Object {bucket}/{name} not found")
            source, inline_data = found
            content: bytes | str
            if inline_data is not None:
                content = inline_data
            else:
                source_path = self._files.data_path(bucket, name, source.generation)
                try:
                    # Generations never change once written: a hard link is a complete copy.
                    content = self._files.link_copy(source_path, dest_bucket, dest_name)
                except FileNotFoundError:
                    continue  # the source was replaced meanwhile: look it up again
            try:
                info = self._commit_new(
                    dest_bucket,
                    dest_name,
                    content,
                    if_generation_match=if_generation_match,
                    fields={
                        "size": source.size,
                        "content_type": source.content_type,
                        "md5_hash": source.md5_hash,
                        "crc32c": source.crc32c,
                        "metadata": source.metadata,
                    },
                    remove_source=(bucket, name, source.generation) if move else None,
                )
            except _SourceChangedError:
                continue
            finally:
                if isinstance(content, str):
                    remove(content)  # the link, unless it was renamed into place
            self._publish(info)
            return info
        raise PreconditionFailedError(f"Object {bucket}/{name} kept changing during the copy")

    def delete(self, bucket: str, name: str, *, if_generation_match: int | None = None) -> bool:
        check_bucket_name(bucket)
        check_object_name(name)
        check_generation(if_generation_match)
        with self._index.transaction() as conn:
            current = self._index.current(conn, bucket, name)
            if current is None:
                return False
            check_precondition(bucket, name, current, if_generation_match)
            self._index.remove(conn, bucket, name)
        if current.in_file:
            remove(self._files.data_path(bucket, name, current.generation))
        return True

    # -- reads -------------------------------------------------------------------------

    def info(self, bucket: str, name: str) -> ObjectInfo:
        check_bucket_name(bucket)
        check_object_name(name)
        info = self._index.info(self._index.connection(), bucket, name)
        if info is None:
            raise NotFoundError(f"Object {bucket}/{name} not found")
        return info

    def open(self, bucket: str, name: str) -> tuple[ObjectInfo, BinaryIO]:
        """Return the object's info and an open binary file of that generation.

        The caller closes the file (a BytesIO for an object stored inline). Raises
        NotFoundError.
        """
        check_bucket_name(bucket)
        check_object_name(name)
        for _ in range(_READ_ATTEMPTS):
            found = self._index.info_with_data(bucket, name)
            if found is None:
                break
            info, inline_data = found
            if inline_data is not None:
                return info, io.BytesIO(inline_data)
            try:
                handle = open(self._files.data_path(bucket, name, info.generation), "rb")  # noqa: SIM115 - returned open
            except FileNotFoundError:
                continue  # replaced or deleted between the index read and the open
            return info, handle
        raise NotFoundError(f"Object {bucket}/{name} not found")

    def _open_current(self, bucket: str, name: str) -> tuple[int, BinaryIO]:
        """Return the size and an open file of the current generation (the read fast path).

        The file is a BytesIO for an object stored inline.
        """
        check_bucket_name(bucket)
        check_object_name(name)
        folder, digest = self._files.object_dir(bucket, name)
        for _ in range(_READ_ATTEMPTS):
            located = self._index.locate(bucket, name)
            if located is None:
                break
            if located.inline_data is not None:
                return located.size, io.BytesIO(located.inline_data)
            try:
                handle = open(f"{folder}/{digest}.{located.generation}", "rb")  # noqa: SIM115 - returned open
            except FileNotFoundError:
                continue  # replaced or deleted between the index read and the open
            return located.size, handle
        raise NotFoundError(f"Object {bucket}/{name} not found")

    def get(
        self, bucket: str, name: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        check_range(start, end)
        size, handle = self._open_current(bucket, name)
        with handle:
            first = start or 0
            last = size - 1 if end is None else min(end, size - 1)
            if first > last:
                return b""
            if first:
                handle.seek(first)
            return handle.read(last - first + 1)

    def stream(
        self, bucket: str, name: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        check_chunk_size(chunk_size)
        _, handle = self._open_current(bucket, name)
        return chunks_of(handle, chunk_size)

    def list(
        self, bucket: str, prefix: str = "", *, page_size: int = 1000, cursor: str | None = None
    ) -> ObjectPage:
        check_bucket_name(bucket)
        check_prefix(prefix)
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= 1000
        ):
            raise InvalidRequestError("page_size must be between 1 and 1000")
        items, next_cursor = self._index.page(bucket, prefix, page_size=page_size, cursor=cursor)
        return ObjectPage(items, next_cursor)

    def signed_url(
        self, bucket: str, name: str, *, expires_in: timedelta, method: str = "GET"
    ) -> str:
        check_bucket_name(bucket)
        check_object_name(name)
        check_signed_url_request(expires_in, method)
        expires = int(time.time() + expires_in.total_seconds())
        return self.signer.url(method, bucket, name, expires)

    def signed_upload_url(
        self,
        bucket: str,
        name: str,
        *,
        expires_in: timedelta,
        content_type: str,
        max_bytes: int,
    ) -> SignedUpload:
        check_bucket_name(bucket)
        check_object_name(name)
        limit = check_signed_upload_request(
            expires_in, content_type, max_bytes, self.max_upload_bytes
        )
        expires = int(time.time() + expires_in.total_seconds())
        url = self.signer.upload_url(
            bucket, name, expires, content_type=content_type, max_bytes=limit
        )
        return SignedUpload(
            url=url,
            headers={"Content-Type": content_type},
            max_bytes=limit,
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    # -- events ------------------------------------------------------------------------

    def _publish(self, info: ObjectInfo) -> None:
        if self._on_finalized is None:
            return
        try:
            self._on_finalized(finalized_event(info))
        except Exception:
            # The object is stored; a lost notification must not turn the write into an error.
            logger.exception(
                "Could not publish the finalized event of %s/%s", info.bucket, info.name
            )


class _SourceChangedError(Exception):
    """The source of a move changed after it was read; the move starts again."""
