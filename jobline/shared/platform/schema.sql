CREATE FUNCTION public.jobline_bucket(ms bigint) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT width_bucket(ms, '{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,52,54,56,58,60,62,64,66,68,70,72,74,76,79,82,85,88,91,94,97,100,104,108,112,116,120,124,128,133,138,143,148,153,159,165,171,177,184,191,198,205,213,221,229,238,247,256,266,276,287,298,309,321,333,346,359,373,387,402,418,434,451,469,487,506,526,547,568,590,613,637,662,688,715,743,772,802,834,867,901,937,974,1012,1052,1094,1137,1182,1229,1278,1329,1382,1437,1494,1553,1615,1679,1746,1815,1887,1962,2040,2121,2205,2293,2384,2479,2578,2681,2788,2899,3014,3134,3259,3389,3524,3664,3810,3962,4120,4284,4455,4633,4818,5010,5210,5418,5634,5859,6093,6336,6589,6852,7126,7411,7707,8015,8335,8668,9014,9374,9748,10137,10542,10963,11401,11857,12331,12824,13336,13869,14423,14999,15598,16221,16869,17543,18244,18973,19731,20520,21340,22193,23080,24003,24963,25961,26999,28078,29201,30369,31583,32846,34159,35525,36946,38423,39959,41557,43219,44947,46744,48613,50557,52579,54682,56869,59143,61508,63968,66526,69187,71954,74832,77825,80938,84175,87542,91043,94684,98471,102409,106505,110765,115195,119802,124594,129577,134760,140150,145756,151586,157649,163954,170512,177332,184425,191802,199474,207452,215750,224380,233355,242689,252396,262491,272990,283909,295265,307075,319358,332132,345417,359233,373602,388546,404087,420250,437060,454542,472723,491631,511296,531747,553016,575136,598141,622066,646948,672825,699738,727727,756836,787109,818593,851336,885389,920804,957636,995941,1035778,1077209,1120297,1165108,1211712,1260180,1310587,1363010,1417530,1474231,1533200,1594528,1658309,1724641,1793626,1865371,1939985,2017584,2098287,2182218,2269506,2360286,2454697,2552884,2654999,2761198,2871645,2986510,3105970,3230208,3359416,3493792,3633543,3778884,3930039,4087240,4250729,4420758,4597588,4781491,4972750,5171660,5378526,5593667,5817413,6050109,6292113,6543797,6805548,7077769,7360879,7655314,7961526,8279987,8611186,8955633,9313858,9686412,10073868,10476822,10895894,11331729,11784998,12256397,12746652,13256518,13786778,14338249,14911778,15508249,16128578,16773721,17444669,18142455,18868153,19622879,20407794,21224105,22073069,22955991,23874230,24829199,25822366,26855260,27929470,29046648,30208513,31416853,32673527,33980468,35339686,36753273,38223403,39752339,41342432,42996129,44715974,46504612,48364796,50299387,52311362,54403816,56579968,58843166,61196892,63644767,66190557,68838179,71591706,74455374,77433588,80530931,83752168,87102254,90586344,94209797,97978188,101897315,105973207,110212135,114620620,119205444,123973661,128932607,134089911,139453507,145031647,150832912,156866228,163140877,169666512,176453172,183511298,190851749,198485818,206425250,214682260,223269550,232200332,241488345,251147878,261193793,271641544,282507205,293807493,305559792,317782183,330493470,343713208,357461736,371760205,386630613,402095837,418179670,434906856,452303130,470395255,489211065,508779507,529130687,550295914,572307750,595200060,619008062,643768384,669519119,696299883,724151878,753117953,783242671,814572377,847155272,881041482,916283141,952934466,991051844,1030693917,1071921673,1114798539,1159390480,1205766099,1253996742,1304156611,1356322875,1410575790,1466998821,1525678773,1586705923,1650174159,1716181125,1784828370,1856221504,1930470364,2007689178,2087996745,2171516614}'::bigint[])::smallint $$;
CREATE FUNCTION public.jobline_drop_event_partitions(before timestamp with time zone, published_through bigint) RETURNS integer
    LANGUAGE plpgsql
    AS $_$
