"""Package the functions' source archive: the same files always give the same bytes.

Cloud Build runs it on what gcloud itself would upload (the repository minus
``.gcloudignore``)::

    gcloud meta list-files-for-upload . > files.txt
    python3 infra/package_source.py --files files.txt --out functions-source.zip

and uploads the archive under the name it prints, ``functions-source-<sha256>.zip``.
Entries are sorted and carry a fixed timestamp and mode, so an unchanged source gives an
unchanged name (Terraform then leaves the functions alone), and rolling back means naming
an archive an earlier build uploaded. Standard library only: it runs in the Cloud SDK image.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
NAME_PREFIX = "functions-source-"


def _entries(root: Path, listed: Iterable[str]) -> list[tuple[str, Path]]:
    entries = {}
    for line in listed:
        name = line.strip()
        if not name:
            continue
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"{name}: listed files must stay inside the source root")
        path = root / relative
        if path.is_file():
            entries[relative.as_posix()] = path
    return sorted(entries.items())


def build_archive(root: Path, listed: Iterable[str]) -> bytes:
    """Return the zip of the ``listed`` files under ``root``, byte for byte reproducible.

    Raises ``ValueError`` for a listed path outside ``root`` or an empty listing.
    """
    entries = _entries(root, listed)
    if not entries:
        raise ValueError("no files to package")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is honoured
            executable = path.stat().st_mode & 0o111
            info.external_attr = (0o755 if executable else 0o644) << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def archive_name(archive: bytes) -> str:
    """Return the object name for ``archive``: its content hash."""
    return f"{NAME_PREFIX}{hashlib.sha256(archive).hexdigest()[:20]}.zip"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the archive and print its object name; return the exit status."""
    parser = argparse.ArgumentParser(prog="package_source.py", description=__doc__)
    parser.add_argument("--files", required=True, type=Path, help="one path per line")
    parser.add_argument("--out", required=True, type=Path, help="where to write the zip")
    parser.add_argument("--root", default=Path(), type=Path, help="paths are relative to it")
    args = parser.parse_args(argv)
    try:
        archive = build_archive(args.root, args.files.read_text(encoding="utf-8").splitlines())
    except ValueError as error:
        print(f"package_source: {error}", file=sys.stderr)
        return 1
    args.out.write_bytes(archive)
    print(archive_name(archive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
