# Production: your own domain, one warm instance for the latency-critical functions.
#   deploy through the approval-gated trigger in infra/README.md ("Deploying"), or
#   gcloud builds submit --config=cloudbuild.yaml --ignore-file=infra/build.gcloudignore \
#     --substitutions=_ENVIRONMENT=prod,_REGION=us-central1,_FIREBASE_API_KEY=KEY
# project and region come from the build's substitutions (or -var), not from this file.

# Replace with your API's domain; point its A record at the front_door_ip output (or name
# a Cloud DNS zone of this project that holds it, and Terraform keeps the record).
domain   = "api.example.com"
dns_zone = ""

# One warm instance each for the calls a user waits on after a quiet period; see
# "What it costs at rest" in infra/README.md for the price of each.
min_instances = {
  synthesis      = 1
  "voice-models" = 1
}
session_min_instances = 0

tts_providers = "espeak,gcp"

allowed_source_ranges = []
rate_limit_per_minute = 1200

front_door_log_sample_rate = 0.5

deletion_protection = true
