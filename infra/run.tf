# The streaming voice-sessions service: long-lived WebSockets (VAD -> STT -> agent -> TTS).
# Deployed once its container exists: Cloud Build sets session_image only after building
# session/Dockerfile, so an empty image means "not yet" rather than a broken revision.
resource "google_cloud_run_v2_service" "sessions" {
  count = var.session_image == "" ? 0 : 1

  # Reached only through the front door (front_door.tf: /v1/sessions), like the functions.
  name                = "voice-sessions"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  deletion_protection = var.deletion_protection

  template {
    service_account = google_service_account.sessions.email
    # A WebSocket lives as long as its request: allow the maximum, one hour.
    timeout = "3600s"
    # Reconnects of the same client land on the instance that holds its session, when it can.
    session_affinity                 = true
    max_instance_request_concurrency = var.session_concurrency

    scaling {
      min_instance_count = var.session_min_instances
      max_instance_count = var.session_max_instances
    }

    containers {
      image = var.session_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "2"
          memory = "2Gi"
        }
        # Audio processing runs between requests' frames: keep the CPU allocated.
        cpu_idle = false
        # Extra CPU while an instance starts (imports, VAD and STT models), billed only for
        # the seconds it lasts.
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.app_environment
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = toset(var.session_secrets)
        content {
          name = local.provider_secrets[env.value].env
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.provider[env.value].secret_id
              version = "latest"
            }
          }
        }
      }

      # Ready once the speech models have loaded (/readyz answers 503 until then), so no
      # session lands on an instance that would make its first user wait for them.
      startup_probe {
        http_get {
          path = "/readyz"
          port = 8080
        }
        initial_delay_seconds = 2
        period_seconds        = 2
        timeout_seconds       = 2
        failure_threshold     = 60
      }

      liveness_probe {
        http_get {
          path = "/healthz"
          port = 8080
        }
        period_seconds    = 30
        failure_threshold = 3
      }
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_secret_manager_secret_iam_member.sessions,
  ]
}

# The load balancer calls without a Google identity, so anyone may invoke; ingress admits
# only the front door, and the service authenticates each WebSocket with a Firebase ID token
# in the app, like the public HTTP functions.
resource "google_cloud_run_v2_service_iam_member" "sessions_public" {
  count = length(google_cloud_run_v2_service.sessions)

  name     = google_cloud_run_v2_service.sessions[0].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}