DECLARE
    p       record;
    pending boolean;
    dropped integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '1s', true);
    FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'job_events'::regclass AND c.relname ~ '^job_events_p[0-9]{8}$'
    LOOP
        IF (to_date(substr(p.relname, 13), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC')
               + interval '1 day' <= before THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE seq > $1)', p.relname)
               INTO pending USING published_through;
            IF NOT pending THEN
                -- Dropping a partition locks the parent; waiting behind a long reader would
                -- queue every outbox insert behind it, so give up quickly and retry next time.
                BEGIN
                    EXECUTE format('DROP TABLE %I', p.relname);
                    dropped := dropped + 1;
                EXCEPTION WHEN lock_not_available THEN
                    RAISE NOTICE 'partition % busy; dropped next time', p.relname;
                END;
            END IF;
        END IF;
    END LOOP;
    DELETE FROM job_events_default WHERE occurred_at < before AND seq <= published_through;
    RETURN dropped;
END
$_$;
CREATE FUNCTION public.jobline_drop_jobs_partition(part text) RETURNS bigint
    LANGUAGE plpgsql
    AS $_$
DECLARE
    gone bigint;
    twin text := regexp_replace(part, '^jobs_', 'job_attempts_');
BEGIN
    IF part !~ '^jobs_p[0-9]{6}$' THEN
        RAISE EXCEPTION 'not a monthly jobs partition: %', part;
    END IF;
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', part);
    EXECUTE format('INSERT INTO queue_count_deltas (queue_name, status, delta)
                    SELECT queue_name, status, -count(*) FROM %I GROUP BY queue_name, status', part);
    EXECUTE format('SELECT count(*) FROM %I', part) INTO gone;
    EXECUTE format('ALTER TABLE jobs DETACH PARTITION %I', part);
    EXECUTE format('DROP TABLE %I', part);
    IF to_regclass(twin) IS NOT NULL THEN
        EXECUTE format('ALTER TABLE job_attempts DETACH PARTITION %I', twin);
        EXECUTE format('DROP TABLE %I', twin);
    END IF;
    RETURN gone;
END
$_$;
CREATE FUNCTION public.jobline_ensure_event_partitions(from_ts timestamp with time zone, days integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    d       timestamptz := date_trunc('day', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_d  timestamptz;
    created integer := 0;
    name    text;
BEGIN
    FOR i IN 1..days LOOP
        next_d := d + interval '1 day';
        name := 'job_events_p' || to_char(d AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF job_events FOR VALUES FROM (%L) TO (%L)',
                               name, d, next_d);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'partition % skipped: rows for it are in the default partition', name;
            END;
        END IF;
        d := next_d;
    END LOOP;
    RETURN created;
END
$$;
CREATE FUNCTION public.jobline_ensure_partitions(from_ts timestamp with time zone, months integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    m        timestamptz := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    next_m   timestamptz;
    lo       uuid;
    hi       uuid;
    created  integer := 0;
    parent   text;
    name     text;
BEGIN
    FOR i IN 1..months LOOP
        next_m := ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        lo := jobline_uuid7_floor((extract(epoch FROM m) * 1000)::bigint);
        hi := jobline_uuid7_floor((extract(epoch FROM next_m) * 1000)::bigint);
        FOREACH parent IN ARRAY ARRAY['jobs', 'job_attempts'] LOOP
            name := parent || '_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
            IF to_regclass(name) IS NULL THEN
                BEGIN
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                                   name, parent, lo, hi);
                    created := created + 1;
                EXCEPTION WHEN check_violation THEN
                    RAISE NOTICE 'partition % skipped: rows for it are in the default partition', name;
                END;
            END IF;
        END LOOP;
        m := next_m;
    END LOOP;
    RETURN created;
END
$$;
CREATE FUNCTION public.jobline_event_base_id() RETURNS uuid
    LANGUAGE sql PARALLEL SAFE
    AS $$
    SELECT encode(overlay(uuid_send(jobline_uuid7()) PLACING '\x0000'::bytea FROM 15 FOR 2),
                  'hex')::uuid
$$;
CREATE FUNCTION public.jobline_fold_queue_counts() RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7261531) THEN
        RETURN -1;
    END IF;
    WITH d AS (
        DELETE FROM queue_count_deltas RETURNING queue_name, status, delta
    ), s AS (
        SELECT queue_name, status, sum(delta) AS n, count(*) AS k FROM d GROUP BY queue_name, status
    ), up AS (
        INSERT INTO queue_counts AS c (queue_name, status, n)
        SELECT queue_name, status, n FROM s ORDER BY queue_name, status
        ON CONFLICT (queue_name, status) DO UPDATE SET n = c.n + excluded.n
    )
    SELECT coalesce(sum(k), 0) INTO folded FROM s;
    RETURN folded;
END
$$;
CREATE FUNCTION public.jobline_jobs_inserted_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF current_setting('jobline.events', true) = 'off' THEN
        RETURN NULL;
    END IF;
    INSERT INTO job_events (event_id, type, occurred_at, queue_name, job_type, status, batch_id,
                            n, job_ids, at_ms, priorities, due_ms)
    SELECT jobline_event_base_id(), 'jobs.submitted', min(n.created_at), n.queue_name,
           n.job_type, n.status, n.batch_id, count(*), array_agg(n.id),
           array_agg((extract(epoch FROM n.created_at) * 1000)::bigint), array_agg(n.priority),
           array_agg((extract(epoch FROM n.scheduled_for) * 1000)::bigint)
      FROM n
     GROUP BY n.queue_name, n.job_type, n.status, n.batch_id, date_trunc('minute', n.created_at),
              n.seq / 1000;
    IF FOUND THEN
        PERFORM pg_notify('jobline_events', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION public.jobline_jobs_updated_events() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF current_setting('jobline.events', true) = 'off' THEN
        RETURN NULL;
    END IF;
    -- Claims and completions (-> processing, -> completed) write their own statement rows
    -- (CLAIM_JOBS, COMPLETE_JOBS: the only statements that make those transitions); planning
    -- this function's query over the transition tables again on every call cost ~170 µs per
    -- statement. A statement that changed no job to any other status (claims, completions,
    -- lease extensions) only wakes the relay.
    IF NOT EXISTS (SELECT 1 FROM n WHERE n.status NOT IN ('processing', 'completed')) THEN
        PERFORM pg_notify('jobline_events', '');
        RETURN NULL;
    END IF;
    -- everything else: a row per event, as 0011 wrote them
    INSERT INTO job_events (type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
                            wait_ms, error_type, error, data)
    SELECT v.type, n.updated_at, n.id, n.queue_name, n.job_type, v.attempt, v.duration_ms,
           v.wait_ms, v.error_type, jobline_mask_secrets(v.error), v.data
      FROM o JOIN n ON n.id = o.id
     CROSS JOIN LATERAL (VALUES
            (o.status = 'processing' AND n.status IN ('pending', 'scheduled', 'dead_letter')
             AND n.attempts = o.attempts, 'jobs.failed', o.attempts,
             least(greatest(0, extract(epoch FROM n.updated_at - n.started_at) * 1000), 2147483647)::int,
             NULL::int, n.error_type, n.error, NULL::jsonb),
            (o.status = 'processing' AND n.status IN ('pending', 'scheduled'), 'jobs.retries',
             o.attempts, NULL, NULL, n.error_type, NULL,
             jsonb_build_object('retryAt', n.scheduled_for,
                                'attemptCounted', n.attempts = o.attempts)),
            (o.status IN ('failed', 'dead_letter') AND n.status = 'pending', 'jobs.retries',
             o.attempts, NULL, NULL, o.error_type, NULL,
             jsonb_build_object('retryAt', n.scheduled_for, 'manual', true)),
            (n.status = 'dead_letter', 'jobs.dead_letter', n.attempts, NULL, NULL, n.error_type,
             n.error, NULL),
            (n.status = 'cancelled', 'jobs.cancelled', n.attempts, NULL, NULL, NULL, n.error,
             NULL)
          ) AS v(hit, type, attempt, duration_ms, wait_ms, error_type, error, data)
     WHERE o.status IS DISTINCT FROM n.status
       AND n.status NOT IN ('processing', 'completed') AND v.hit
     ORDER BY n.seq;
    IF FOUND THEN
        PERFORM pg_notify('jobline_events', '');
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION public.jobline_mask_secrets(t text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT left(regexp_replace(t,
        '((password|passwd|token|secret|authorization|api[_-]?key)["'']?\s*[:=]\s*["'']?)(Bearer\s+)?[^\s,;&"''}]+',
        '\1***', 'gi'), 1000)
$$;
CREATE FUNCTION public.jobline_queue_counts_deleted() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO queue_count_deltas (queue_name, status, delta)
    SELECT queue_name, status, -count(*) FROM o GROUP BY queue_name, status;
    RETURN NULL;
END
$$;
CREATE FUNCTION public.jobline_queue_counts_inserted() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO queue_count_deltas (queue_name, status, delta)
    SELECT queue_name, status, count(*) FROM n GROUP BY queue_name, status;
    RETURN NULL;
END
$$;
CREATE FUNCTION public.jobline_queue_counts_truncated() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM queue_count_deltas;
    DELETE FROM queue_counts;
    RETURN NULL;
END
$$;
CREATE FUNCTION public.jobline_queue_counts_updated() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO queue_count_deltas (queue_name, status, delta)
    SELECT queue_name, status, sum(d)
      FROM (SELECT queue_name, status, 1 AS d FROM n
            UNION ALL
            SELECT queue_name, status, -1 FROM o) AS t
     GROUP BY queue_name, status
    HAVING sum(d) <> 0;
    RETURN NULL;
END
$$;
CREATE FUNCTION public.jobline_uuid7() RETURNS uuid
    LANGUAGE sql PARALLEL SAFE
    AS $$
    SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING
               int8send((floor(date_part('epoch', clock_timestamp()) * 1000)::bigint << 16)
                        | 28672 | floor(random() * 4096)::bigint)
               FROM 1 FOR 8), 'hex')::uuid
$$;
CREATE FUNCTION public.jobline_uuid7_floor(ms bigint) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT (substr(lpad(to_hex(ms), 12, '0'), 1, 8) || '-' || substr(lpad(to_hex(ms), 12, '0'), 9, 4)
            || '-0000-0000-000000000000')::uuid
$$;
CREATE TABLE public.ai_anomalies (
    id bigint NOT NULL,
    queue_name text NOT NULL,
    metric text NOT NULL,
    detected_at timestamp with time zone NOT NULL,
    last_seen_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone,
    current_value double precision NOT NULL,
    baseline double precision NOT NULL,
    score double precision NOT NULL,
    peak_score double precision NOT NULL,
    possible_causes jsonb DEFAULT '{}'::jsonb NOT NULL
);
CREATE SEQUENCE public.ai_anomalies_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.ai_anomalies_id_seq OWNED BY public.ai_anomalies.id;
CREATE TABLE public.ai_models (
    id bigint NOT NULL,
    kind text NOT NULL,
    version integer NOT NULL,
    trained_at timestamp with time zone NOT NULL,
    metrics jsonb NOT NULL,
    meta jsonb NOT NULL,
    model text NOT NULL,
    CONSTRAINT ai_models_kind_check CHECK ((kind ~ '^[a-z_]{1,40}$'::text))
);
CREATE SEQUENCE public.ai_models_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.ai_models_id_seq OWNED BY public.ai_models.id;
CREATE TABLE public.ai_state (
    key text NOT NULL,
    value text NOT NULL
);
CREATE TABLE public.alert_channels (
    id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    config jsonb NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT alert_channels_kind_check CHECK ((kind = ANY (ARRAY['email'::text, 'slack'::text, 'webhook'::text])))
);
CREATE TABLE public.alert_deliveries (
    id uuid NOT NULL,
    alert_id uuid,
    channel_id uuid NOT NULL,
    channel_name text NOT NULL,
    kind text NOT NULL,
    recipient integer DEFAULT 0 NOT NULL,
    event text NOT NULL,
    status text DEFAULT 'queued'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    job_id uuid,
    message jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    sent_at timestamp with time zone,
    CONSTRAINT alert_deliveries_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'retrying'::text, 'sent'::text, 'failed'::text])))
);
CREATE TABLE public.alert_rules (
    id uuid NOT NULL,
    name text NOT NULL,
    builtin text,
    condition jsonb NOT NULL,
    scope_queue text,
    scope_job_type text,
    for_ms bigint DEFAULT 0 NOT NULL,
    severity text DEFAULT 'warning'::text NOT NULL,
    channel_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    renotify_ms bigint DEFAULT 0 NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    state text DEFAULT 'ok'::text NOT NULL,
    state_since timestamp with time zone,
    last_value double precision,
    last_eval_at timestamp with time zone,
    next_eval_at timestamp with time zone NOT NULL,
    evaluations bigint DEFAULT 0 NOT NULL,
    alert_id uuid,
    memory jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT alert_rules_severity_check CHECK ((severity = ANY (ARRAY['info'::text, 'warning'::text, 'critical'::text]))),
    CONSTRAINT alert_rules_state_check CHECK ((state = ANY (ARRAY['ok'::text, 'pending'::text, 'firing'::text])))
);
CREATE TABLE public.alert_silences (
    id uuid NOT NULL,
    rule_id uuid,
    queue text,
    job_type text,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    reason text DEFAULT ''::text NOT NULL,
    created_by text,
    created_at timestamp with time zone NOT NULL
);
CREATE TABLE public.alerts (
    id uuid NOT NULL,
    rule_id uuid NOT NULL,
    rule_name text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL,
    scope_queue text,
    scope_job_type text,
    value double precision,
    peak_value double precision,
    summary text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    started_at timestamp with time zone NOT NULL,
    fired_at timestamp with time zone,
    resolved_at timestamp with time zone,
    last_notified_at timestamp with time zone,
    silenced boolean DEFAULT false NOT NULL,
    acknowledged_at timestamp with time zone,
    acknowledged_by text,
    CONSTRAINT alerts_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'firing'::text, 'resolved'::text, 'cancelled'::text])))
);
CREATE TABLE public.analytics_samples (
    metric text NOT NULL,
    subject text NOT NULL,
    minute timestamp with time zone NOT NULL,
    value double precision NOT NULL
);
CREATE TABLE public.analytics_samples_hour (
    metric text NOT NULL,
    subject text NOT NULL,
    at timestamp with time zone NOT NULL,
    avg double precision NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    last double precision NOT NULL,
    n integer NOT NULL
);
CREATE TABLE public.api_keys (
    id uuid NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    prefix text NOT NULL,
    key_hash text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone,
    CONSTRAINT api_keys_role_check CHECK ((role = ANY (ARRAY['developer'::text, 'admin'::text])))
);
CREATE TABLE public.consumer_watermarks (
    consumer text NOT NULL,
    part text NOT NULL,
    seq bigint NOT NULL
);
CREATE TABLE public.event_relay_state (
    id smallint NOT NULL,
    published_through bigint NOT NULL,
    CONSTRAINT event_relay_state_one_row CHECK ((id = 1))
);
CREATE TABLE public.idempotency_keys (
    key text NOT NULL,
    job_id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);
