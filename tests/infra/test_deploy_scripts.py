"""The deploy's own scripts: the source archive packager and the smoke test.

The smoke test runs against the local gateway started as ``make run`` starts it, which
serves the same routes as the front door (``/healthz``, ``POST /synthesize``, signed audio
downloads); Identity Toolkit and ``gcloud`` are stand-ins recording what they were asked.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from infra import package_source, smoke_test, vendor_weights
from tests.support.fake_http import FakeHttpServer, json_response
from tests.support.processes import free_port, http_ok

REPO = Path(__file__).resolve().parents[2]


def _tree(root: Path) -> list[str]:
    (root / "pkg").mkdir()
    (root / "main.py").write_text("from pkg import x\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "x.py").write_text("x = 1\n")
    return ["pkg/x.py", "main.py", "pkg/__init__.py", ""]


def test_the_same_files_give_the_same_archive_and_name(tmp_path: Path) -> None:
    listed = _tree(tmp_path)

    first = package_source.build_archive(tmp_path, listed)
    os.utime(tmp_path / "main.py", (1, 1))
    second = package_source.build_archive(tmp_path, list(reversed(listed)))

    assert first == second
    assert package_source.archive_name(first).startswith("functions-source-")
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == [
        "main.py",
        "pkg/__init__.py",
        "pkg/x.py",
    ]


def test_a_changed_file_changes_the_name(tmp_path: Path) -> None:
    listed = _tree(tmp_path)
    before = package_source.archive_name(package_source.build_archive(tmp_path, listed))

    (tmp_path / "pkg" / "x.py").write_text("x = 2\n")

    assert package_source.archive_name(package_source.build_archive(tmp_path, listed)) != before


@pytest.mark.parametrize("listed", [["../secret"], ["/etc/passwd"], []])
def test_paths_outside_the_root_or_nothing_are_refused(tmp_path: Path, listed: list[str]) -> None:
    with pytest.raises(ValueError, match=r"source root|no files"):
        package_source.build_archive(tmp_path, listed)


def test_the_packager_cli_writes_the_archive_and_prints_its_name(tmp_path: Path) -> None:
    listing = tmp_path / "files.txt"
    weights = vendor_weights.vendor_weights(tmp_path, vendor_weights.installed_weights())
    listed = [*_tree(tmp_path), weights.relative_to(tmp_path).as_posix()]
    listing.write_text("\n".join(listed))

    done = subprocess.run(
        [sys.executable, str(REPO / "infra" / "package_source.py"), "--files", str(listing),
         "--out", str(tmp_path / "out.zip"), "--root", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip

    archive = (tmp_path / "out.zip").read_bytes()
    assert done.stdout.strip() == package_source.archive_name(archive)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """``python -m local.gateway`` on a free port, and the environment it runs with."""
    data = tmp_path_factory.mktemp("smoke")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_") and k != "K_SERVICE"}
    env |= {
        "VOICE_DATA_DIR": str(data / "data"),
        "VOICE_GATEWAY_PORT": str(port),
        "VOICE_SESSIONS_PORT": str(free_port()),
        "VOICE_PUBLIC_BASE_URL": base,
    }
    with (data / "gateway.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.gateway"], cwd=REPO, env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 60
        while not http_ok(f"{base}/healthz"):
            assert process.poll() is None, (data / "gateway.log").read_text()
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.1)
        yield base, env
    finally:
        process.terminate()
        process.wait(10)


def mint(env: dict[str, str], user: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "local.token", "--user", user],
        cwd=REPO, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_smoke_test_passes_against_a_working_deployment(
    gateway: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    base, env = gateway

    status = smoke_test.main(["--base-url", base + "/", "--token", mint(env, "smoke-test")])

    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert "ok: POST /synthesize" in out


def test_smoke_test_fails_on_a_rejected_token(
    gateway: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = gateway

    status = smoke_test.main(["--base-url", base, "--token", "not-a-token"])

    assert status == 1
    assert "POST /synthesize: HTTP 401" in capsys.readouterr().err


def test_smoke_test_gives_up_when_health_never_answers(capsys: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{free_port()}"

    status = smoke_test.main(["--base-url", base, "--token", "t", "--wait", "0.3"])

    assert status == 1
    assert "/healthz never answered ok" in capsys.readouterr().err


def test_smoke_test_signs_in_with_a_custom_token_signed_through_iam(
    gateway: tuple[str, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, env = gateway
    id_token = mint(env, "smoke-test")
    # gcloud iam service-accounts sign-jwt CLAIMS OUT --iam-account=SA, recorded.
    gcloud = tmp_path / "gcloud"
    gcloud.write_text(
        "#!/bin/sh\n"
        f'cp "$4" {tmp_path}/claims.json\necho "$6" > {tmp_path}/argv\n'
        'printf "signed.custom.token" > "$5"\n'
    )
    gcloud.chmod(0o755)

    def identity_toolkit(request: Request) -> Response:
        if request.get_json() == {"token": "signed.custom.token", "returnSecureToken": True}:
            return json_response({"idToken": id_token})
        return json_response({"error": {"message": "INVALID_CUSTOM_TOKEN"}}, 400)

    with FakeHttpServer(identity_toolkit) as toolkit:
        status = smoke_test.main(
            ["--base-url", base, "--sign-as", "smoke@p.iam.gserviceaccount.com",
             "--firebase-api-key", "web-key", "--gcloud", str(gcloud),
             "--identity-toolkit", toolkit.url],
        )  # fmt: skip
        exchange = toolkit.requests[0]

    assert status == 0, capsys.readouterr()
    assert exchange.path == "/v1/accounts:signInWithCustomToken"
    assert exchange.args == {"key": "web-key"}
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert claims["iss"] == claims["sub"] == "smoke@p.iam.gserviceaccount.com"
    assert claims["aud"] == smoke_test.SIGN_IN_AUDIENCE
    assert (claims["uid"], claims["exp"] - claims["iat"]) == ("smoke-test", 600)
    assert (tmp_path / "argv").read_text().strip() == (
        "--iam-account=smoke@p.iam.gserviceaccount.com"
    )


def test_smoke_test_needs_a_way_to_sign_in(capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke_test.main(["--base-url", "https://x", "--sign-as", "sa@p"]) == 2
    assert "--firebase-api-key" in capsys.readouterr().err


SAMPLE_TREE = [
    "main.py",
    "functions/users.py",
    "shared/config.py",
    "infra/main.tf",
    "infra/session.auto.tfvars",
    "infra/.build/functions-source.zip",
    "tests/infra/test_x.py",
    "local/gateway.py",
    "session/Dockerfile",
    "cloudbuild.yaml",
    "requirements.txt",
    ".venv/bin/python",
    ".venv-infra/bin/python",
    ".env",
    ".data/store.sqlite",
    "shared/__pycache__/config.cpython-311.pyc",
]


def _listed_by_gcloud(tmp_path: Path, ignore_rules: str) -> set[str]:
    """Return what gcloud uploads from a sample tree under ``ignore_rules``."""
    if shutil.which("gcloud") is None:
        pytest.skip("gcloud is not installed")
    for name in SAMPLE_TREE:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".gcloudignore").write_text(ignore_rules)
    done = subprocess.run(
        ["gcloud", "meta", "list-files-for-upload", str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def test_a_submitted_build_uploads_the_whole_repository_but_local_state(tmp_path: Path) -> None:
    listed = _listed_by_gcloud(tmp_path, (REPO / "infra" / "build.gcloudignore").read_text())

    assert {"infra/main.tf", "tests/infra/test_x.py", "cloudbuild.yaml", ".gcloudignore"} <= listed
    assert {"session/Dockerfile", "local/gateway.py", "main.py"} <= listed
    assert not {name for name in listed if name.startswith((".venv", ".env", ".data"))}
    assert not {name for name in listed if name.endswith((".pyc", ".zip", ".auto.tfvars"))}


def test_the_functions_archive_leaves_out_what_no_function_runs(tmp_path: Path) -> None:
    listed = _listed_by_gcloud(tmp_path, (REPO / ".gcloudignore").read_text())

    assert listed == {"main.py", "functions/users.py", "shared/config.py", "requirements.txt"}


def test_signing_gives_up_once_iam_keeps_refusing(tmp_path: Path) -> None:
    gcloud = tmp_path / "gcloud"
    gcloud.write_text("#!/bin/sh\necho PERMISSION_DENIED >&2\nexit 1\n")
    gcloud.chmod(0o755)

    with pytest.raises(smoke_test.SmokeTestFailed, match="PERMISSION_DENIED"):
        smoke_test.sign_custom_token("sa@p", "smoke-test", str(gcloud), retry_seconds=0.2)
