"""Code shared by every Cloud Function and the Cloud Run session service."""
