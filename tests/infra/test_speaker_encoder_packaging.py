"""The speaker encoder's weights reach Cloud Functions inside the source archive.

Cloud Functions installs ``requirements.txt`` with plain pip, so resemblyzer (whose
declared dependencies pull torch) must stay out of it; the build downloads its wheel with
``pip download --no-deps`` and the packager puts ``pretrained.pt`` into the archive where
``VOICE_SPEAKER_ENCODER_WEIGHTS`` (infra/main.tf) tells the functions to look. These tests
run the packager with the build step's own arguments on a wheel holding the installed
weights, and check the archive holds them and the encoder loads them from there. A deploy
without Cloud Build (Terraform zipping the tree itself) copies them into the tree first
with ``infra/vendor_weights.py``; packaging without them fails and writes nothing.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in requirements-dev

from infra import package_source
from shared.audio import speaker_encoder
from shared.audio.speaker_encoder import WEIGHTS_SHA256, SpeakerEncoder, weights_path

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = "/workspace/"  # where Cloud Build checks out the source, and Functions runs it


def steps() -> dict[str, dict]:
    build = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
    return {step["id"]: step for step in build["steps"]}


def script(step: dict) -> str:
    return " ".join(str(arg) for arg in step["args"]).replace("\\\n", " ")


def from_wheel_arguments() -> list[str]:
    words = shlex.split(script(steps()["package-source"]))
    start = words.index("--from-wheel")
    return words[start + 1 : start + 5]


def weights_setting() -> str:
    main_tf = (REPO / "infra" / "main.tf").read_text()
    match = re.search(r'VOICE_SPEAKER_ENCODER_WEIGHTS\s*=\s*"([^"]+)"', main_tf)
    assert match, "infra/main.tf must name the weights for the functions"
    return match.group(1)


def test_resemblyzer_stays_out_of_what_cloud_functions_installs():
    requirements = (REPO / "requirements.txt").read_text().lower()
    assert "resemblyzer" not in requirements
    assert not re.search(r"^torch", requirements, re.MULTILINE)
    assert "resemblyzer==0.1.4" in (REPO / "requirements-nodeps.txt").read_text()


def test_the_build_downloads_the_pinned_wheel_without_dependencies_before_packaging():
    fetch = script(steps()["fetch-speaker-encoder"])
    assert "pip download --no-deps" in fetch
    assert "resemblyzer==0.1.4" in fetch
    assert "fetch-speaker-encoder" in steps()["package-source"]["waitFor"]
    wheel, member, name, sha256 = from_wheel_arguments()
    assert wheel.startswith("/workspace/wheels/")
    assert member == "resemblyzer/pretrained.pt"
    assert sha256 == WEIGHTS_SHA256
    assert WORKSPACE + name == weights_setting()


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A wheel laid out as resemblyzer's, holding the installed weights."""
    path = tmp_path / "wheels" / "Resemblyzer-0.1.4-py3-none-any.whl"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("resemblyzer/__init__.py", "")
        archive.write(weights_path(), "resemblyzer/pretrained.pt")
    return path


def package(
    tmp_path: Path, arguments: list[str], listed: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "main.py").write_text("print('hello')\n")
    listing = tmp_path / "files.txt"
    listing.write_text("".join(f"{name}\n" for name in ("main.py", *listed)))
    return subprocess.run(
        [sys.executable, str(REPO / "infra" / "package_source.py"), "--files", str(listing),
         "--root", str(tmp_path), "--out", str(tmp_path / "source.zip"), *arguments],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_archive_holds_the_weights_where_the_functions_look_and_they_load(
    tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch
):
    _, member, name, sha256 = from_wheel_arguments()

    done = package(tmp_path, ["--from-wheel", str(wheel), member, name, sha256])

    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "source.zip") as archive:
        assert sorted(archive.namelist()) == ["main.py", name]
        archive.extractall(tmp_path / "workspace")
    unpacked = tmp_path / "workspace" / name
    assert hashlib.sha256(unpacked.read_bytes()).hexdigest() == WEIGHTS_SHA256
    monkeypatch.setattr(speaker_encoder, "_loaded", {})
    assert isinstance(speaker_encoder.default_encoder(unpacked), SpeakerEncoder)


def test_other_weights_are_refused(tmp_path: Path):
    wheel = tmp_path / "Resemblyzer-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("resemblyzer/pretrained.pt", b"not the trained network")
    _, member, name, sha256 = from_wheel_arguments()

    done = package(tmp_path, ["--from-wheel", str(wheel), member, name, sha256])

    assert done.returncode == 1
    assert "SHA-256" in done.stderr
    assert not (tmp_path / "source.zip").exists()


