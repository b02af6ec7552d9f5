"""Alerting: rules over the rollups and live state, evaluated by the scheduler, notified through
email, Slack and webhook channels by Jobline jobs (docs/alerts.md).

Modules, in the order a notification travels:
  * :mod:`.model`: the rule/channel/silence input models (shared by REST and GraphQL), the
    stored shapes and the masking of channel secrets;
  * :mod:`.store`: create/read/update/delete of rules, channels, silences; alert history and
    delivery records; acknowledgement;
  * :mod:`.metrics`: what a condition measures, read once per evaluation tick for all rules;
  * :mod:`.evaluate`: the tick: due rules taken with ``FOR UPDATE SKIP LOCKED``, the
    ok -> pending -> firing -> resolved machine, alerts and deliveries written in that
    transaction, then one delivery job per delivery;
  * :mod:`.channels`: rendering and sending (aiosmtplib, Slack blocks, signed webhooks);
  * :mod:`.deliver`: the ``jobline.alerts.deliver`` job handler and the in-scheduler worker
    that runs it on the internal ``jobline.alerts`` queue.

(:mod:`jobline.analytics.alerts` is the older failure-rate spike detector the event relay folds;
its ``alerts.fired`` events feed the ``anomaly`` condition here.)
"""
