"""API keys and roles (auth), secret masking, and the per-key request rate limit."""
