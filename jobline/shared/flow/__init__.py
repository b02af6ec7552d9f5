"""How jobs relate: dependencies (waiting -> pending|cancelled), the dependency graph (dag), and batches."""
