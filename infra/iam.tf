# One runtime service account per function, holding only what functions.json grants it.

resource "google_service_account" "function" {
  for_each = local.functions

  # Account ids take 6-30 characters: tests/infra keeps function names to 3-27.
  account_id   = "fn-${each.key}"
  display_name = "Voice function ${each.key}"
}

resource "google_service_account" "tasks_invoker" {
  account_id   = "voice-tasks-invoker"
  display_name = "Cloud Tasks and Cloud Scheduler -> voice functions (OIDC)"
}

resource "google_service_account" "sessions" {
  account_id   = "voice-sessions"
  display_name = "Cloud Run voice-sessions"
}

# Builds the functions from the source archive (Cloud Functions no longer defaults to a
# broad build identity in new projects).
resource "google_service_account" "builder" {
  account_id   = "voice-functions-builder"
  display_name = "Cloud Functions builds"
}

# What a function build does: write logs, push the function image, read the source archive.
resource "google_project_iam_member" "builder" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project
  role    = each.value
  member  = google_service_account.builder.member
}

# Source archives only: ours, and the staging copies Cloud Functions makes in its own
# gcf-v2-sources-* buckets; no read access to the data buckets.
resource "google_project_iam_member" "builder_source_reader" {
  project = var.project
  role    = "roles/storage.objectViewer"
  member  = google_service_account.builder.member

  condition {
    title       = "function-sources-only"
    description = "Read function source archives, nothing else."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.source.name}\") || resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")"
  }
}

locals {
  function_buckets = merge([
    for name, f in local.functions : {
      for bucket in f.buckets : "${name}/${bucket}" => { function = name, bucket = bucket }
    }
  ]...)
  function_queues = merge([
    for name, f in local.functions : {
      for queue in f.queues : "${name}/${queue}" => { function = name, queue = queue }
    }
  ]...)
  function_secrets = merge([
    for name, f in local.functions : {
      for secret in f.secrets : "${name}/${secret}" => { function = name, secret = secret }
    }
  ]...)
  # Functions that touch storage may hand out V4 signed URLs, which they sign through
  # IAM signBlob as themselves (no key files exist).
  signing_functions   = { for name, f in local.functions : name => f if length(f.buckets) > 0 }
  enqueuing_functions = { for name, f in local.functions : name => f if length(f.queues) > 0 }
}

# Firestore has no finer grain than the database; every function reads and writes documents.
resource "google_project_iam_member" "function_datastore" {
  for_each = local.functions

  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.function[each.key].member
}

resource "google_storage_bucket_iam_member" "function" {
  for_each = local.function_buckets

  bucket = google_storage_bucket.data[each.value.bucket].name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.function[each.value.function].member
}

resource "google_service_account_iam_member" "function_self_token_creator" {
  for_each = local.signing_functions

  service_account_id = google_service_account.function[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.function[each.key].member
}

resource "google_cloud_tasks_queue_iam_member" "function_enqueuer" {
  for_each = local.function_queues

  name     = google_cloud_tasks_queue.this[each.value.queue].name
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.function[each.value.function].member
}

# Creating a task that carries an OIDC token of the tasks invoker means acting as it.
resource "google_service_account_iam_member" "function_acts_as_tasks_invoker" {
  for_each = local.enqueuing_functions

  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function[each.key].member
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each = local.function_secrets

  secret_id = google_secret_manager_secret.provider[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.function].member
}

# Storage-triggered functions: Cloud Storage publishes to Pub/Sub behind Eventarc, and the
# function's account receives the events.
data "google_storage_project_service_account" "gcs" {
  count = length(local.storage_functions) > 0 ? 1 : 0
}

resource "google_project_iam_member" "gcs_pubsub_publisher" {
  count = length(local.storage_functions) > 0 ? 1 : 0

  project = var.project
  role    = "roles/pubsub.publisher"
  member  = data.google_storage_project_service_account.gcs[0].member
}

resource "google_project_iam_member" "function_event_receiver" {
  for_each = local.storage_functions

  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.function[each.key].member
}

# voice-sessions: documents, the audio it synthesises, and the provider keys it is given.
resource "google_project_iam_member" "sessions_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.sessions.member
}

resource "google_storage_bucket_iam_member" "sessions_audio" {
  bucket = google_storage_bucket.data["audio"].name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.sessions.member
}

resource "google_secret_manager_secret_iam_member" "sessions" {
  for_each = toset(var.session_secrets)

  secret_id = google_secret_manager_secret.provider[each.value].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.sessions.member
}

# The deploy's smoke test signs in as a user with a Firebase custom token signed as this
# account (no key file: the signers use IAM signJwt). It holds no roles of its own.
resource "google_service_account" "smoke_test" {
  account_id   = "voice-smoke-test"
  display_name = "Signs the smoke test's Firebase custom tokens"
}

resource "google_service_account_iam_member" "smoke_test_signer" {
  for_each = toset(var.smoke_test_signers)

  service_account_id = google_service_account.smoke_test.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}
