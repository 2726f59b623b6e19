"""Print a dev-signed bearer token: ``python -m local.token --user alice [--admin] [--account A]``.

The token is signed with the same secret the platform's dev auth mode verifies with
(``VOICE_DEV_AUTH_SECRET``, or the secret generated under ``VOICE_DATA_DIR``), so
``TOKEN=$(make token USER=alice)`` gives a token the local gateway accepts. Only the token
goes to stdout; the command refuses to run unless ``VOICE_AUTH_MODE`` is ``dev``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared.auth import MAX_USER_ID_LENGTH, build_dev_verifier, is_usable_user_id
from shared.config import get_settings


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _user_id(text: str) -> str:
    if not is_usable_user_id(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} cannot name a user: 1 to {MAX_USER_ID_LENGTH} printable characters, "
            "no '/', not '.', '..' or __x__"
        )
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.token",
        description="Print a dev-signed bearer token for the local platform.",
    )
    parser.add_argument("--user", required=True, type=_user_id, help="user id, the token's subject")
    parser.add_argument("--admin", action="store_true", help="add the admin claim")
    parser.add_argument("--email", default=None, help="email claim")
    parser.add_argument("--account", default=None, help="accountId claim (pre-call tenant)")
    parser.add_argument(
        "--ttl", type=_positive_int, default=3600, help="lifetime in seconds (default 3600)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print a token for the requested user; return the process exit status."""
    args = _parser().parse_args(argv)
    settings = get_settings()
    if settings.auth_mode != "dev":
        print(
            f"Refusing to mint a token: VOICE_AUTH_MODE is {settings.auth_mode!r}, not 'dev'.",
            file=sys.stderr,
        )
        return 2
    verifier = build_dev_verifier(settings)
    token = verifier.mint(
        args.user,
        admin=args.admin,
        email=args.email,
        ttl_seconds=args.ttl,
        account_id=args.account,
    )
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
