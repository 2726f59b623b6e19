"""The Cloud Run streaming voice session service (``python -m session``)."""
