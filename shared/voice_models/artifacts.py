"""Where a voice model's files live in object storage, and moving them on delete/restore.

Seed 001's layout, all in the models bucket: ``models/{userId}/{modelId}/`` holds a
model's files, ``deleted/{userId}/`` receives the files of deleted models and
``backups/{userId}/`` the backups. A model's ``modelPath`` must name an object under the
owner's ``models/{userId}/`` prefix, written either as that object name or as
``gs://{models bucket}/models/{userId}/...``. A model's files are the object at its
path plus everything under ``models/{userId}/{modelId}/``. Deleting mirrors each file
from ``models/{userId}/...`` to ``deleted/{userId}/...`` (so restoring is the reverse).
"""

from __future__ import annotations

import contextlib
import logging

from shared.blobs.base import ObjectInfo, ObjectStorage, check_object_name
from shared.errors import InvalidModelPathError, InvalidRequestError, NotFoundError
from shared.voice_models.model import VoiceModel

logger = logging.getLogger(__name__)

MODELS_PREFIX = "models"
DELETED_PREFIX = "deleted"
BACKUPS_PREFIX = "backups"


def user_prefix(area: str, user_id: str) -> str:
    """Return ``{area}/{userId}/``."""
    return f"{area}/{user_id}/"


def model_object_name(model_path: str, *, user_id: str, bucket: str) -> str:
    """Return the object name ``model_path`` designates in the models bucket.

    Raises InvalidModelPathError unless it lies under ``models/{user_id}/``.
    """
    gs_prefix = f"gs://{bucket}/"
    if model_path.startswith("gs://"):
        if not model_path.startswith(gs_prefix):
            raise InvalidModelPathError(f"modelPath must be in the bucket gs://{bucket}/")
        name = model_path[len(gs_prefix) :]
    else:
        name = model_path
    prefix = user_prefix(MODELS_PREFIX, user_id)
    try:
        check_object_name(name)
    except InvalidRequestError as exc:
        raise InvalidModelPathError(f"Invalid modelPath: {exc.message}") from None
    if not name.startswith(prefix) or len(name) == len(prefix) or name.endswith("/"):
        raise InvalidModelPathError(f"modelPath must name an object under {prefix}")
    return name


def model_files(blobs: ObjectStorage, bucket: str, model: VoiceModel) -> list[ObjectInfo]:
    """Return the model's stored files (path object and its folder), by name."""
    files: dict[str, ObjectInfo] = {}
    name = model_object_name(model.model_path, user_id=model.user_id, bucket=bucket)
    with contextlib.suppress(NotFoundError):
        files[name] = blobs.info(bucket, name)
    folder = f"{user_prefix(MODELS_PREFIX, model.user_id)}{model.id}/"
    for info in _list_all(blobs, bucket, folder):
        files[info.name] = info
    return [files[key] for key in sorted(files)]


def size_of(blobs: ObjectStorage, bucket: str, model_path: str, user_id: str) -> int:
    """Return the size in bytes of the object at ``model_path``, 0 when it is not there yet."""
    name = model_object_name(model_path, user_id=user_id, bucket=bucket)
    try:
        return blobs.info(bucket, name).size
    except NotFoundError:
        return 0


def move_to_deleted(blobs: ObjectStorage, bucket: str, model: VoiceModel) -> list[str]:
    """Move the model's files under ``deleted/{userId}/``; return the new names.

    A file that cannot be moved is logged and left in place (the model stays deleted).
    """
    moved = []
    source = user_prefix(MODELS_PREFIX, model.user_id)
    target = user_prefix(DELETED_PREFIX, model.user_id)
    for info in model_files(blobs, bucket, model):
        destination = target + info.name[len(source) :]
        try:
            blobs.move(bucket, info.name, bucket, destination)
            moved.append(destination)
        except Exception:
            logger.exception("Could not move %s of deleted voice model %s", info.name, model.id)
    return moved


def move_back(blobs: ObjectStorage, bucket: str, model: VoiceModel) -> list[str]:
    """Move a restored model's files from ``deleted/{userId}/`` back; return their names."""
    source = user_prefix(DELETED_PREFIX, model.user_id)
    target = user_prefix(MODELS_PREFIX, model.user_id)
    path_name = model_object_name(model.model_path, user_id=model.user_id, bucket=bucket)
    names = {source + path_name[len(target) :]}
    names.update(info.name for info in _list_all(blobs, bucket, f"{source}{model.id}/"))
    restored = []
    for name in sorted(names):
        destination = target + name[len(source) :]
        try:
            blobs.move(bucket, name, bucket, destination)
            restored.append(destination)
        except NotFoundError:
            continue
    return restored


def _list_all(blobs: ObjectStorage, bucket: str, prefix: str) -> list[ObjectInfo]:
    items: list[ObjectInfo] = []
    cursor: str | None = None
    while True:
        page = blobs.list(bucket, prefix, cursor=cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor
