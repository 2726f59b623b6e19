# One google_cloudfunctions2_function per entry of functions.json, which mirrors
# functions/__init__.py FUNCTIONS (a test keeps the two equal): adding an entry there and
# here deploys a new function with its own service account, entry point and trigger.

locals {
  functions = jsondecode(file("${path.module}/functions.json")).functions

  http_functions    = { for name, f in local.functions : name => f if f.trigger == "http" }
  public_functions  = { for name, f in local.http_functions : name => f if try(f.public, false) }
  storage_functions = { for name, f in local.functions : name => f if f.trigger == "storage" }
}

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:Ingress comes per function from functions.json, which checkov cannot read: ALLOW_INTERNAL_AND_GCLB (the front door and Google-internal callers) or ALLOW_INTERNAL_ONLY; infra/front_door_check.py refuses ALLOW_ALL without a reason.
  for_each = local.functions

  name        = each.key
  location    = var.region
  description = "Voice platform function ${each.key} (${each.value.trigger})."

  build_config {
    runtime         = "python311"
    entry_point     = each.value.entry_point
    service_account = google_service_account.builder.id

    source {
      storage_source {
        bucket = local.source_bucket
        object = local.source_object
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout_seconds
    min_instance_count               = lookup(var.min_instances, each.key, 0)
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = each.value.concurrency
    service_account_email            = google_service_account.function[each.key].email
    all_traffic_on_latest_revision   = true

    # From functions.json. HTTP functions take ALLOW_INTERNAL_AND_GCLB: from the internet
    # only through the front door (front_door.tf: Cloud Armor, one certificate), plus
    # Google-internal callers, which is how Cloud Tasks and Cloud Scheduler reach the tasks
    # function at its own URL. Storage-triggered functions take ALLOW_INTERNAL_ONLY:
    # Eventarc is their only caller. infra/front_door_check.py holds both rules.
    ingress_settings = each.value.ingress

    environment_variables = local.app_environment

    dynamic "secret_environment_variables" {
      for_each = toset(each.value.secrets)
      content {
        key        = local.provider_secrets[secret_environment_variables.value].env
        project_id = var.project
        secret     = google_secret_manager_secret.provider[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger == "storage" ? [each.value.trigger_bucket] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.function[each.key].email

      event_filters {
        attribute = "bucket"
        value     = google_storage_bucket.data[event_trigger.value].name
      }
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_project_iam_member.builder,
    google_project_iam_member.builder_source_reader,
    google_project_iam_member.gcs_pubsub_publisher,
    google_project_iam_member.function_event_receiver,
    google_secret_manager_secret_iam_member.function,
  ]

  lifecycle {
    precondition {
      condition     = lookup(var.min_instances, each.key, 0) <= each.value.max_instances
      error_message = "min_instances[\"${each.key}\"] exceeds the function's max_instances in functions.json."
    }
  }
}

# A warm-instance count for a function that does not exist is a typo, not a wish.
resource "terraform_data" "min_instances_known" {
  input = keys(var.min_instances)

  lifecycle {
    precondition {
      condition     = length(setsubtract(keys(var.min_instances), keys(local.functions))) == 0
      error_message = "min_instances names functions that functions.json does not deploy: ${join(", ", setsubtract(keys(var.min_instances), keys(local.functions)))}."
    }
  }
}

# Anyone may invoke a public function, but ingress admits them only through the front door
# (whose load balancer carries no Google identity); the app authenticates every request.
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  for_each = local.public_functions

  name     = google_cloudfunctions2_function.this[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Cloud Tasks and Cloud Scheduler call HTTP functions with OIDC tokens of this account.
resource "google_cloud_run_v2_service_iam_member" "tasks_invoker" {
  for_each = local.http_functions

  name     = google_cloudfunctions2_function.this[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.tasks_invoker.member
}

# Eventarc delivers storage events with the function's own account as the caller.
resource "google_cloud_run_v2_service_iam_member" "event_invoker" {
  for_each = local.storage_functions

  name     = google_cloudfunctions2_function.this[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = google_service_account.function[each.key].member
}
