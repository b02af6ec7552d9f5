"""The chaos suite: real processes, real faults, a total-queue checker (docs/reliability.md)."""
