# Alerting: what pages an operator, and what each page asks them to do.
#
# Every function is a Cloud Run service of the same name (Cloud Functions 2nd gen), and so is
# voice-sessions: the Cloud Run request metrics cover them all. Notifications go to the email
# addresses of var.alert_emails; with none, the policies still open incidents in the console.

locals {
  alert_channels = [for channel in google_monitoring_notification_channel.email : channel.id]
  # Every Cloud Run service in the project (one project per environment, variables.tf):
  # each function, and voice-sessions.
  run_filter = "resource.type=\"cloud_run_revision\""
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  display_name = "Voice platform alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.enabled]
}

# Every dead letter is logged once, as an error with event "task.dead_lettered"
# (shared/tasks/execution.py record_dead_letter; a test checks the two agree).
resource "google_logging_metric" "dead_letters" {
  name   = "voice/dead_lettered_tasks"
  filter = "${local.run_filter} AND jsonPayload.event=\"task.dead_lettered\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Voice platform: dead-lettered tasks"

    labels {
      key         = "task_type"
      value_type  = "STRING"
      description = "The dead task's type, such as samples.train or synthesis.chunk."
    }
    labels {
      key         = "reason"
      value_type  = "STRING"
      description = "Why it died: gave_up, exhausted, malformed_payload, unknown_task_type, malformed_envelope."
    }
  }

  label_extractors = {
    task_type = "EXTRACT(jsonPayload.taskType)"
    reason    = "EXTRACT(jsonPayload.reason)"
  }

  depends_on = [google_project_service.enabled]
}

# A new log-based metric is not at once a metric an alert policy may name: Cloud Monitoring
# answers 404 "Cannot find metric(s) that match type ... it could take up to 10 minutes to
# become available" (hashicorp/terraform-provider-google#11102, still open; the provider
# does not retry it), which failed the first apply of every new project. Created once with
# the metric (and again if it is replaced), so later applies do not wait.
resource "time_sleep" "dead_letters_metric" {
  create_duration = "600s"

  triggers = {
    metric = google_logging_metric.dead_letters.id
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "Voice platform: a task was dead-lettered"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "Dead-lettered tasks in 5 minutes > 0"

    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.dead_letters.name}\" AND ${local.run_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.task_type", "metric.label.reason"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A background task will not run again by itself: its retries ran out, its handler gave
      up, or its payload could not be read. Nothing was lost: the task is kept as a dead letter.

      1. List them with an admin token: `GET /tasks/dead-letters` (each names its task type,
         reason, attempts and last error). The function's logs hold the stack traces.
      2. Fix the cause (a provider outage, a bad deploy, a missing secret).
      3. Run a letter again: `POST /tasks/dead-letters/{taskId}/retry`.
    EOT
  }

  depends_on = [google_project_service.enabled, time_sleep.dead_letters_metric]
}

resource "google_monitoring_alert_policy" "server_errors" {
  display_name          = "Voice platform: server errors"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "A service's 5xx share of its responses > ${var.alert_server_error_ratio} for 5 minutes"

    condition_threshold {
      filter             = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter} AND metric.label.response_code_class=\"5xx\""
      denominator_filter = "metric.type=\"run.googleapis.com/request_count\" AND ${local.run_filter}"
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_server_error_ratio
      duration           = "300s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A service of the voice platform is answering with 5xx. Bad input never does (it gets a
      4xx), so this is ours or a provider's: a 503 names an unavailable provider or store, a
      500 an unhandled error, logged with its stack trace and the request's requestId.

      1. Open the service's logs (Cloud Run, the service named in this incident) at severity
         ERROR and up.
      2. A provider outage shows as 503 with Retry-After; clients retry. A deploy that broke
         the service: roll back (infra/README.md, "Roll back").
    EOT
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "latency" {
  # One condition per service named in var.alert_p95_latency_ms (at most six per policy).
  count = length(var.alert_p95_latency_ms) > 0 ? 1 : 0

  display_name          = "Voice platform: slow responses"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  dynamic "conditions" {
    for_each = var.alert_p95_latency_ms

    content {
      display_name = "${conditions.key}: p95 latency > ${conditions.value} ms for 10 minutes"

      condition_threshold {
        filter          = "metric.type=\"run.googleapis.com/request_latencies\" AND ${local.run_filter} AND resource.label.service_name=\"${conditions.key}\""
        comparison      = "COMPARISON_GT"
        threshold_value = conditions.value
        duration        = "600s"

        aggregations {
          alignment_period     = "300s"
          per_series_aligner   = "ALIGN_PERCENTILE_95"
          cross_series_reducer = "REDUCE_MAX"
          group_by_fields      = ["resource.label.service_name"]
        }
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      Requests to the service named in this incident take longer than their target. Look
      first at its instance count against its maximum (requests queue when it is reached),
      then at cold starts (infra/README.md, "Cold starts: warm instances and CPU boost") and
      at the store and providers it calls (each request's log line carries its
      httpRequest.latency and requestId).
    EOT
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "queue_backlog" {
  display_name          = "Voice platform: task queue backlog"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "Tasks waiting in a queue > ${var.alert_queue_depth} for 15 minutes"

    condition_threshold {
      filter          = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND resource.type=\"cloud_tasks_queue\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_queue_depth
      duration        = "900s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.queue_id"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      Background work (synthesis jobs, training, catalog syncs, usage drains) is arriving
      faster than it runs. Check the tasks function's errors and instance count, and the
      queue's rate limits in infra/tasks.tf; a paused queue (gcloud tasks queues describe)
      also fills up.
    EOT
  }

  depends_on = [google_project_service.enabled]
}

# The apps' view: Google's checkers fetch the public API description through the front door
# every 5 minutes, which proves the address, certificate, Cloud Armor, URL map and a function
# behind them serve. Left out when allowed_source_ranges admits only some clients, since the
# checkers' addresses would be refused.
resource "google_monitoring_uptime_check_config" "front_door" {
  count = length(var.allowed_source_ranges) == 0 ? 1 : 0

  display_name = "Voice platform front door"
  timeout      = "10s"
  period       = "300s"

  http_check {
    path         = "/openapi.json"
    port         = 443
    use_ssl      = true
    validate_ssl = true

    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
  }

  content_matchers {
    content = "\"openapi\""
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project
      host       = local.front_door_domain
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "front_door_down" {
  count = length(google_monitoring_uptime_check_config.front_door)

  display_name          = "Voice platform: front door unreachable"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "The uptime check of /openapi.json fails from more than one location for 10 minutes"

    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.label.check_id=\"${google_monitoring_uptime_check_config.front_door[0].uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "600s"

      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.host"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The apps cannot reach the API: `GET https://<domain>/openapi.json` fails from several of
      Google's checker locations. Check, in order: the domain's A record against the
      front_door_ip output, the managed certificate's status (it takes up to an hour after a
      first deploy or a domain change), the Cloud Armor policy, and the openapi function's logs.
    EOT
  }

  depends_on = [google_project_service.enabled]
}
