"""Worker groups: desired counts, per-worker control, autoscaling (docs/workers.md)."""
