-- 0022: analytics over months of history (issue 16). The contract between the writers (the
-- relay's live fold, `jobline analytics rebuild`, `jobline seed`, the scheduler's samples) and
-- the readers (the analytics API, the AI models); docs/analytics.md explains each table.
--
-- Histogram buckets change from log2 (a p95 could be off by 2x) to the layout of
-- jobline/shared/observe/sketch.py: integer lower bounds growing by at most 4%, so a merged
-- percentile is within 2% of the exact one. jobline_bucket() is that layout in SQL; width_bucket
-- over integer thresholds agrees exactly with Python's bisect_right over the same list.
CREATE FUNCTION jobline_bucket(ms bigint) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT width_bucket(ms, '{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,52,54,56,58,60,62,64,66,68,70,72,74,76,79,82,85,88,91,94,97,100,104,108,112,116,120,124,128,133,138,143,148,153,159,165,171,177,184,191,198,205,213,221,229,238,247,256,266,276,287,298,309,321,333,346,359,373,387,402,418,434,451,469,487,506,526,547,568,590,613,637,662,688,715,743,772,802,834,867,901,937,974,1012,1052,1094,1137,1182,1229,1278,1329,1382,1437,1494,1553,1615,1679,1746,1815,1887,1962,2040,2121,2205,2293,2384,2479,2578,2681,2788,2899,3014,3134,3259,3389,3524,3664,3810,3962,4120,4284,4455,4633,4818,5010,5210,5418,5634,5859,6093,6336,6589,6852,7126,7411,7707,8015,8335,8668,9014,9374,9748,10137,10542,10963,11401,11857,12331,12824,13336,13869,14423,14999,15598,16221,16869,17543,18244,18973,19731,20520,21340,22193,23080,24003,24963,25961,26999,28078,29201,30369,31583,32846,34159,35525,36946,38423,39959,41557,43219,44947,46744,48613,50557,52579,54682,56869,59143,61508,63968,66526,69187,71954,74832,77825,80938,84175,87542,91043,94684,98471,102409,106505,110765,115195,119802,124594,129577,134760,140150,145756,151586,157649,163954,170512,177332,184425,191802,199474,207452,215750,224380,233355,242689,252396,262491,272990,283909,295265,307075,319358,332132,345417,359233,373602,388546,404087,420250,437060,454542,472723,491631,511296,531747,553016,575136,598141,622066,646948,672825,699738,727727,756836,787109,818593,851336,885389,920804,957636,995941,1035778,1077209,1120297,1165108,1211712,1260180,1310587,1363010,1417530,1474231,1533200,1594528,1658309,1724641,1793626,1865371,1939985,2017584,2098287,2182218,2269506,2360286,2454697,2552884,2654999,2761198,2871645,2986510,3105970,3230208,3359416,3493792,3633543,3778884,3930039,4087240,4250729,4420758,4597588,4781491,4972750,5171660,5378526,5593667,5817413,6050109,6292113,6543797,6805548,7077769,7360879,7655314,7961526,8279987,8611186,8955633,9313858,9686412,10073868,10476822,10895894,11331729,11784998,12256397,12746652,13256518,13786778,14338249,14911778,15508249,16128578,16773721,17444669,18142455,18868153,19622879,20407794,21224105,22073069,22955991,23874230,24829199,25822366,26855260,27929470,29046648,30208513,31416853,32673527,33980468,35339686,36753273,38223403,39752339,41342432,42996129,44715974,46504612,48364796,50299387,52311362,54403816,56579968,58843166,61196892,63644767,66190557,68838179,71591706,74455374,77433588,80530931,83752168,87102254,90586344,94209797,97978188,101897315,105973207,110212135,114620620,119205444,123973661,128932607,134089911,139453507,145031647,150832912,156866228,163140877,169666512,176453172,183511298,190851749,198485818,206425250,214682260,223269550,232200332,241488345,251147878,261193793,271641544,282507205,293807493,305559792,317782183,330493470,343713208,357461736,371760205,386630613,402095837,418179670,434906856,452303130,470395255,489211065,508779507,529130687,550295914,572307750,595200060,619008062,643768384,669519119,696299883,724151878,753117953,783242671,814572377,847155272,881041482,916283141,952934466,991051844,1030693917,1071921673,1114798539,1159390480,1205766099,1253996742,1304156611,1356322875,1410575790,1466998821,1525678773,1586705923,1650174159,1716181125,1784828370,1856221504,1930470364,2007689178,2087996745,2171516614}'::bigint[])::smallint $$;

-- Existing minute rows: a log2 bucket b >= 1 held [2^(b-1), 2^b); it moves to the fine bucket of
-- its lower bound (distinct log2 buckets map to distinct fine buckets, so keys cannot collide).
UPDATE job_rollup_histograms SET bucket = jobline_bucket((2::bigint ^ (bucket - 1))::bigint)
 WHERE bucket >= 1;

ALTER TABLE job_rollup_histograms DROP CONSTRAINT job_rollup_histograms_metric_check;
ALTER TABLE job_rollup_histograms ADD CONSTRAINT job_rollup_histograms_metric_check
    CHECK (metric IN ('duration', 'wait', 'e2e', 'failed'));

-- Histogram metrics: duration (run time of completed attempts), wait (due -> start), e2e (created
-- -> completed of completed jobs), failed (run time of failed attempts: time to failure).
-- e2e_sum_ms = created -> completed of jobs that completed; failed_ms = run time of attempts that failed
-- (retried, timed out or dead-lettered): the compute spent for nothing.
ALTER TABLE job_rollups ADD COLUMN e2e_sum_ms bigint NOT NULL DEFAULT 0,
                        ADD COLUMN failed_ms  bigint NOT NULL DEFAULT 0;

