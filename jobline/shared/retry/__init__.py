"""What happens after a failed attempt: backoff, retry policies (and their store), the dead-letter queue."""
