"""Real-time voice sessions: backends, pipelines and the sessions they run."""
