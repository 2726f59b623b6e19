"""Voice samples: uploaded recordings, their analysis and speaker embeddings."""
