# Shared names. Bucket and queue names reach the app as VOICE_* variables (shared/config.py),
# so they are defined once here.

locals {
  labels = {
    app         = "voice-platform"
    environment = var.environment
    managed-by  = "terraform"
  }

  # Logical bucket key (as used in functions.json) -> globally unique bucket name.
  bucket_names = {
    models  = "${var.project}-voice-models"
    audio   = "${var.project}-voice-audio"
    samples = "${var.project}-voice-samples"
    backups = "${var.project}-voice-backups"
  }

  # Logical queue key -> Cloud Tasks queue name (the Settings defaults).
  queue_names = {
    default   = "voice-default"
    synthesis = "voice-synthesis"
    sync      = "voice-sync"
  }

  # Every deployed process (functions and voice-sessions) gets the same view of the platform.
  # Apps reach it at the front door; Cloud Tasks and Cloud Scheduler call the tasks function
  # at its own URL (internal callers, which its ingress admits), outside the rate limit.
  app_environment = {
    VOICE_ENVIRONMENT           = "production"
    VOICE_STORE                 = "gcp"
    VOICE_BLOBS                 = "gcp"
    VOICE_TASKS                 = "gcp"
    VOICE_AUTH_MODE             = "firebase"
    VOICE_PROJECT               = var.project
    VOICE_REGION                = var.region
    VOICE_FIRESTORE_DATABASE    = google_firestore_database.main.name
    VOICE_MODELS_BUCKET         = google_storage_bucket.data["models"].name
    VOICE_AUDIO_BUCKET          = google_storage_bucket.data["audio"].name
    VOICE_SAMPLES_BUCKET        = google_storage_bucket.data["samples"].name
    VOICE_DEFAULT_QUEUE         = google_cloud_tasks_queue.this["default"].name
    VOICE_SYNTHESIS_QUEUE       = google_cloud_tasks_queue.this["synthesis"].name
    VOICE_SYNC_QUEUE            = google_cloud_tasks_queue.this["sync"].name
    VOICE_TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    VOICE_PUBLIC_BASE_URL       = "https://${local.front_door_domain}"
    VOICE_TASKS_BASE_URL        = "https://${var.region}-${var.project}.cloudfunctions.net/tasks"
    VOICE_PROVIDERS             = var.tts_providers
    VOICE_EMBEDDING_DIMENSION   = tostring(var.embedding_dimension)
    # The developer console's Firebase sign-in (/console): the Web API key is public.
    VOICE_CONSOLE_FIREBASE_API_KEY = var.firebase_web_api_key
    # The speaker encoder's weights ship inside the functions' source archive (cloudbuild.yaml,
    # infra/package_source.py): resemblyzer itself is never installed there (it pulls torch).
    VOICE_SPEAKER_ENCODER_WEIGHTS = "/workspace/vendor/resemblyzer/pretrained.pt"
  }
}
