# The front door: one HTTPS base URL for the apps. A global external Application Load
# Balancer (EXTERNAL_MANAGED) with a Google-managed certificate, HTTP -> HTTPS redirect and a
# Cloud Armor policy; a serverless NEG and a backend service per HTTP function and for
# voice-sessions; a URL map whose route rules come from front_door.json, which
# `python -m infra.front_door` generates from functions.FUNCTIONS with the local gateway's
# prefix semantics. Why a load balancer rather than API Gateway: README.md, "Front door".

locals {
  front_door = jsondecode(file("${path.module}/front_door.json"))

  # Every HTTP function has a backend; voice-sessions only once its image exists (run.tf).
  front_door_backends = {
    for name, backend in local.front_door.backends : name => backend
    if backend.kind == "function" || var.session_image != ""
  }

  # The Cloud Run service behind each backend: a gen-2 function runs as the Cloud Run
  # service of the same name. A backend without a service fails the plan on this lookup.
  front_door_cloud_run = merge(
    { for name in keys(local.http_functions) : name => google_cloudfunctions2_function.this[name].name },
    { for service in google_cloud_run_v2_service.sessions : service.name => service.name },
  )

  front_door_services = merge(
    { for name, backend in google_compute_backend_service.front_door : name => backend.id },
    { (local.front_door.health_backend) = google_compute_backend_bucket.health.id },
  )
  front_door_targets = concat(keys(local.front_door_backends), [local.front_door.health_backend])
  front_door_routes  = [for route in local.front_door.routes : route if contains(local.front_door_targets, route.backend)]
  front_door_tests   = [for test in local.front_door.tests : test if contains(local.front_door_targets, test.backend)]

  # With no domain of your own, <ip-with-dashes>.nip.io resolves to the load balancer's
  # address, which is enough for the managed certificate (nip.io is a third-party wildcard
  # DNS service: fine for dev, use your own domain in production).
  front_door_domain = var.domain != "" ? var.domain : "${replace(google_compute_global_address.front_door.address, ".", "-")}.nip.io"

  # Cloud Armor matches at most 10 ranges per rule; the variable's validation holds that.
  front_door_rate_limited_ranges = length(var.allowed_source_ranges) > 0 ? var.allowed_source_ranges : ["*"]
}

resource "google_compute_global_address" "front_door" {
  name = "voice-front-door"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_region_network_endpoint_group" "front_door" {
  for_each = local.front_door_backends

  name                  = "voice-${each.key}"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = local.front_door_cloud_run[each.key]
  }
}

# Serverless NEGs take no health check and no timeout: the function's or service's own
# request timeout applies (3600 s for voice-sessions' WebSockets).
resource "google_compute_backend_service" "front_door" {
  for_each = google_compute_region_network_endpoint_group.front_door

  name                  = "voice-${each.key}"
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  security_policy       = google_compute_security_policy.front_door.id

  backend {
    group = each.value.id
  }

  log_config {
    enable      = true
    sample_rate = var.front_door_log_sample_rate
  }
}

resource "google_compute_url_map" "front_door" {
  name            = "voice-front-door"
  description     = "Routes each API path prefix to its function (generated from front_door.json)."
  default_service = local.front_door_services[local.front_door.default_backend]

  host_rule {
    hosts        = ["*"]
    path_matcher = "api"
  }

  path_matcher {
    name            = "api"
    default_service = local.front_door_services[local.front_door.default_backend]

    dynamic "route_rules" {
      for_each = local.front_door_routes
      content {
        priority = route_rules.value.priority
        service  = local.front_door_services[route_rules.value.backend]

        dynamic "match_rules" {
          for_each = route_rules.value.match_rules
          content {
            full_path_match     = match_rules.value.full_path_match
            prefix_match        = match_rules.value.prefix_match
            path_template_match = match_rules.value.path_template_match
          }
        }
      }
    }
  }

  # Google evaluates these on every apply and refuses a URL map that routes one differently.
  dynamic "test" {
    for_each = local.front_door_tests
    content {
      host    = local.front_door_domain
      path    = test.value.path
      service = local.front_door_services[test.value.backend]
    }
  }
}

