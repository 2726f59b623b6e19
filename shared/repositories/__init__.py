"""Repositories: domain entities in and out of the document store."""
