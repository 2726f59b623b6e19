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
  description = "Dimension of voice_samples.embedding; must equal the app's speaker-embedding dimension."
  type        = number
  default     = 64
}

variable "tts_providers" {
  description = "Text-to-speech providers the functions enable (VOICE_PROVIDERS). A provider with an API key also needs its secret listed for the voices, sync and tasks functions in functions.json, and a secret version."
  type        = string
  default     = "espeak,gcp"
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