CREATE TABLE public.job_attempts (
    job_id uuid NOT NULL,
    lease_token bigint NOT NULL,
    attempt integer NOT NULL,
    worker_id text,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone NOT NULL,
    outcome text NOT NULL,
    error_type text,
    error text,
    duration_ms integer NOT NULL,
    due_at timestamp with time zone,
    counted boolean,
    next_status text,
    retry_decision jsonb,
    CONSTRAINT job_attempts_outcome_check CHECK ((outcome = ANY (ARRAY['completed'::text, 'failed'::text, 'retry'::text, 'timeout'::text, 'lease_expired'::text, 'released'::text, 'cancelled'::text])))
)
PARTITION BY RANGE (job_id);
CREATE TABLE public.job_attempts_default (
    job_id uuid CONSTRAINT job_attempts_job_id_not_null NOT NULL,
    lease_token bigint CONSTRAINT job_attempts_lease_token_not_null NOT NULL,
    attempt integer CONSTRAINT job_attempts_attempt_not_null NOT NULL,
    worker_id text,
    started_at timestamp with time zone CONSTRAINT job_attempts_started_at_not_null NOT NULL,
    finished_at timestamp with time zone CONSTRAINT job_attempts_finished_at_not_null NOT NULL,
    outcome text CONSTRAINT job_attempts_outcome_not_null NOT NULL,
    error_type text,
    error text,
    duration_ms integer CONSTRAINT job_attempts_duration_ms_not_null NOT NULL,
    due_at timestamp with time zone,
    counted boolean,
    next_status text,
    retry_decision jsonb,
    CONSTRAINT job_attempts_outcome_check CHECK ((outcome = ANY (ARRAY['completed'::text, 'failed'::text, 'retry'::text, 'timeout'::text, 'lease_expired'::text, 'released'::text, 'cancelled'::text])))
);
CREATE TABLE public.job_batches (
    id uuid NOT NULL,
    name text NOT NULL,
    total integer NOT NULL,
    finished_events bigint DEFAULT 0 NOT NULL,
    on_complete_job_id uuid,
    created_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone,
    CONSTRAINT job_batches_total_check CHECK ((total >= 1))
);
CREATE TABLE public.job_dependencies (
    job_id uuid NOT NULL,
    depends_on uuid NOT NULL
);
CREATE TABLE public.job_events (
    seq bigint NOT NULL,
    event_id uuid DEFAULT public.jobline_uuid7() NOT NULL,
    type text NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    job_id uuid,
    queue_name text,
    job_type text,
    attempt integer,
    duration_ms integer,
    wait_ms integer,
    error_type text,
    error text,
    data jsonb,
    status text,
    priority smallint,
    scheduled_for timestamp with time zone,
    batch_id uuid,
    n integer,
    job_ids uuid[],
    at_ms bigint[],
    attempts integer[],
    millis integer[],
    priorities smallint[],
    due_ms bigint[],
    e2e_ms integer[]
)
PARTITION BY RANGE (occurred_at);
CREATE SEQUENCE public.job_events_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.job_events_seq OWNED BY public.job_events.seq;
CREATE TABLE public.job_events_default (
    seq bigint DEFAULT nextval('public.job_events_seq'::regclass) CONSTRAINT job_events_seq_not_null NOT NULL,
    event_id uuid DEFAULT public.jobline_uuid7() CONSTRAINT job_events_event_id_not_null NOT NULL,
    type text CONSTRAINT job_events_type_not_null NOT NULL,
    occurred_at timestamp with time zone CONSTRAINT job_events_occurred_at_not_null NOT NULL,
    job_id uuid,
    queue_name text,
    job_type text,
    attempt integer,
    duration_ms integer,
    wait_ms integer,
    error_type text,
    error text,
    data jsonb,
    status text,
    priority smallint,
    scheduled_for timestamp with time zone,
    batch_id uuid,
    n integer,
    job_ids uuid[],
    at_ms bigint[],
    attempts integer[],
    millis integer[],
    priorities smallint[],
    due_ms bigint[],
    e2e_ms integer[]
);
CREATE TABLE public.job_progress (
    job_id uuid NOT NULL,
    lease_token bigint NOT NULL,
    attempt integer NOT NULL,
    fraction double precision,
    message text,
    logs jsonb DEFAULT '[]'::jsonb NOT NULL,
    logs_dropped integer DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT job_progress_fraction_check CHECK (((fraction IS NULL) OR ((fraction >= (0)::double precision) AND (fraction <= (1)::double precision))))
);
CREATE TABLE public.job_rollup_attempts (
    minute timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    attempt integer NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL
);
CREATE TABLE public.job_rollup_attempts_day (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    attempt integer NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL
);
CREATE TABLE public.job_rollup_attempts_hour (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    attempt integer NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL
);
CREATE TABLE public.job_rollup_errors (
    minute timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    error_type text NOT NULL,
    n bigint NOT NULL
);
CREATE TABLE public.job_rollup_errors_day (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    error_type text NOT NULL,
    n bigint NOT NULL
);
CREATE TABLE public.job_rollup_errors_hour (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    error_type text NOT NULL,
    n bigint NOT NULL
);
CREATE TABLE public.job_rollup_histograms (
    minute timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    metric text NOT NULL,
    bucket smallint NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT job_rollup_histograms_metric_check CHECK ((metric = ANY (ARRAY['duration'::text, 'wait'::text, 'e2e'::text, 'failed'::text])))
);
CREATE TABLE public.job_rollup_histograms_day (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    metric text NOT NULL,
    bucket smallint NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT job_rollup_histograms_metric_check CHECK ((metric = ANY (ARRAY['duration'::text, 'wait'::text, 'e2e'::text, 'failed'::text])))
);
CREATE TABLE public.job_rollup_histograms_hour (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    metric text NOT NULL,
    bucket smallint NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT job_rollup_histograms_metric_check CHECK ((metric = ANY (ARRAY['duration'::text, 'wait'::text, 'e2e'::text, 'failed'::text])))
);
CREATE TABLE public.job_rollups (
    minute timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    submitted bigint DEFAULT 0 NOT NULL,
    started bigint DEFAULT 0 NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    retries bigint DEFAULT 0 NOT NULL,
    dead_letter bigint DEFAULT 0 NOT NULL,
    cancelled bigint DEFAULT 0 NOT NULL,
    duration_sum_ms bigint DEFAULT 0 NOT NULL,
    wait_sum_ms bigint DEFAULT 0 NOT NULL,
    e2e_sum_ms bigint DEFAULT 0 NOT NULL,
    failed_ms bigint DEFAULT 0 NOT NULL
);
CREATE TABLE public.job_rollups_day (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    submitted bigint DEFAULT 0 NOT NULL,
    started bigint DEFAULT 0 NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    retries bigint DEFAULT 0 NOT NULL,
    dead_letter bigint DEFAULT 0 NOT NULL,
    cancelled bigint DEFAULT 0 NOT NULL,
    duration_sum_ms bigint DEFAULT 0 NOT NULL,
    wait_sum_ms bigint DEFAULT 0 NOT NULL,
    e2e_sum_ms bigint DEFAULT 0 NOT NULL,
    failed_ms bigint DEFAULT 0 NOT NULL
);
CREATE TABLE public.job_rollups_hour (
    at timestamp with time zone NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    submitted bigint DEFAULT 0 NOT NULL,
    started bigint DEFAULT 0 NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    retries bigint DEFAULT 0 NOT NULL,
    dead_letter bigint DEFAULT 0 NOT NULL,
    cancelled bigint DEFAULT 0 NOT NULL,
    duration_sum_ms bigint DEFAULT 0 NOT NULL,
    wait_sum_ms bigint DEFAULT 0 NOT NULL,
    e2e_sum_ms bigint DEFAULT 0 NOT NULL,
    failed_ms bigint DEFAULT 0 NOT NULL
);
CREATE TABLE public.job_types (
    job_type text NOT NULL,
    queue_name text,
    max_attempts integer,
    timeout_ms integer,
    backoff jsonb,
    non_retryable text[],
    registered_at timestamp with time zone,
    unhandled_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT job_types_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT job_types_timeout_ms_check CHECK ((timeout_ms > 0))
);
CREATE SEQUENCE public.jobs_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
CREATE TABLE public.jobs (
    id uuid NOT NULL,
    seq bigint DEFAULT nextval('public.jobs_seq'::regclass) NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL,
    priority smallint DEFAULT 5 NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 3 NOT NULL,
    result jsonb,
    error text,
    error_type text,
    created_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    scheduled_for timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    timeout_ms integer,
    idempotency_key text,
    lease_token bigint DEFAULT 0 NOT NULL,
    lease_expires_at timestamp with time zone,
    worker_id text,
    batch_id uuid,
    backoff jsonb,
    deps_remaining integer DEFAULT 0 NOT NULL,
    has_dependents boolean DEFAULT false NOT NULL,
    non_retryable text[],
    cancel_requested_at timestamp with time zone,
    result_ttl_s integer,
    result_expires_at timestamp with time zone,
    result_expired_at timestamp with time zone,
    CONSTRAINT jobs_attempts_check CHECK (((attempts >= 0) AND (max_attempts >= 1))),
    CONSTRAINT jobs_lease_check CHECK (((status <> 'processing'::text) OR (lease_expires_at IS NOT NULL))),
    CONSTRAINT jobs_priority_check CHECK (((priority >= 0) AND (priority <= 10))),
    CONSTRAINT jobs_status_check CHECK ((status = ANY (ARRAY['waiting'::text, 'pending'::text, 'scheduled'::text, 'processing'::text, 'completed'::text, 'failed'::text, 'dead_letter'::text, 'cancelled'::text])))
)
PARTITION BY RANGE (id);
CREATE TABLE public.jobs_default (
    id uuid CONSTRAINT jobs_id_not_null NOT NULL,
    seq bigint DEFAULT nextval('public.jobs_seq'::regclass) CONSTRAINT jobs_seq_not_null NOT NULL,
    queue_name text CONSTRAINT jobs_queue_name_not_null NOT NULL,
    job_type text CONSTRAINT jobs_job_type_not_null NOT NULL,
    payload jsonb CONSTRAINT jobs_payload_not_null NOT NULL,
    status text CONSTRAINT jobs_status_not_null NOT NULL,
    priority smallint DEFAULT 5 CONSTRAINT jobs_priority_not_null NOT NULL,
    attempts integer DEFAULT 0 CONSTRAINT jobs_attempts_not_null NOT NULL,
    max_attempts integer DEFAULT 3 CONSTRAINT jobs_max_attempts_not_null NOT NULL,
    result jsonb,
    error text,
    error_type text,
    created_at timestamp with time zone CONSTRAINT jobs_created_at_not_null NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    scheduled_for timestamp with time zone CONSTRAINT jobs_scheduled_for_not_null NOT NULL,
    updated_at timestamp with time zone CONSTRAINT jobs_updated_at_not_null NOT NULL,
    timeout_ms integer,
    idempotency_key text,
    lease_token bigint DEFAULT 0 CONSTRAINT jobs_lease_token_not_null NOT NULL,
    lease_expires_at timestamp with time zone,
    worker_id text,
    batch_id uuid,
    backoff jsonb,
    deps_remaining integer DEFAULT 0 CONSTRAINT jobs_deps_remaining_not_null NOT NULL,
    has_dependents boolean DEFAULT false CONSTRAINT jobs_has_dependents_not_null NOT NULL,
    non_retryable text[],
    cancel_requested_at timestamp with time zone,
    result_ttl_s integer,
    result_expires_at timestamp with time zone,
    result_expired_at timestamp with time zone,
    CONSTRAINT jobs_attempts_check CHECK (((attempts >= 0) AND (max_attempts >= 1))),
    CONSTRAINT jobs_lease_check CHECK (((status <> 'processing'::text) OR (lease_expires_at IS NOT NULL))),
    CONSTRAINT jobs_priority_check CHECK (((priority >= 0) AND (priority <= 10))),
    CONSTRAINT jobs_status_check CHECK ((status = ANY (ARRAY['waiting'::text, 'pending'::text, 'scheduled'::text, 'processing'::text, 'completed'::text, 'failed'::text, 'dead_letter'::text, 'cancelled'::text])))
);
CREATE TABLE public.labelled_incidents (
    id bigint NOT NULL,
    source text NOT NULL,
    kind text NOT NULL,
    queue_name text,
    job_type text,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT labelled_incidents_kind_check CHECK ((kind = ANY (ARRAY['failure_spike'::text, 'slowdown'::text, 'worker_crash_wave'::text, 'outage'::text, 'rate_limit'::text, 'backlog'::text])))
);
CREATE SEQUENCE public.labelled_incidents_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.labelled_incidents_id_seq OWNED BY public.labelled_incidents.id;
CREATE TABLE public.queue_costs (
    queue_name text NOT NULL,
    price_per_worker_hour numeric(12,4) NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT queue_costs_price_per_worker_hour_check CHECK ((price_per_worker_hour >= (0)::numeric))
);
CREATE TABLE public.queue_count_deltas (
    queue_name text NOT NULL,
    status text NOT NULL,
    delta bigint NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='5000', autovacuum_vacuum_insert_threshold='5000', autovacuum_vacuum_insert_scale_factor='0');
