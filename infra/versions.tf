terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.20"
    }
    # 2.5 added glob patterns to archive_file excludes, which the source archive relies on.
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.5"
    }
    # time_sleep: waits out Cloud Monitoring's delay before a new log-based metric can be
    # named in an alert policy (monitoring.tf).
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region

  default_labels = local.labels
}

provider "google-beta" {
  project = var.project
  region  = var.region

  default_labels = local.labels
}
