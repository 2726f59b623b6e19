"""Training voice models from samples: the trainers, their artifacts, and completion."""