CREATE TABLE public.queue_counts (
    queue_name text NOT NULL,
    status text NOT NULL,
    n bigint NOT NULL
)
WITH (fillfactor='50');
CREATE TABLE public.queue_slas (
    queue_name text NOT NULL,
    objective double precision NOT NULL,
    target_ms bigint NOT NULL,
    metric text DEFAULT 'e2e'::text NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT queue_slas_metric_check CHECK ((metric = ANY (ARRAY['e2e'::text, 'wait'::text]))),
    CONSTRAINT queue_slas_objective_check CHECK (((objective > (0)::double precision) AND (objective < (1)::double precision))),
    CONSTRAINT queue_slas_target_ms_check CHECK ((target_ms > 0))
);
CREATE TABLE public.queues (
    name text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    max_in_flight integer,
    controls_version bigint DEFAULT 0 NOT NULL,
    rate_limit integer,
    rate_window_ms integer,
    CONSTRAINT queues_max_in_flight_check CHECK (((max_in_flight IS NULL) OR (max_in_flight >= 0))),
    CONSTRAINT queues_rate_limit_check CHECK ((((rate_limit IS NULL) = (rate_window_ms IS NULL)) AND ((rate_limit IS NULL) OR ((rate_limit >= 1) AND (rate_window_ms >= 1)))))
);
CREATE TABLE public.retry_policies (
    job_type text NOT NULL,
    max_attempts integer,
    base_ms bigint,
    factor double precision,
    cap_ms bigint,
    jitter boolean,
    non_retryable text[],
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    adaptive boolean,
    CONSTRAINT retry_policies_backoff_check CHECK (((base_ms >= 0) AND (cap_ms >= 0) AND (factor >= (1)::double precision))),
    CONSTRAINT retry_policies_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 100)))
);
CREATE TABLE public.rollup_watermark (
    id integer DEFAULT 1 NOT NULL,
    compacted_through timestamp with time zone NOT NULL,
    CONSTRAINT rollup_watermark_id_check CHECK ((id = 1))
);
CREATE TABLE public.schedule_runs (
    schedule_id uuid NOT NULL,
    fire_at timestamp with time zone NOT NULL,
    job_id uuid,
    outcome text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT schedule_runs_outcome_check CHECK ((outcome = ANY (ARRAY['submitted'::text, 'caught_up'::text, 'skipped_overlap'::text])))
);
CREATE TABLE public.schedules (
    id uuid NOT NULL,
    name text NOT NULL,
    queue_name text NOT NULL,
    job_type text NOT NULL,
    payload jsonb NOT NULL,
    schedule text NOT NULL,
    timezone text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    overlap_policy text DEFAULT 'allow'::text NOT NULL,
    catch_up text DEFAULT 'run_once'::text NOT NULL,
    priority smallint DEFAULT 5 NOT NULL,
    max_attempts integer,
    timeout_ms integer,
    next_run_at timestamp with time zone,
    last_run_at timestamp with time zone,
    last_job_id uuid,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT schedules_catch_up_check CHECK ((catch_up = ANY (ARRAY['skip'::text, 'run_once'::text]))),
    CONSTRAINT schedules_overlap_check CHECK ((overlap_policy = ANY (ARRAY['skip'::text, 'allow'::text]))),
    CONSTRAINT schedules_priority_check CHECK (((priority >= 0) AND (priority <= 10)))
);
CREATE TABLE public.worker_crashes (
    worker_id text NOT NULL,
    group_name text NOT NULL,
    at timestamp with time zone NOT NULL,
    exit_code integer,
    detail text
);
CREATE TABLE public.worker_group_history (
    group_name text NOT NULL,
    minute timestamp with time zone NOT NULL,
    desired integer NOT NULL,
    actual integer NOT NULL,
    busy integer NOT NULL,
    capacity integer NOT NULL
);
CREATE TABLE public.worker_groups (
    name text NOT NULL,
    desired integer NOT NULL,
    autoscale jsonb,
    scaled_at timestamp with time zone,
    scaled_reason text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_by text,
    CONSTRAINT worker_groups_desired_check CHECK (((desired >= 0) AND (desired <= 1000))),
    CONSTRAINT worker_groups_name_check CHECK ((name ~ '^[A-Za-z0-9_.-]{1,64}$'::text))
);
ALTER TABLE ONLY public.job_attempts ATTACH PARTITION public.job_attempts_default DEFAULT;
ALTER TABLE ONLY public.job_events ATTACH PARTITION public.job_events_default DEFAULT;
ALTER TABLE ONLY public.jobs ATTACH PARTITION public.jobs_default DEFAULT;
ALTER TABLE ONLY public.ai_anomalies ALTER COLUMN id SET DEFAULT nextval('public.ai_anomalies_id_seq'::regclass);
ALTER TABLE ONLY public.ai_models ALTER COLUMN id SET DEFAULT nextval('public.ai_models_id_seq'::regclass);
ALTER TABLE ONLY public.job_events ALTER COLUMN seq SET DEFAULT nextval('public.job_events_seq'::regclass);
ALTER TABLE ONLY public.labelled_incidents ALTER COLUMN id SET DEFAULT nextval('public.labelled_incidents_id_seq'::regclass);
ALTER TABLE ONLY public.ai_anomalies
    ADD CONSTRAINT ai_anomalies_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.ai_models
    ADD CONSTRAINT ai_models_kind_version_key UNIQUE (kind, version);
