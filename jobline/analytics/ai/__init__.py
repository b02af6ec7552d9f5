"""AI operations over the system's own history (issue 17): models and heuristics computed from data."""
