"""Stage 4, CI: the GitHub Actions wheel matrix derived from the presets."""