ALTER TABLE ONLY public.ai_models
    ADD CONSTRAINT ai_models_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.ai_state
    ADD CONSTRAINT ai_state_pkey PRIMARY KEY (key);
ALTER TABLE ONLY public.alert_channels
    ADD CONSTRAINT alert_channels_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.alert_deliveries
    ADD CONSTRAINT alert_deliveries_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.alert_rules
    ADD CONSTRAINT alert_rules_builtin_key UNIQUE (builtin);
ALTER TABLE ONLY public.alert_rules
    ADD CONSTRAINT alert_rules_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.alert_silences
    ADD CONSTRAINT alert_silences_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.analytics_samples_hour
    ADD CONSTRAINT analytics_samples_hour_pkey PRIMARY KEY (metric, subject, at);
ALTER TABLE ONLY public.analytics_samples
    ADD CONSTRAINT analytics_samples_pkey PRIMARY KEY (metric, subject, minute);
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_hash_key UNIQUE (key_hash);
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_prefix_key UNIQUE (prefix);
ALTER TABLE ONLY public.consumer_watermarks
    ADD CONSTRAINT consumer_watermarks_pkey PRIMARY KEY (consumer, part);
ALTER TABLE ONLY public.event_relay_state
    ADD CONSTRAINT event_relay_state_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key);
