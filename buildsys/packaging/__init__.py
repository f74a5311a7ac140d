"""Stage 3, packaging: the wheels of the staged matrix, the wheel writer, the family wheels."""
