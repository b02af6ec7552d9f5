"""Lambda entry points: one module per operation, each exposing ``handler(event, context)``.

``submit``, ``claim``, ``complete``, ``retry`` serve their API Gateway routes, ``http`` serves
the whole API, ``cron_tick`` runs the scheduler's periodic work from EventBridge. All are thin
shells over the core and share one loop and one set of connections per container
(:mod:`jobline.functions._runtime`). Nothing heavy is imported here.
"""
