resource "google_firestore_database" "main" {
  name        = "(default)"
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # terraform destroy leaves the data in place; deleting a database is a deliberate manual act.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.enabled]
}

locals {
  # Composite indexes the queries need (equality-only filters are served by Firestore's
  # automatic single-field indexes; an inequality or order on another field needs one).
  # Keys are only Terraform addresses. Each entry names the query it serves.
  composite_indexes = {
    # voice_model_cleanup: deleted_at == null, is_active == false, quality_score < x
    voice_models_cleanup = {
      collection = "voice_models"
      fields = [
        { field_path = "deleted_at", order = "ASCENDING" },
        { field_path = "is_active", order = "ASCENDING" },
        { field_path = "quality_score", order = "ASCENDING" },
      ]
    }
    # access_log: model_ids array-contains id, newest first
    access_log_by_model = {
      collection = "voice_model_access_log"
      fields = [
        { field_path = "model_ids", array_config = "CONTAINS" },
        { field_path = "at", order = "DESCENDING" },
      ]
    }
    # GET /files: the caller's audio files, newest first
    audio_files_by_user = {
      collection = "audio_files"
      fields = [
        { field_path = "user_id", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    # GET /synthesis/jobs: the caller's jobs, newest first
    synthesis_jobs_by_user = {
      collection = "synthesis_jobs"
      fields = [
        { field_path = "user_id", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    # GET /synthesis/jobs?status=...: status in (...), newest first
    synthesis_jobs_by_user_and_status = {
      collection = "synthesis_jobs"
      fields = [
        { field_path = "user_id", order = "ASCENDING" },
        { field_path = "status", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    # Pre-call cloning (seed 003). GET /precall/mappings: an account's live mappings, newest
    # first (the seed's account_id and created_at indexes).
    precall_mappings_by_account = {
      collection = "caller_voice_mapping"
      fields = [
        { field_path = "account_id", order = "ASCENDING" },
        { field_path = "deleted_at", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    # precall-clone-expiry: deleted_at == null, ttl_expires_at <= now (the seed's TTL index)
    precall_clone_cache_expiry = {
      collection = "voice_clone_cache"
      fields = [
        { field_path = "deleted_at", order = "ASCENDING" },
        { field_path = "ttl_expires_at", order = "ASCENDING" },
      ]
    }
    # GET /precall/analytics: an account's calls, clone attempts and ready events in a range
    precall_calls_by_account = {
      collection = "call_log"
      fields = [
        { field_path = "account_id", order = "ASCENDING" },
        { field_path = "call_started_at", order = "ASCENDING" },
      ]
    }
    precall_clone_log_by_account = {
      collection = "voice_clone_log"
      fields = [
        { field_path = "account_id", order = "ASCENDING" },
        { field_path = "created_at", order = "ASCENDING" },
      ]
    }
    precall_ready_events_by_account = {
      collection = "clone_ready_events"
      fields = [
        { field_path = "account_id", order = "ASCENDING" },
        { field_path = "created_at", order = "ASCENDING" },
      ]
    }
    # GET /samples: the caller's samples (or public ones), optionally of one status, newest first
    voice_samples_by_owner = {
      collection = "voice_samples"
      fields = [
        { field_path = "user_id", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    voice_samples_by_owner_and_status = {
      collection = "voice_samples"
      fields = [
        { field_path = "user_id", order = "ASCENDING" },
        { field_path = "status", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    voice_samples_public = {
      collection = "voice_samples"
      fields = [
        { field_path = "is_public", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    voice_samples_public_by_status = {
      collection = "voice_samples"
      fields = [
        { field_path = "is_public", order = "ASCENDING" },
        { field_path = "status", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    # samples.expire_uploads: samples still awaiting their upload, created before a cutoff
    voice_samples_awaiting_upload = {
      collection = "voice_samples"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "created_at", order = "ASCENDING" },
      ]
    }
    # GET /tasks/dead-letters?queue=...: newest first
    dead_letters_by_queue = {
      collection = "task_dead_letters"
      fields = [
        { field_path = "queue", order = "ASCENDING" },
        { field_path = "dead_at", order = "DESCENDING" },
      ]
    }
  }

  # Documents that expire: Firestore's TTL deletes them after expires_at.
  # voice_sessions: a session left resumable by an instance that then died (the service
  # deletes completed and expired ones itself, when it can).
  ttl_collections = toset(["cache_entries", "idempotency_keys", "rate_limits", "task_dedup", "task_effects", "task_runs", "voice_sessions"])
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  database    = google_firestore_database.main.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.field_path
      order        = try(fields.value.order, null)
      array_config = try(fields.value.array_config, null)
    }
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.ttl_collections

  database   = google_firestore_database.main.name
  collection = each.value
  field      = "expires_at"

  ttl_config {}
  # No query filters on expires_at: an empty index_config drops its single-field indexes,
  # as Firestore advises for TTL timestamps (they would hotspot on monotonic writes).
  index_config {}
}

# Speaker embeddings (voice_embeddings/{sampleId}): GET /samples/{id}/similar runs
# find_nearest by cosine distance pre-filtered on the owner (scope=own) or the public
# flag (scope=public); Firestore needs one vector index per pre-filter field.
resource "google_firestore_index" "voice_embeddings" {
  for_each = toset(["user_id", "is_public"])

  database    = google_firestore_database.main.name
  collection  = "voice_embeddings"
  query_scope = "COLLECTION"

  fields {
    field_path = each.value
    order      = "ASCENDING"
  }

  fields {
    field_path = "embedding"
    vector_config {
      dimension = var.embedding_dimension
      flat {}
    }
  }
}
