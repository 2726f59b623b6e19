locals {
  # Per-bucket policy: models and backups are precious (versioned); generated audio expires.
  bucket_policies = {
    models  = { versioning = true, delete_after_days = null }
    audio   = { versioning = false, delete_after_days = 30 }
    samples = { versioning = false, delete_after_days = null }
    backups = { versioning = true, delete_after_days = null }
  }
}

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Only the platform's own service accounts reach these objects (uniform access, public access prevented) and Admin Activity audit logs record IAM and bucket changes; turn on Data Access audit logs for storage if per-object audit is needed.
  #checkov:skip=CKV_GCP_78:Versioning comes per bucket from local.bucket_policies, which checkov cannot evaluate: on for models and backups; off for audio (expires after 30 days, versions would outlive the expiry) and samples (inputs the user re-uploads).
  for_each = local.bucket_policies

  name                        = local.bucket_names[each.key]
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = each.value.versioning
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.delete_after_days == null ? [] : [each.value.delete_after_days]
    content {
      action {
        type = "Delete"
      }
      condition {
        age = lifecycle_rule.value
      }
    }
  }

  # Old object versions would otherwise be kept forever in the versioned buckets.
  dynamic "lifecycle_rule" {
    for_each = each.value.versioning ? [1] : []
    content {
      action {
        type = "Delete"
      }
      condition {
        num_newer_versions = 5
        with_state         = "ARCHIVED"
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

# Function source archives (one object per content hash, so a code change redeploys).
resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs written by CI, read by the function builder; Admin Activity audit logs record IAM and bucket changes.
  name                        = "${var.project}-voice-functions-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age        = 30
      with_state = "ARCHIVED"
    }
  }

  depends_on = [google_project_service.enabled]
}

locals {
  build_source = var.source_archive_object == ""
  # gitignore-style lines of .gcloudignore turned into the doublestar globs archive_file takes:
  # a name without a slash matches at any depth, a leading slash anchors it at the root.
  source_root = coalesce(var.source_dir, "${path.module}/..")
  gcloudignore_lines = [
    for line in split("\n", fileexists("${local.source_root}/.gcloudignore") ? file("${local.source_root}/.gcloudignore") : "") :
    trimsuffix(trimspace(line), "/")
    if trimspace(line) != "" && !startswith(trimspace(line), "#") && !startswith(trimspace(line), "!")
  ]
  source_excludes = [
    for pattern in local.gcloudignore_lines :
    startswith(pattern, "/") ? trimprefix(pattern, "/") : (strcontains(pattern, "/") ? pattern : "**/${pattern}")
  ]
}

locals {
  # The speaker encoder's weights (resemblyzer 0.1.4's pretrained.pt) are not in the
  # repository: `python3 infra/vendor_weights.py` copies them into the tree zipped here,
  # where VOICE_SPEAKER_ENCODER_WEIGHTS (main.tf) points. Cloud Build adds them itself.
  speaker_encoder_weights        = "vendor/resemblyzer/pretrained.pt"
  speaker_encoder_weights_sha256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
}

data "archive_file" "source" {
  count = local.build_source ? 1 : 0

  type        = "zip"
  source_dir  = local.source_root
  excludes    = local.source_excludes
  output_path = "${path.module}/.build/functions-source.zip"

  lifecycle {
    precondition {
      condition     = try(filesha256("${local.source_root}/${local.speaker_encoder_weights}"), "") == local.speaker_encoder_weights_sha256
      error_message = "The speaker encoder's weights are missing from the source (or are not resemblyzer 0.1.4's): run `.venv/bin/python infra/vendor_weights.py` from the repository root, then plan again."
    }
  }
}

resource "google_storage_bucket_object" "source" {
  count = local.build_source ? 1 : 0

  bucket = google_storage_bucket.source.name
  name   = "functions-source-${data.archive_file.source[0].output_md5}.zip"
  source = data.archive_file.source[0].output_path
}

locals {
  source_bucket = local.build_source ? google_storage_bucket.source.name : coalesce(var.source_archive_bucket, google_storage_bucket.source.name)
  source_object = local.build_source ? google_storage_bucket_object.source[0].name : var.source_archive_object
}
