locals {
  # The gcp text-to-speech provider (shared/providers/gcp.py) calls Cloud Text-to-Speech as
  # the functions' and voice-sessions' own accounts: Google refuses every call (403
  # SERVICE_DISABLED) while the API is off in the project.
  google_tts = contains([for name in split(",", var.tts_providers) : trimspace(name)], "gcp")

  services = toset(concat([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "compute.googleapis.com", # the front door's load balancer and Cloud Armor
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # signBlob, for V4 signed URLs without a key file
    "logging.googleapis.com",
    "monitoring.googleapis.com", # alert policies and their notification channels
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    ],
    var.dns_zone != "" ? ["dns.googleapis.com"] : [],
    local.google_tts ? ["texttospeech.googleapis.com"] : [],
  ))
}

resource "google_project_service" "enabled" {
  for_each = local.services

  service = each.value
  # Other workloads in the project may use these APIs too: never switch them off on destroy.
  disable_on_destroy = false
}

# The voice-sessions image lives here; Cloud Build pushes to it before the full apply.
resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Holds only our own built images, no customer data; Google-managed encryption is enough and CMEK would add a KMS key to operate.
  repository_id = var.artifact_repository
  location      = var.region
  format        = "DOCKER"
  description   = "Container images of the voice platform."

  depends_on = [google_project_service.enabled]
}
