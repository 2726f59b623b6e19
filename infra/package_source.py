"""Package the functions' source archive: the same files always give the same bytes.

Cloud Build runs it on what gcloud itself would upload (the repository minus
``.gcloudignore``)::

    gcloud meta list-files-for-upload . > files.txt
    python3 infra/package_source.py --files files.txt --out functions-source.zip

and uploads the archive under the name it prints, ``functions-source-<sha256>.zip``.
``--from-wheel WHEEL MEMBER NAME SHA256`` adds a file taken out of a downloaded wheel
(checked against its SHA-256) at ``NAME``: the speaker encoder's weights come that way,
since Cloud Functions installs ``requirements.txt`` with plain pip and resemblyzer's own
dependencies would pull torch::

    pip download --no-deps --dest wheels resemblyzer==0.1.4
    python3 infra/package_source.py ... --from-wheel wheels/Resemblyzer-0.1.4-py3-none-any.whl \
        resemblyzer/pretrained.pt vendor/resemblyzer/pretrained.pt <sha256>

The archive must hold the weights (``REQUIRED_FILES``: where ``VOICE_SPEAKER_ENCODER_WEIGHTS``
in infra/main.tf points, with resemblyzer 0.1.4's SHA-256), taken from a wheel as above
or copied into the source tree first (``python3 infra/vendor_weights.py``, the step a
deploy without Cloud Build takes); packaging fails, writing nothing, when they are
missing or differ.

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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
NAME_PREFIX = "functions-source-"
# Files the functions cannot run without, by archive name, with their SHA-256.
WEIGHTS_NAME = "vendor/resemblyzer/pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
REQUIRED_FILES = {WEIGHTS_NAME: WEIGHTS_SHA256}


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


def wheel_member(wheel: Path, member: str, sha256: str) -> bytes:
    """Return the bytes of ``member`` inside the wheel (a zip), checked against ``sha256``.

    Raises ``ValueError`` when the wheel cannot be read, lacks the member, or the member's
    digest differs.
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"{wheel}: no {member} to take ({error})") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise ValueError(f"{wheel}: {member} has SHA-256 {digest}, expected {sha256}")
    return data


def build_archive(
    root: Path, listed: Iterable[str], extra: Mapping[str, bytes] | None = None
) -> bytes:
    """Return the zip of the ``listed`` files under ``root``, byte for byte reproducible.

    ``extra`` adds files that are not in the source tree, by archive name (they win over a
    listed file of the same name). Raises ``ValueError`` for a listed path outside
    ``root``, an unsafe extra name, or an empty listing.
    """
    entries: dict[str, bytes | Path] = dict(_entries(root, listed))
    for name, data in (extra or {}).items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"{name}: added files must stay inside the archive")
        entries[relative.as_posix()] = data
    if not entries:
        raise ValueError("no files to package")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            source = entries[name]
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is honoured
            executable = isinstance(source, Path) and source.stat().st_mode & 0o111
            info.external_attr = (0o755 if executable else 0o644) << 16
            archive.writestr(info, source.read_bytes() if isinstance(source, Path) else source)
    return buffer.getvalue()


def check_required(archive: bytes, required: Mapping[str, str] = REQUIRED_FILES) -> None:
    """Raise ``ValueError`` unless ``archive`` holds every ``required`` file with its digest."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        present = set(opened.namelist())
        for name, sha256 in sorted(required.items()):
            if name not in present:
                raise ValueError(
                    f"{name} is missing from the archive: the speaker encoder's weights. "
                    "Add them with --from-wheel (see cloudbuild.yaml), or copy them into "
                    "the source tree first: python3 infra/vendor_weights.py"
                )
            digest = hashlib.sha256(opened.read(name)).hexdigest()
            if digest != sha256:
                raise ValueError(f"{name} has SHA-256 {digest}, expected {sha256}")


def archive_name(archive: bytes) -> str:
    """Return the object name for ``archive``: its content hash."""
    return f"{NAME_PREFIX}{hashlib.sha256(archive).hexdigest()[:20]}.zip"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the archive and print its object name; return the exit status."""
    parser = argparse.ArgumentParser(prog="package_source.py", description=__doc__)
    parser.add_argument("--files", required=True, type=Path, help="one path per line")
    parser.add_argument("--out", required=True, type=Path, help="where to write the zip")
    parser.add_argument("--root", default=Path(), type=Path, help="paths are relative to it")
    parser.add_argument(
        "--from-wheel",
        nargs=4,
        action="append",
        default=[],
        metavar=("WHEEL", "MEMBER", "NAME", "SHA256"),
        help="add MEMBER of the wheel WHEEL as NAME, if its SHA-256 is SHA256",
    )
    args = parser.parse_args(argv)
    try:
        extra = {
            name: wheel_member(Path(wheel), member, sha256)
            for wheel, member, name, sha256 in args.from_wheel
        }
        listed = args.files.read_text(encoding="utf-8").splitlines()
        archive = build_archive(args.root, listed, extra)
        check_required(archive)
    except ValueError as error:
        print(f"package_source: {error}", file=sys.stderr)
        return 1
    args.out.write_bytes(archive)
    print(archive_name(archive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
