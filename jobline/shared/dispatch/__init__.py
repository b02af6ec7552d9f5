"""Redis/Valkey dispatch state: ready queues, delayed sets, leases and wake-ups (redis_dispatch + lua/),
and the per-queue controls enforced at claim time: pause, concurrency cap, rate limit, backpressure."""
