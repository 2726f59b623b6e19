# A development environment: everything scales to zero, no domain of its own.
#   gcloud builds submit --config=cloudbuild.yaml --ignore-file=infra/build.gcloudignore \
#     --substitutions=_ENVIRONMENT=dev,_REGION=us-central1,_FIREBASE_API_KEY=KEY
# project and region come from the build's substitutions (or -var), not from this file.

# Empty: the front door answers at https://<ip-with-dashes>.nip.io (no DNS to set up).
domain = ""

# No warm instances: the first request after a quiet period pays a cold start.
min_instances         = {}
session_min_instances = 0

tts_providers = "espeak"

# Optional: only these client ranges get through the front door (at most 10).
allowed_source_ranges = []
rate_limit_per_minute = 600

front_door_log_sample_rate = 1

# No latency alerts in dev (three fewer alert conditions: $4.50 a month); dead letters,
# server errors, queue backlogs and an unreachable front door still open incidents.
# alert_emails = [] by default: incidents show in the console only.
alert_p95_latency_ms = {}

# A dev environment may be torn down with terraform destroy.
deletion_protection = false
