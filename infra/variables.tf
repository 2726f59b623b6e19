variable "project" {
  description = "Google Cloud project id; one project per environment."
  type        = string
}

variable "region" {
  description = "Region of the functions, Cloud Run, queues and buckets (a storage trigger needs its bucket in the function's region)."
  type        = string
  default     = "us-central1"
}

variable "environment" {
  description = "Deployment name used in labels, e.g. prod or staging. The app itself always runs with VOICE_ENVIRONMENT=production."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be lower-case letters, digits and dashes, at most 20 characters."
  }
}

variable "firestore_location" {
  description = "Firestore location: a region (us-central1) or a multi-region (nam5). Cannot change after creation."
  type        = string
  default     = "nam5"
}

variable "embedding_dimension" {
  description = "Dimension of voice_embeddings.embedding (the speaker encoder: 256); must equal the app's speaker-embedding dimension."
  type        = number
  default     = 256
}

variable "tts_providers" {
  description = "Text-to-speech providers the functions enable (VOICE_PROVIDERS). A provider with an API key also needs its secret listed for the voices, sync and tasks functions in functions.json, and a secret version."
  type        = string
  default     = "espeak,gcp"
}

variable "firebase_web_api_key" {
  description = "The Firebase project's Web API key (public: every web and app build ships it). The developer console at /console signs users in with it; empty, the console takes pasted ID tokens only."
  type        = string
  default     = ""
}

variable "source_dir" {
  description = "Repository root zipped into the functions' source archive (minus .gcloudignore) when source_archive_object is empty."
  type        = string
  default     = null
}

variable "source_archive_bucket" {
  description = "Bucket holding a prebuilt source archive; empty means the bucket this configuration creates."
  type        = string
  default     = ""
}

variable "source_archive_object" {
  description = "Object name of a prebuilt source archive; empty means zip source_dir and upload it."
  type        = string
  default     = ""
}

variable "artifact_repository" {
  description = "Artifact Registry (Docker) repository id for the platform's images."
  type        = string
  default     = "voice"
}

variable "session_image" {
  description = "Container image of the voice-sessions Cloud Run service, e.g. REGION-docker.pkg.dev/PROJECT/voice/voice-sessions:TAG. Empty: the service is not deployed (no session/Dockerfile yet)."
  type        = string
  default     = ""
}

variable "session_max_instances" {
  description = "Upper bound on voice-sessions instances."
  type        = number
  default     = 20
}

variable "session_concurrency" {
  description = "WebSocket sessions one voice-sessions instance serves at once."
  type        = number
  default     = 40
}

variable "session_secrets" {
  description = "Provider secrets (keys of local.provider_secrets) mounted into voice-sessions. Add a version to a secret before listing it here, or the revision fails to start."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect the Cloud Run service against terraform destroy."
  type        = bool
  default     = true
}

variable "min_instances" {
  description = "Warm instances per function name (default 0: scale to zero). One warm instance of a latency-critical function (synthesis, voice-models) removes its cold start for the first request after a quiet period and costs its idle rate around the clock: see README.md, \"What it costs at rest\"."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for count in values(var.min_instances) : count >= 0 && floor(count) == count])
    error_message = "min_instances values are whole numbers >= 0."
  }
}

variable "session_min_instances" {
  description = "Warm voice-sessions instances (default 0). Each costs 2 vCPU and 2 GiB around the clock, since the service keeps its CPU allocated."
  type        = number
  default     = 0

  validation {
    condition     = var.session_min_instances >= 0 && floor(var.session_min_instances) == var.session_min_instances
    error_message = "session_min_instances is a whole number >= 0."
  }
}

variable "domain" {
  description = "Domain of the front door's HTTPS base URL (e.g. api.example.com), whose A record must point at the front_door_ip output. Empty: <ip-with-dashes>.nip.io, which needs no DNS of your own (dev only)."
  type        = string
  default     = ""
}

variable "dns_zone" {
  description = "Name of a Cloud DNS managed zone in this project that holds var.domain; when set, Terraform keeps the domain's A record. Empty: manage DNS yourself."
  type        = string
  default     = ""
}

variable "allowed_source_ranges" {
  description = "Optional allow-list of client IP ranges (CIDR) for the front door; empty admits everyone. At most 10 (one Cloud Armor rule)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.allowed_source_ranges) <= 10 && alltrue([for range in var.allowed_source_ranges : can(cidrhost(range, 0))])
    error_message = "allowed_source_ranges takes at most 10 CIDR ranges."
  }
}

variable "rate_limit_per_minute" {
  description = "Requests per minute one client IP may send through the front door before Cloud Armor answers 429. Phones behind a carrier NAT share addresses: keep it generous."
  type        = number
  default     = 1200

  validation {
    condition     = var.rate_limit_per_minute >= 1
    error_message = "rate_limit_per_minute must be at least 1."
  }
}

variable "front_door_log_sample_rate" {
  description = "Share of front-door requests logged (0 to 1); request logs count toward Cloud Logging's ingestion."
  type        = number
  default     = 1

  validation {
    condition     = var.front_door_log_sample_rate >= 0 && var.front_door_log_sample_rate <= 1
    error_message = "front_door_log_sample_rate is between 0 and 1."
  }
}

variable "smoke_test_signers" {
  description = "Members (e.g. serviceAccount:PROJECT_NUMBER@cloudbuild.gserviceaccount.com, the identity Cloud Build runs as) allowed to sign the smoke test's Firebase custom tokens as the voice-smoke-test account."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "Email addresses the alert policies (monitoring.tf) notify. Empty: incidents open in the Cloud Monitoring console only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", email))])
    error_message = "alert_emails takes email addresses."
  }
}

variable "alert_server_error_ratio" {
  description = "Share of a service's responses that may be 5xx over 5 minutes before it pages (0 to 1)."
  type        = number
  default     = 0.05

  validation {
    condition     = var.alert_server_error_ratio > 0 && var.alert_server_error_ratio < 1
    error_message = "alert_server_error_ratio is between 0 and 1."
  }
}

variable "alert_p95_latency_ms" {
  description = "p95 latency targets in ms per Cloud Run service (a function's name, or voice-sessions), at most six; a service above its target for 10 minutes pages. Leave out services whose requests stream for long (POST /synthesize/stream, voice-sessions' WebSockets), whose latency is their length. Empty: no latency alert."
  type        = map(number)
  default = {
    "voice-models"           = 1000
    "voice-model-activation" = 1000
    voices                   = 1000
  }

  validation {
    condition     = length(var.alert_p95_latency_ms) <= 6 && alltrue([for ms in values(var.alert_p95_latency_ms) : ms > 0])
    error_message = "alert_p95_latency_ms takes at most six services, each with a target above 0 ms."
  }
}

variable "alert_queue_depth" {
  description = "Tasks that may wait in one Cloud Tasks queue for 15 minutes before it pages."
  type        = number
  default     = 500

  validation {
    condition     = var.alert_queue_depth >= 1
    error_message = "alert_queue_depth must be at least 1."
  }
}
