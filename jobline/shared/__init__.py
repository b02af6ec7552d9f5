"""The core library every shell (worker, REST/GraphQL API, CLI, Lambda functions) calls.

Grouped by responsibility; see docs/architecture.md for the map. Nothing here imports a shell,
the worker runtime or analytics.
"""
