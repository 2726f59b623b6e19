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
  # Composite indexes the queries need. Single-field equality filters (users where email ==)
  # are served by Firestore's automatic single-field indexes; a query that filters on one
  # field and orders by another needs an entry here. Keys are only Terraform addresses.
  composite_indexes = {
    users_by_email = {
      collection = "users"
      fields = [
        { field_path = "email", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  database    = google_firestore_database.main.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }
}

# Nearest-neighbour search over speaker embeddings (find_nearest with COSINE distance).
# The distance measure is chosen per query; the index fixes the dimension, which must match
# the embeddings the app writes (var.embedding_dimension, passed to the app as well).
resource "google_firestore_index" "voice_samples_embedding" {
  database    = google_firestore_database.main.name
  collection  = "voice_samples"
  query_scope = "COLLECTION"

  fields {
    field_path = "embedding"
    vector_config {
      dimension = var.embedding_dimension
      flat {}
    }
  }
}
