"""Copy the speaker encoder's weights into the source tree, for a deploy without Cloud Build.

The functions read resemblyzer 0.1.4's ``pretrained.pt`` from the source archive
(``vendor/resemblyzer/pretrained.pt``; ``VOICE_SPEAKER_ENCODER_WEIGHTS`` in infra/main.tf),
because Cloud Functions cannot install resemblyzer (its dependencies pull torch). Cloud
Build takes the file out of the wheel (``package_source.py --from-wheel``); Terraform's own
``archive_file`` zips the source tree as it is, so run this first::

    python3 infra/vendor_weights.py                      # from the installed package (make venv)
    python3 infra/vendor_weights.py --wheel Resemblyzer-0.1.4-py3-none-any.whl

It checks the file's SHA-256, writes ``vendor/resemblyzer/pretrained.pt`` under ``--root``
(the repository by default; ``/vendor/`` is in .gitignore, not in .gcloudignore) and prints
its path. Standard library only; resemblyzer is located, never imported (that imports torch).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

try:
    from infra.package_source import WEIGHTS_NAME, WEIGHTS_SHA256, wheel_member
except ModuleNotFoundError:  # run as a script: infra/ itself is first on the path
    from package_source import WEIGHTS_NAME, WEIGHTS_SHA256, wheel_member

REPO = Path(__file__).resolve().parents[1]


def installed_weights() -> bytes:
    """Return the installed resemblyzer package's ``pretrained.pt``.

    Raises ``ValueError`` when resemblyzer is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("resemblyzer")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "pretrained.pt"
        if path.is_file():
            return path.read_bytes()
    raise ValueError(
        "resemblyzer is not installed here: run with the project's virtualenv "
        "(.venv/bin/python infra/vendor_weights.py) or pass --wheel"
    )


def vendor_weights(root: Path, data: bytes) -> Path:
    """Write ``data`` at the archive's weights path under ``root``; return that path.

    Raises ``ValueError`` when ``data`` is not resemblyzer 0.1.4's weights.
    """
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"the weights have SHA-256 {digest}, expected {WEIGHTS_SHA256}")
    target = root / WEIGHTS_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Copy the weights; print where they went; return the exit status."""
    parser = argparse.ArgumentParser(prog="vendor_weights.py", description=__doc__)
    parser.add_argument("--root", default=REPO, type=Path, help="the source tree")
    parser.add_argument("--wheel", type=Path, help="take them from this resemblyzer wheel")
    args = parser.parse_args(argv)
    try:
        data = (
            wheel_member(args.wheel, "resemblyzer/pretrained.pt", WEIGHTS_SHA256)
            if args.wheel
            else installed_weights()
        )
        print(vendor_weights(args.root, data))
    except ValueError as error:
        print(f"vendor_weights: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
