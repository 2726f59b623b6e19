locals {
  # Retry and rate policy per queue. Sync jobs get at most 3 retries (4 attempts), as the
  # catalog sync state machine expects; synthesis is the heavy, rate-limited one. Together
  # the queues dispatch at most what the tasks function serves at once (its max_instances
  # x concurrency in functions.json, 80): beyond it Cloud Run answers 429, which Cloud
  # Tasks retries with backoff like any failed dispatch (the offline check holds the sum to it).
  queue_policies = {
    default = {
      max_dispatches_per_second = 50
      max_concurrent_dispatches = 55
      max_attempts              = 5
      min_backoff               = "1s"
      max_backoff               = "300s"
    }
    synthesis = {
      max_dispatches_per_second = 10
      max_concurrent_dispatches = 20
      max_attempts              = 5
      min_backoff               = "5s"
      max_backoff               = "600s"
    }
    sync = {
      max_dispatches_per_second = 1
      max_concurrent_dispatches = 5
      max_attempts              = 4
      min_backoff               = "30s"
      max_backoff               = "900s"
    }
  }
}

resource "google_cloud_tasks_queue" "this" {
  for_each = local.queue_policies

  name     = local.queue_names[each.key]
  location = var.region

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts  = each.value.max_attempts
    min_backoff   = each.value.min_backoff
    max_backoff   = each.value.max_backoff
    max_doublings = 4
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.enabled]
}
