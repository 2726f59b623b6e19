"""Reading tensors out of a legacy PyTorch checkpoint without importing torch.

``torch.save`` before the zip format (and resemblyzer's ``pretrained.pt`` is such a file)
writes five things one after the other: three small pickles (a magic number, the protocol
version 1001 and some system facts), the pickled object whose tensors refer to storages
by key (``persistent_id`` tuples ``("storage", type, key, location, numel, view)``), a
pickled list of those keys, and then each storage's raw data in that order, as an int64
element count followed by the elements in little-endian order.

``load_legacy_checkpoint`` reads such a file with an unpickler that knows only the names
a checkpoint of plain tensors needs (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the typed storage classes): any other global in
the pickle is refused, so a tampered file cannot run code. Each tensor comes back as a
read-only numpy array that owns a copy of its slice of the storage.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from shared.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")


_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
}


class CheckpointFormatError(ValueError):
    """The file is not a legacy torch checkpoint of plain tensors."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _StorageRef,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_ignored: object,
) -> _TensorRef:
    # requires_grad, backward hooks and metadata mean nothing to a numpy array.
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


class _CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
        raise CheckpointFormatError(f"checkpoint refers to {module}.{name}, which is not allowed")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointFormatError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int):
            raise CheckpointFormatError(f"unexpected storage reference {pid!r}")
        ref = _StorageRef(str(key), storage_type.dtype, numel)
        self.storages[ref.key] = ref
        return ref


def _unpickle(stream: BinaryIO, storages: dict[str, _StorageRef] | None = None) -> Any:
    unpickler = _CheckpointUnpickler(stream)
    try:
        value = unpickler.load()
    except CheckpointFormatError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        LookupError,
        AttributeError,
        TypeError,
        ValueError,
        OverflowError,
    ) as exc:
        # What a malformed pickle stream raises, depending on where it breaks.
        raise CheckpointFormatError(f"not a legacy torch checkpoint: {exc}") from exc
    if storages is not None:
        storages.update(unpickler.storages)
    return value


def _tensor_refs(value: Any, prefix: str = "") -> dict[str, _TensorRef]:
    """Return every tensor in nested dicts, by dotted key path."""
    found: dict[str, _TensorRef] = {}
    if isinstance(value, _TensorRef):
        found[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            found.update(_tensor_refs(item, f"{prefix}.{key}" if prefix else str(key)))
    return found


def load_legacy_checkpoint(path: Path, section: str) -> dict[str, npt.NDArray[Any]]:
    """Return the tensors of ``section`` (e.g. ``model_state``) of the checkpoint at ``path``.

    Keys are the state-dict names (``lstm.weight_ih_l0``); each array has the tensor's
    shape and dtype. Storages that no tensor of ``section`` uses are skipped, not read.

    Raises:
        CheckpointFormatError: the file is not a legacy torch checkpoint, refers to names
            outside the allowed set, lacks ``section``, or ends early.
        OSError: the file cannot be read.
    """
    with path.open("rb") as stream:
        magic, protocol = _unpickle(stream), _unpickle(stream)
        if magic != _MAGIC_NUMBER or protocol != _PROTOCOL_VERSION:
            raise CheckpointFormatError("not a legacy torch checkpoint (magic or protocol)")
        system = _unpickle(stream)
        if not (isinstance(system, dict) and system.get("little_endian", False)):
            raise CheckpointFormatError("only little-endian checkpoints are supported")
        storages: dict[str, _StorageRef] = {}
        root = _unpickle(stream, storages)
        keys = _unpickle(stream)
        if not isinstance(root, dict) or section not in root:
            raise CheckpointFormatError(f"checkpoint has no {section!r}")
        wanted = _tensor_refs(root[section])
        data = _read_storages(stream, keys, storages, {ref.storage.key for ref in wanted.values()})
    return {name: _view(ref, data[ref.storage.key]) for name, ref in wanted.items()}


def _read_storages(
    stream: BinaryIO, keys: Any, storages: dict[str, _StorageRef], wanted: set[str]
) -> dict[str, npt.NDArray[Any]]:
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise CheckpointFormatError("the storage key list does not match the tensors")
    data: dict[str, npt.NDArray[Any]] = {}
    for key in keys:
        header = stream.read(8)
        if len(header) != 8:
            raise CheckpointFormatError("checkpoint ends before its storages")
        (count,) = struct.unpack("<q", header)
        storage = storages[key]
        if count != storage.numel:
            raise CheckpointFormatError(
                f"storage {key} holds {count} elements, not {storage.numel}"
            )
        size = count * storage.dtype.itemsize
        if key in wanted:
            data[key] = np.frombuffer(_read_exactly(stream, size), dtype=storage.dtype)
        else:
            stream.seek(size, io.SEEK_CUR)
    return data


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise CheckpointFormatError("checkpoint ends inside a storage")
    return data


def _view(ref: _TensorRef, storage: npt.NDArray[Any]) -> npt.NDArray[Any]:
    expected = tuple(math.prod(ref.shape[i + 1 :]) for i in range(len(ref.shape)))
    if ref.stride != expected:
        raise CheckpointFormatError("only contiguous tensors are supported")
    end = ref.offset + math.prod(ref.shape)
    if ref.offset < 0 or end > storage.size:
        raise CheckpointFormatError("a tensor lies outside its storage")
    array = storage[ref.offset : end].reshape(ref.shape).copy()
    array.flags.writeable = False
    return array
