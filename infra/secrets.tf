# Provider API keys. Only the secret containers live here: their values are added out of band
# (gcloud secrets versions add NAME --data-file=-) and never appear in the repo or the state.
locals {
  provider_secrets = {
    elevenlabs = { secret_id = "voice-elevenlabs-api-key", env = "VOICE_ELEVENLABS_API_KEY" }
    azure      = { secret_id = "voice-azure-speech-key", env = "VOICE_AZURE_SPEECH_KEY" }
    openai     = { secret_id = "voice-openai-api-key", env = "VOICE_OPENAI_API_KEY" }
  }
}

resource "google_secret_manager_secret" "provider" {
  for_each = local.provider_secrets

  secret_id = each.value.secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}
