"""Recurring jobs: cron expressions (cron) and stored schedules with cron_tick (recurring)."""
