# State lives in a GCS bucket made once by hand (see README); bucket and prefix are given at
# init time: terraform init -backend-config=bucket=BUCKET -backend-config=prefix=voice/ENV.
# Kept in its own file so infra/check.sh can load the configuration without a backend.
terraform {
  backend "gcs" {}
}
