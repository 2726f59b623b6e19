# Scheduled calls of HTTP functions, signed with an OIDC token of the scheduler invoker.
# Each entry: function (a key of functions.json, an HTTP function), path (the route the
# function serves), schedule (cron), optional time_zone, body (JSON object) and retries.
locals {
  scheduled_jobs = {
    # "voice-catalog-sync" = {
    #   function  = "voices"
    #   path      = "/voices/sync"
    #   schedule  = "0 3 * * *"
    #   time_zone = "Etc/UTC"
    #   body      = { trigger = "scheduled" }
    # }
  }
}

resource "google_cloud_scheduler_job" "this" {
  for_each = local.scheduled_jobs

  name             = each.key
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = try(each.value.time_zone, "Etc/UTC")
  attempt_deadline = "320s"

  retry_config {
    retry_count          = try(each.value.retries, 3)
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    # The run.app URI of the function's service: always an accepted OIDC audience.
    uri  = "${google_cloudfunctions2_function.this[each.value.function].service_config[0].uri}${each.value.path}"
    body = base64encode(jsonencode(try(each.value.body, {})))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = google_cloudfunctions2_function.this[each.value.function].service_config[0].uri
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_cloud_run_v2_service_iam_member.scheduler_invoker,
  ]
}