ALTER TABLE ONLY public.job_attempts
    ADD CONSTRAINT job_attempts_pkey PRIMARY KEY (job_id, lease_token);
ALTER TABLE ONLY public.job_attempts_default
    ADD CONSTRAINT job_attempts_default_pkey PRIMARY KEY (job_id, lease_token);
ALTER TABLE ONLY public.job_batches
    ADD CONSTRAINT job_batches_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.job_dependencies
    ADD CONSTRAINT job_dependencies_pkey PRIMARY KEY (job_id, depends_on);
ALTER TABLE ONLY public.job_events
    ADD CONSTRAINT job_events_pkey PRIMARY KEY (seq, occurred_at);
ALTER TABLE ONLY public.job_events_default
    ADD CONSTRAINT job_events_default_pkey PRIMARY KEY (seq, occurred_at);
ALTER TABLE ONLY public.job_progress
    ADD CONSTRAINT job_progress_pkey PRIMARY KEY (job_id, lease_token);
ALTER TABLE ONLY public.job_rollup_attempts_day
    ADD CONSTRAINT job_rollup_attempts_day_pkey PRIMARY KEY (at, queue_name, job_type, attempt);
ALTER TABLE ONLY public.job_rollup_attempts_hour
    ADD CONSTRAINT job_rollup_attempts_hour_pkey PRIMARY KEY (at, queue_name, job_type, attempt);
