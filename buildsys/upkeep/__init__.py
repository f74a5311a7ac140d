"""Keeping up with upstream: bump and its report, what an upstream range changed, the pin in
vendoring.toml, upstream's release tags."""
