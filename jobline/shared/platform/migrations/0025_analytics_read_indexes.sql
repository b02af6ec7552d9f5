-- 0025: indexes for the analytics reads (issue 16, jobline/analytics/query.py).
--
-- Every percentile and SLA read merges one or two histogram metrics over a time range. The
-- primary keys lead with the time, so such a read walked the entries of all four metrics and
-- fetched each row from the heap for its count; these lead with the metric and carry the count,
-- so a 30-day read of one metric is an index-only range scan (measured on the bench store of
-- bench/analytics_api.py: the hour part of a 30-day SLA read went from ~55 ms to ~9 ms).
-- Only the hour and day grains: the minute table is the live fold's hottest write path (an
-- included count makes every upsert non-HOT), and reads touch at most two hours of it.
CREATE INDEX job_rollup_histograms_hour_metric
    ON job_rollup_histograms_hour (metric, at, queue_name, job_type, bucket) INCLUDE (n);
CREATE INDEX job_rollup_histograms_day_metric
    ON job_rollup_histograms_day (metric, at, queue_name, job_type, bucket) INCLUDE (n);