ALTER TABLE ONLY public.job_rollup_attempts
    ADD CONSTRAINT job_rollup_attempts_pkey PRIMARY KEY (minute, queue_name, job_type, attempt);
ALTER TABLE ONLY public.job_rollup_errors_day
    ADD CONSTRAINT job_rollup_errors_day_pkey PRIMARY KEY (at, queue_name, job_type, error_type);
ALTER TABLE ONLY public.job_rollup_errors_hour
    ADD CONSTRAINT job_rollup_errors_hour_pkey PRIMARY KEY (at, queue_name, job_type, error_type);
ALTER TABLE ONLY public.job_rollup_errors
    ADD CONSTRAINT job_rollup_errors_pkey PRIMARY KEY (minute, queue_name, job_type, error_type);
ALTER TABLE ONLY public.job_rollup_histograms_day
    ADD CONSTRAINT job_rollup_histograms_day_pkey PRIMARY KEY (at, queue_name, job_type, metric, bucket);
ALTER TABLE ONLY public.job_rollup_histograms_hour
    ADD CONSTRAINT job_rollup_histograms_hour_pkey PRIMARY KEY (at, queue_name, job_type, metric, bucket);
ALTER TABLE ONLY public.job_rollup_histograms
    ADD CONSTRAINT job_rollup_histograms_pkey PRIMARY KEY (minute, queue_name, job_type, metric, bucket);
ALTER TABLE ONLY public.job_rollups_day
    ADD CONSTRAINT job_rollups_day_pkey PRIMARY KEY (at, queue_name, job_type);
ALTER TABLE ONLY public.job_rollups_hour
    ADD CONSTRAINT job_rollups_hour_pkey PRIMARY KEY (at, queue_name, job_type);
ALTER TABLE ONLY public.job_rollups
    ADD CONSTRAINT job_rollups_pkey PRIMARY KEY (minute, queue_name, job_type);
ALTER TABLE ONLY public.job_types
    ADD CONSTRAINT job_types_pkey PRIMARY KEY (job_type);
ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.jobs_default
    ADD CONSTRAINT jobs_default_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.labelled_incidents
    ADD CONSTRAINT labelled_incidents_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.queue_costs
    ADD CONSTRAINT queue_costs_pkey PRIMARY KEY (queue_name);
ALTER TABLE ONLY public.queue_counts
    ADD CONSTRAINT queue_counts_pkey PRIMARY KEY (queue_name, status);
ALTER TABLE ONLY public.queue_slas
    ADD CONSTRAINT queue_slas_pkey PRIMARY KEY (queue_name);
ALTER TABLE ONLY public.queues
    ADD CONSTRAINT queues_pkey PRIMARY KEY (name);
ALTER TABLE ONLY public.retry_policies
    ADD CONSTRAINT retry_policies_pkey PRIMARY KEY (job_type);
ALTER TABLE ONLY public.rollup_watermark
    ADD CONSTRAINT rollup_watermark_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.schedule_runs
    ADD CONSTRAINT schedule_runs_pkey PRIMARY KEY (schedule_id, fire_at);
ALTER TABLE ONLY public.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.worker_crashes
    ADD CONSTRAINT worker_crashes_pkey PRIMARY KEY (worker_id);
ALTER TABLE ONLY public.worker_group_history
    ADD CONSTRAINT worker_group_history_pkey PRIMARY KEY (group_name, minute);
ALTER TABLE ONLY public.worker_groups
    ADD CONSTRAINT worker_groups_pkey PRIMARY KEY (name);