-- Failed attempts by error type, and finished attempts by attempt number.
CREATE TABLE job_rollup_errors (
    minute     timestamptz NOT NULL,
    queue_name text        NOT NULL,
    job_type   text        NOT NULL,
    error_type text        NOT NULL,
    n          bigint      NOT NULL,
    PRIMARY KEY (minute, queue_name, job_type, error_type)
);
CREATE TABLE job_rollup_attempts (
    minute     timestamptz NOT NULL,
    queue_name text        NOT NULL,
    job_type   text        NOT NULL,
    attempt    integer     NOT NULL,
    completed  bigint      NOT NULL DEFAULT 0,
    failed     bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue_name, job_type, attempt)
);

-- Coarser grains with the same columns; "at" is the hour's / the day's (UTC) start. Reads split a
-- range into day rows for whole days, hour rows for whole hours and minute rows at the edges.
CREATE TABLE job_rollups_hour (LIKE job_rollups INCLUDING DEFAULTS);
ALTER TABLE job_rollups_hour RENAME COLUMN minute TO at;
ALTER TABLE job_rollups_hour ADD PRIMARY KEY (at, queue_name, job_type);
CREATE TABLE job_rollups_day (LIKE job_rollups_hour INCLUDING DEFAULTS);
ALTER TABLE job_rollups_day ADD PRIMARY KEY (at, queue_name, job_type);

CREATE TABLE job_rollup_histograms_hour (LIKE job_rollup_histograms INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE job_rollup_histograms_hour RENAME COLUMN minute TO at;
ALTER TABLE job_rollup_histograms_hour ADD PRIMARY KEY (at, queue_name, job_type, metric, bucket);
CREATE TABLE job_rollup_histograms_day (LIKE job_rollup_histograms_hour INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE job_rollup_histograms_day ADD PRIMARY KEY (at, queue_name, job_type, metric, bucket);

CREATE TABLE job_rollup_errors_hour (LIKE job_rollup_errors INCLUDING DEFAULTS);
ALTER TABLE job_rollup_errors_hour RENAME COLUMN minute TO at;
ALTER TABLE job_rollup_errors_hour ADD PRIMARY KEY (at, queue_name, job_type, error_type);
CREATE TABLE job_rollup_errors_day (LIKE job_rollup_errors_hour INCLUDING DEFAULTS);
ALTER TABLE job_rollup_errors_day ADD PRIMARY KEY (at, queue_name, job_type, error_type);

CREATE TABLE job_rollup_attempts_hour (LIKE job_rollup_attempts INCLUDING DEFAULTS);
ALTER TABLE job_rollup_attempts_hour RENAME COLUMN minute TO at;
ALTER TABLE job_rollup_attempts_hour ADD PRIMARY KEY (at, queue_name, job_type, attempt);
CREATE TABLE job_rollup_attempts_day (LIKE job_rollup_attempts_hour INCLUDING DEFAULTS);
ALTER TABLE job_rollup_attempts_day ADD PRIMARY KEY (at, queue_name, job_type, attempt);

-- Gauges sampled once a minute by the scheduler (and written by the seed for its history):
--   queue.depth / queue.scheduled / queue.processing / queue.oldest_pending_ms  (subject: queue)
--   workers.count / workers.slots / workers.busy (subject: '*' or a worker group)
--   workers.crashes (subject: '*'; crashes in that minute)
--   worker.cpu_pct / worker.rss_bytes (subject: worker id)
--   redis.memory_bytes (subject: '*'), pg.table_bytes (subject: table), pg.database_bytes ('*')
--   events.lag (subject: consumer or stream)
--   health.up (subject: api | postgres | redis | scheduler | workers; 1 up, 0 down)
-- Minute samples are kept JOBLINE_ROLLUP_MINUTE_DAYS; the hour table (avg/min/max/last of the
-- minute samples) is kept with the rollups.
CREATE TABLE analytics_samples (
    metric  text             NOT NULL,
    subject text             NOT NULL,
    minute  timestamptz      NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (metric, subject, minute)
);
CREATE TABLE analytics_samples_hour (
    metric  text             NOT NULL,
    subject text             NOT NULL,
    at      timestamptz      NOT NULL,
    avg     double precision NOT NULL,
    min     double precision NOT NULL,
    max     double precision NOT NULL,
    last    double precision NOT NULL,
    n       integer          NOT NULL,
    PRIMARY KEY (metric, subject, at)
);

-- Per-queue service objective ("95% within 5 minutes", measured on e2e or wait) and price.
CREATE TABLE queue_slas (
    queue_name  text PRIMARY KEY,
    objective   double precision NOT NULL CHECK (objective > 0 AND objective < 1),
    target_ms   bigint NOT NULL CHECK (target_ms > 0),
    metric      text NOT NULL DEFAULT 'e2e' CHECK (metric IN ('e2e', 'wait')),
    updated_at  timestamptz NOT NULL
);
CREATE TABLE queue_costs (
    queue_name            text PRIMARY KEY,
    price_per_worker_hour numeric(12, 4) NOT NULL CHECK (price_per_worker_hour >= 0),
    updated_at            timestamptz NOT NULL
);

-- Labelled ground truth of injected incidents (the seed's and the AI simulator's), for the AI
-- evaluation: never read by the engine.
CREATE TABLE labelled_incidents (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('failure_spike', 'slowdown', 'worker_crash_wave',
                                              'outage', 'rate_limit', 'backlog')),
    queue_name  text,
    job_type    text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