# The certificate's name follows its domain: a certificate in use cannot be replaced in place.
resource "google_compute_managed_ssl_certificate" "front_door" {
  name = "voice-front-door-${substr(sha256(local.front_door_domain), 0, 8)}"

  managed {
    domains = [local.front_door_domain]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "front_door" {
  name            = "voice-front-door"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_target_https_proxy" "front_door" {
  name             = "voice-front-door"
  url_map          = google_compute_url_map.front_door.id
  ssl_certificates = [google_compute_managed_ssl_certificate.front_door.id]
  ssl_policy       = google_compute_ssl_policy.front_door.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "voice-front-door-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.front_door.address
  port_range            = "443"
  target                = google_compute_target_https_proxy.front_door.id
}

# Plain HTTP only ever answers with a redirect to the same URL over HTTPS.
resource "google_compute_url_map" "front_door_redirect" {
  name        = "voice-front-door-redirect"
  description = "HTTP -> HTTPS."

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }

  depends_on = [google_project_service.enabled]
}

resource "google_compute_target_http_proxy" "front_door_redirect" {
  name    = "voice-front-door-redirect"
  url_map = google_compute_url_map.front_door_redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "voice-front-door-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.front_door.address
  port_range            = "80"
  target                = google_compute_target_http_proxy.front_door_redirect.id
}

# Evaluated before a request reaches any backend service. A per-client-IP rate limit
# (429 past var.rate_limit_per_minute); with allowed_source_ranges set, only those ranges
# match it and the last rule turns everyone else away.
resource "google_compute_security_policy" "front_door" {
  #checkov:skip=CKV_GCP_73:No Java runs behind the front door (Python functions and service), so Log4j lookups cannot reach a Log4j; a WAF rule for it would cost a rule and an evaluation per request for nothing.
  name        = "voice-front-door"
  description = "Rate limit per client IP; optional source allow-list."
  type        = "CLOUD_ARMOR"

  rule {
    action      = "throttle"
    priority    = 1000
    description = "Per-IP rate limit (the allow-list, when set, is this rule's match)."

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = local.front_door_rate_limited_ranges
      }
    }

    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"

      rate_limit_threshold {
        count        = var.rate_limit_per_minute
        interval_sec = 60
      }
    }
  }

  rule {
    action      = length(var.allowed_source_ranges) > 0 ? "deny(403)" : "allow"
    priority    = 2147483647
    description = "Everything the rules above did not match."

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

# /healthz: the front door answers it itself, as the local gateway does, from one static
# object. It proves the address, certificate, Cloud Armor and URL map serve; the smoke
# test's authenticated synthesis proves a function behind them does.
resource "google_storage_bucket" "front_door_static" {
  #checkov:skip=CKV_GCP_28:Holds one public object, the health answer {"status":"ok"}; a backend bucket serves only public objects.
  #checkov:skip=CKV_GCP_114:Public access prevention would stop the load balancer from reading the health object (see CKV_GCP_28).
  #checkov:skip=CKV_GCP_62:One object written by Terraform; Admin Activity audit logs record bucket and IAM changes.
  #checkov:skip=CKV_GCP_78:One object that Terraform rewrites; no history worth versioning.
  name                        = "${var.project}-voice-front-door"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "inherited"
  force_destroy               = true

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "healthz" {
  bucket        = google_storage_bucket.front_door_static.name
  name          = trimprefix(local.front_door.health_path, "/")
  content       = jsonencode({ status = "ok" })
  content_type  = "application/json"
  cache_control = "no-store"
}

resource "google_storage_bucket_iam_member" "front_door_static_public" {
  #checkov:skip=CKV_GCP_28:The bucket holds only the public health answer; the load balancer's backend bucket reads it anonymously.
  bucket = google_storage_bucket.front_door_static.name
  role   = "roles/storage.objectViewer"
  member = "allUsers"
}

resource "google_compute_backend_bucket" "health" {
  name        = "voice-front-door-health"
  description = "The front door's own /healthz answer."
  bucket_name = google_storage_bucket.front_door_static.name
  enable_cdn  = false
}

# With a Cloud DNS zone in this project, the domain's A record is kept here too.
resource "google_dns_record_set" "front_door" {
  count = var.dns_zone != "" && var.domain != "" ? 1 : 0

  managed_zone = var.dns_zone
  name         = "${var.domain}."
  type         = "A"
  ttl          = 300
  rrdatas      = [google_compute_global_address.front_door.address]
}
