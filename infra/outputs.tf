output "function_urls" {
  description = "HTTPS URL of each function (storage-triggered ones too, though only Eventarc may call them)."
  value       = { for name, f in google_cloudfunctions2_function.this : name => f.url }
}

output "bucket_names" {
  description = "Bucket of each kind of data."
  value       = { for key, b in google_storage_bucket.data : key => b.name }
}

output "queue_names" {
  description = "Cloud Tasks queue of each kind of work."
  value       = { for key, q in google_cloud_tasks_queue.this : key => q.name }
}

output "sessions_url" {
  description = "URL of the voice-sessions Cloud Run service (use wss:// for WebSockets)."
  value       = one(google_cloud_run_v2_service.sessions[*].uri)
}

output "tasks_invoker_email" {
  description = "Service account whose OIDC token Cloud Tasks sends to task handlers."
  value       = google_service_account.tasks_invoker.email
}

output "image_repository" {
  description = "Artifact Registry path for container images."
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}