def test_the_same_inputs_give_the_same_archive(tmp_path: Path, wheel: Path):
    _, member, name, sha256 = from_wheel_arguments()
    extra = {name: package_source.wheel_member(wheel, member, sha256)}
    (tmp_path / "main.py").write_text("x = 1\n")
    first = package_source.build_archive(tmp_path, ["main.py"], extra)
    assert package_source.build_archive(tmp_path, ["main.py"], extra) == first
    with pytest.raises(ValueError, match="inside the archive"):
        package_source.build_archive(tmp_path, ["main.py"], {"../x": b"1"})


def test_firestore_indexes_the_vectors_searches_filter_on_at_the_encoders_size():
    from shared.audio.speaker_encoder import EMBEDDING_SIZE
    from shared.samples.repository import EMBEDDING_FIELD, VOICE_EMBEDDINGS, scope_filters

    variables = (REPO / "infra" / "variables.tf").read_text()
    block = variables[variables.index('variable "embedding_dimension"') :]
    assert re.search(r"default\s*=\s*(\d+)", block).group(1) == str(EMBEDDING_SIZE)
    firestore = (REPO / "infra" / "firestore.tf").read_text()
    index = firestore[firestore.index('resource "google_firestore_index" "voice_embeddings"') :]
    assert f'collection  = "{VOICE_EMBEDDINGS}"' in index
    assert f'field_path = "{EMBEDDING_FIELD}"' in index
    prefiltered = set(
        re.search(r"toset\(\[([^\]]*)\]\)", index).group(1).replace('"', "").split(", ")
    )
    assert prefiltered == {
        f.field
        for scope in ("own", "public")
        for f in scope_filters(scope, "u")  # type: ignore[arg-type]
    }


def run_script(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "infra" / name), *arguments],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_packaging_without_the_weights_fails_loudly_and_writes_nothing(tmp_path: Path):
    done = package(tmp_path, [])

    assert done.returncode == 1
    assert "vendor/resemblyzer/pretrained.pt is missing" in done.stderr
    assert "infra/vendor_weights.py" in done.stderr
    assert not (tmp_path / "source.zip").exists()


def test_a_deploy_without_cloud_build_copies_the_weights_into_the_tree_first(
    tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch
):
    name = weights_setting().removeprefix(WORKSPACE)
    from_installed = run_script("vendor_weights.py", "--root", str(tmp_path / "installed"))
    from_wheel = run_script("vendor_weights.py", "--root", str(tmp_path), "--wheel", str(wheel))

    assert from_installed.returncode == 0, from_installed.stderr
    assert from_wheel.returncode == 0, from_wheel.stderr
    assert from_wheel.stdout.strip() == str(tmp_path / name)
    for root in (tmp_path, tmp_path / "installed"):
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == WEIGHTS_SHA256
    done = package(tmp_path, [], listed=(name,))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "source.zip") as archive:
        assert sorted(archive.namelist()) == ["main.py", name]
        archive.extractall(tmp_path / "workspace")
    monkeypatch.setattr(speaker_encoder, "_loaded", {})
    loaded = speaker_encoder.default_encoder(tmp_path / "workspace" / name)
    assert isinstance(loaded, SpeakerEncoder)


def test_vendoring_refuses_other_weights(tmp_path: Path):
    wheel = tmp_path / "Resemblyzer-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("resemblyzer/pretrained.pt", b"not the trained network")

    done = run_script("vendor_weights.py", "--root", str(tmp_path), "--wheel", str(wheel))

    assert done.returncode == 1
    assert "SHA-256" in done.stderr
    assert not (tmp_path / "vendor").exists()


def test_terraform_zips_the_tree_only_when_it_holds_the_weights_where_the_functions_look():
    name = weights_setting().removeprefix(WORKSPACE)
    assert {name: WEIGHTS_SHA256} == package_source.REQUIRED_FILES
    storage = (REPO / "infra" / "storage.tf").read_text()
    assert f'speaker_encoder_weights        = "{name}"' in storage
    assert f'speaker_encoder_weights_sha256 = "{WEIGHTS_SHA256}"' in storage
    archive = storage[storage.index('data "archive_file" "source"') :]
    archive = archive[: archive.index("\n}\n")]
    assert (
        'condition     = try(filesha256("${local.source_root}/${local.speaker_encoder_weights}"),'
        ' "") == local.speaker_encoder_weights_sha256'
    ) in archive
    assert "infra/vendor_weights.py" in archive
    # Terraform zips the tree minus .gcloudignore, which must keep the copied weights.
    ignored = (REPO / ".gcloudignore").read_text().split()
    assert not {"vendor", "/vendor", "*.pt", "pretrained.pt"} & set(ignored)
    assert "/vendor/" in (REPO / ".gitignore").read_text().split()
