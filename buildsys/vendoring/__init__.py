"""Stage 1, vendoring: the tracking repository, the patch queue, sync into vendor/ with its manifest,
check and status."""
