"""Where the embedded object storage keeps object bytes on disk, and how it writes them.

The bytes of each generation too large to live in the index row are the file
``{root}/{bucket}/{hh}/{sha256(name)}.{generation}``, written once and never changed.
Hashed file names mean no object name can reach outside the folder, whatever validation
missed, and ``a`` and ``a/b`` can both exist as Cloud Storage allows. A write goes to a
temporary file beside its target (fsynced when durable) and is renamed into place; a copy
is a hard link, since a generation never changes. Paths are plain strings: pathlib's
overhead is measurable on the 1 MB read path.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import google_crc32c

from shared.blobs.base import DEFAULT_CHUNK_SIZE
from shared.errors import PayloadTooLargeError

_PARALLEL_HASH_BYTES = 256 * 1024

Background = Callable[..., "Future[None]"]
"""Runs a function with its arguments on a worker thread; returns its future."""


class FileLayout:
    """The data files of one storage folder."""

    def __init__(self, root: Path) -> None:
        self._root = str(root)

    def object_dir(self, bucket: str, name: str) -> tuple[str, str]:
        """Return the folder of ``bucket/name``'s files and the hash that names them."""
        digest = hashlib.sha256(name.encode()).hexdigest()
        return f"{self._root}/{bucket}/{digest[:2]}", digest

    def data_path(self, bucket: str, name: str, generation: int) -> str:
        """Return the file holding ``generation`` of ``bucket/name``."""
        folder, digest = self.object_dir(bucket, name)
        return f"{folder}/{digest}.{generation}"

    def temp_file(self, bucket: str, name: str) -> tuple[str, BinaryIO]:
        """Return a new temporary file (path, open handle) beside the object's files."""
        folder, _ = self.object_dir(bucket, name)
        try:
            fd, path = tempfile.mkstemp(dir=folder, prefix=".upload-")
        except FileNotFoundError:  # the first object of its folder (256 per bucket)
            os.makedirs(folder, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=folder, prefix=".upload-")
        return path, os.fdopen(fd, "wb")

    def link_copy(self, source: str, bucket: str, name: str) -> str:
        """Return a new file beside ``bucket/name``'s holding ``source``'s bytes (a link).

        Raises FileNotFoundError when ``source`` is gone.
        """
        folder, _digest = self.object_dir(bucket, name)
        os.makedirs(folder, exist_ok=True)
        target = f"{folder}/.copy-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
        try:
            os.link(source, target)
        except FileNotFoundError:
            raise
        except OSError:
            # Filesystems without hard links: copy the bytes instead.
            shutil.copyfile(source, target)
        return target


def write_stream(
    handle: BinaryIO,
    head: bytes | bytearray | memoryview,
    rest: BinaryIO | None,
    *,
    max_bytes: int,
    durable: bool,
    background: Background,
    hashed_head: HashedHead | None = None,
) -> tuple[int, str, str]:
    """Write ``head``, then what is left of ``rest``; return the size and checksums.

    ``hashed_head`` is the MD5 already started on ``head`` (``start_hash``), so that it
    ran while the file was being created. Raises PayloadTooLargeError beyond ``max_bytes``.
    """
    md5 = hashed_head.md5 if hashed_head else hashlib.md5(usedforsecurity=False)
    hashing: Future[None] | None = hashed_head.future if hashed_head else None
    crc = 0
    size = 0
    chunks: Iterable[bytes | bytearray | memoryview] = [head]
    if rest is not None:
        chunks = itertools.chain(chunks, iter(lambda: rest.read(DEFAULT_CHUNK_SIZE), b""))
    try:
        for chunk in chunks:
            size += memoryview(chunk).nbytes
            if size > max_bytes:
                raise PayloadTooLargeError(f"Object exceeds the {max_bytes}-byte upload limit")
            if hashed_head is not None and chunk is head:
                pass  # already being hashed
            else:
                if hashing is not None:
                    hashing.result()
                    hashing = None
                # MD5 is the slowest step (about 600 MB/s, slower than a page-cache write):
                # it runs on another thread (hashlib releases the GIL) beside write and fsync.
                if len(chunk) >= _PARALLEL_HASH_BYTES:
                    hashing = background(md5.update, chunk)
                else:
                    md5.update(chunk)
            handle.write(chunk)
            crc = google_crc32c.extend(crc, chunk)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    finally:
        if hashing is not None:
            hashing.result()
    return size, _b64(md5.digest()), _b64(crc.to_bytes(4, "big"))


class HashedHead(NamedTuple):
    """An MD5 started on a stream's first bytes, and the future of that work."""

    md5: Any
    future: Future[None]


def start_hash(head: bytes | bytearray | memoryview, background: Background) -> HashedHead:
    """Return an MD5 of ``head`` started on a worker thread."""
    md5 = hashlib.md5(usedforsecurity=False)
    return HashedHead(md5, background(md5.update, head))


def checksums(content: bytes) -> tuple[str, str]:
    """Return the base64 MD5 and CRC32C of ``content``, as ``ObjectInfo`` holds them."""
    md5 = hashlib.md5(content, usedforsecurity=False).digest()
    return _b64(md5), _b64(google_crc32c.value(content).to_bytes(4, "big"))


def read_up_to(stream: BinaryIO, limit: int) -> bytes:
    """Read ``limit`` bytes from ``stream``, fewer only when it ends first."""
    parts: list[bytes] = []
    missing = limit
    while missing > 0 and (part := stream.read(missing)):
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def chunks_of(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    """Yield ``handle``'s bytes in chunks, closing it at the end."""
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def remove(*paths: Any) -> None:
    """Delete the files at ``paths``; a missing one is already what we want."""
    for path in paths:
        with suppress(FileNotFoundError):
            os.unlink(path)


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")
