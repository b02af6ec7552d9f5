"""Job and worker events: the outbox and its relay (outbox), the bus contract (bus) and its backends
(buses/), the in-process live feed, and the audit log."""
