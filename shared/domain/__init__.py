"""Domain entities and their rules: pydantic models, no I/O."""
