"""The job itself: its records and state machine (models), every job transition (jobs, maintenance),
their SQL (sql), submission validation, group commit, search, cancellation and payload offload."""