CREATE INDEX ai_anomalies_detected ON public.ai_anomalies USING btree (detected_at);
CREATE UNIQUE INDEX ai_anomalies_one_open ON public.ai_anomalies USING btree (queue_name, metric) WHERE (ended_at IS NULL);
CREATE INDEX alert_deliveries_alert ON public.alert_deliveries USING btree (alert_id, created_at);
CREATE INDEX alert_deliveries_unsubmitted ON public.alert_deliveries USING btree (created_at) WHERE (job_id IS NULL);
CREATE INDEX alert_rules_due ON public.alert_rules USING btree (next_eval_at) WHERE enabled;
CREATE INDEX alert_silences_ends ON public.alert_silences USING btree (ends_at);
CREATE INDEX alerts_open ON public.alerts USING btree (status) WHERE (status = ANY (ARRAY['pending'::text, 'firing'::text]));
CREATE INDEX alerts_rule ON public.alerts USING btree (rule_id, started_at DESC);
CREATE INDEX alerts_started ON public.alerts USING btree (started_at DESC, id DESC);
CREATE INDEX job_dependencies_depends_on ON public.job_dependencies USING btree (depends_on);
CREATE INDEX job_events_job ON ONLY public.job_events USING btree (job_id, occurred_at);
CREATE INDEX job_events_default_job_id_occurred_at_idx ON public.job_events_default USING btree (job_id, occurred_at);
CREATE INDEX job_events_job_ids ON ONLY public.job_events USING gin (job_ids);
CREATE INDEX job_events_default_job_ids_idx ON public.job_events_default USING gin (job_ids);
CREATE INDEX job_events_time ON ONLY public.job_events USING btree (occurred_at, event_id);
CREATE INDEX job_events_default_occurred_at_event_id_idx ON public.job_events_default USING btree (occurred_at, event_id);
CREATE INDEX job_rollup_histograms_day_metric ON public.job_rollup_histograms_day USING btree (metric, at, queue_name, job_type, bucket) INCLUDE (n);
CREATE INDEX job_rollup_histograms_hour_metric ON public.job_rollup_histograms_hour USING btree (metric, at, queue_name, job_type, bucket) INCLUDE (n);
CREATE INDEX jobs_batch_status ON ONLY public.jobs USING btree (batch_id, status) WHERE (batch_id IS NOT NULL);
CREATE INDEX jobs_default_batch_id_status_idx ON public.jobs_default USING btree (batch_id, status) WHERE (batch_id IS NOT NULL);
CREATE INDEX jobs_type_id ON ONLY public.jobs USING btree (job_type, id);
CREATE INDEX jobs_default_job_type_id_idx ON public.jobs_default USING btree (job_type, id);
CREATE INDEX jobs_lease_expiry ON ONLY public.jobs USING btree (lease_expires_at) WHERE (status = 'processing'::text);
CREATE INDEX jobs_default_lease_expires_at_idx ON public.jobs_default USING btree (lease_expires_at) WHERE (status = 'processing'::text);
CREATE INDEX jobs_queue_status_sched ON ONLY public.jobs USING btree (queue_name, status, scheduled_for) WHERE (status <> ALL ('{completed,cancelled}'::text[]));
CREATE INDEX jobs_default_queue_name_status_scheduled_for_idx ON public.jobs_default USING btree (queue_name, status, scheduled_for) WHERE (status <> ALL ('{completed,cancelled}'::text[]));
CREATE INDEX jobs_result_expires ON ONLY public.jobs USING btree (result_expires_at) WHERE (result_expires_at IS NOT NULL);
CREATE INDEX jobs_default_result_expires_at_idx ON public.jobs_default USING btree (result_expires_at) WHERE (result_expires_at IS NOT NULL);
CREATE INDEX jobs_status_id ON ONLY public.jobs USING btree (status, id);
CREATE INDEX jobs_default_status_id_idx ON public.jobs_default USING btree (status, id);
CREATE INDEX schedules_due ON public.schedules USING btree (next_run_at) WHERE (enabled AND (next_run_at IS NOT NULL));
CREATE INDEX worker_crashes_group_at ON public.worker_crashes USING btree (group_name, at);
ALTER INDEX public.job_attempts_pkey ATTACH PARTITION public.job_attempts_default_pkey;
ALTER INDEX public.job_events_job ATTACH PARTITION public.job_events_default_job_id_occurred_at_idx;
ALTER INDEX public.job_events_job_ids ATTACH PARTITION public.job_events_default_job_ids_idx;
ALTER INDEX public.job_events_time ATTACH PARTITION public.job_events_default_occurred_at_event_id_idx;
ALTER INDEX public.job_events_pkey ATTACH PARTITION public.job_events_default_pkey;
ALTER INDEX public.jobs_batch_status ATTACH PARTITION public.jobs_default_batch_id_status_idx;
ALTER INDEX public.jobs_type_id ATTACH PARTITION public.jobs_default_job_type_id_idx;
ALTER INDEX public.jobs_lease_expiry ATTACH PARTITION public.jobs_default_lease_expires_at_idx;
ALTER INDEX public.jobs_pkey ATTACH PARTITION public.jobs_default_pkey;
ALTER INDEX public.jobs_queue_status_sched ATTACH PARTITION public.jobs_default_queue_name_status_scheduled_for_idx;
ALTER INDEX public.jobs_result_expires ATTACH PARTITION public.jobs_default_result_expires_at_idx;
ALTER INDEX public.jobs_status_id ATTACH PARTITION public.jobs_default_status_id_idx;
CREATE TRIGGER jobs_counts_deleted AFTER DELETE ON public.jobs REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION public.jobline_queue_counts_deleted();
CREATE TRIGGER jobs_counts_inserted AFTER INSERT ON public.jobs REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION public.jobline_queue_counts_inserted();
CREATE TRIGGER jobs_counts_truncated AFTER TRUNCATE ON public.jobs FOR EACH STATEMENT EXECUTE FUNCTION public.jobline_queue_counts_truncated();
CREATE TRIGGER jobs_counts_updated AFTER UPDATE ON public.jobs REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION public.jobline_queue_counts_updated();
CREATE TRIGGER jobs_inserted_events AFTER INSERT ON public.jobs REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION public.jobline_jobs_inserted_events();
CREATE TRIGGER jobs_updated_events AFTER UPDATE ON public.jobs REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION public.jobline_jobs_updated_events();
