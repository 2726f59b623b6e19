output "base_url" {
  description = "The apps' one HTTPS base URL (the front door). Its certificate turns ACTIVE some minutes after the domain resolves to front_door_ip."
  value       = "https://${local.front_door_domain}"
}

output "front_door_ip" {
  description = "Address of the front door: point the domain's A record here."
  value       = google_compute_global_address.front_door.address
}

output "front_door_certificate" {
  description = "Name of the managed certificate (gcloud compute ssl-certificates describe NAME --global)."
  value       = google_compute_managed_ssl_certificate.front_door.name
}

output "smoke_test_service_account" {
  description = "Account whose signed custom tokens the deploy's smoke test signs in with."
  value       = google_service_account.smoke_test.email
}

output "function_urls" {
  description = "Each function's own URL; ingress admits only Google-internal callers there (Cloud Tasks, Cloud Scheduler, Eventarc). Apps use base_url."
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
  description = "The voice-sessions Cloud Run service's own URL (ingress admits only the front door: apps use wss://DOMAIN/v1/sessions)."
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
