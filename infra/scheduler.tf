# Scheduled jobs: Cloud Scheduler POSTs /scheduler/jobs/{name}/fire on the tasks function,
# signed with an OIDC token of the tasks service account (the one identity the tasks
# function accepts for pushes); the function enqueues the job's task, de-duplicated on the
# schedule time. Each entry of scheduled_jobs.json: path, schedule (cron, UTC), description.
locals {
  # The jobs every capability declares in its tasks.py; tests/infra keeps the two equal.
  scheduled_jobs = jsondecode(file("${path.module}/scheduled_jobs.json")).jobs
  # The tasks function's URL: where jobs fire, and the OIDC audience it checks
  # (VOICE_TASKS_BASE_URL in main.tf).
  tasks_base_url = "https://${var.region}-${var.project}.cloudfunctions.net/tasks"
}

resource "google_cloud_scheduler_job" "this" {
  for_each = local.scheduled_jobs

  name             = each.key
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "320s"

  description = each.value.description

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = "${local.tasks_base_url}${each.value.path}"
    body        = base64encode(jsonencode({}))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.tasks_invoker.email
      audience              = local.tasks_base_url
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_cloud_run_v2_service_iam_member.tasks_invoker,
  ]
}
