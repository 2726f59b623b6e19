"""Use cases; each takes its dependencies as keyword-only arguments."""
