"""Every SQL statement the core runs, named after the transition it performs.

Conventions: times arrive as parameters from the injected clock (never ``now()``); batch
statements take parallel arrays and ``unnest`` them, so a batch of any size is one round trip;
every write to a running job is fenced by ``lease_token`` and ``status = 'processing'``.

Statements that address jobs by id test status as ``(status || '')``, an expression no index
covers, so the primary key is the only index they can use. jobs.status changes faster than
ANALYZE samples it: a snapshot taken while a drained queue held only completed rows says no
row is pending, and the planner then walked a status index through the whole backlog for
every claim (PostgreSQL 18 can skip-scan (queue_name, status, scheduled_for) for status alone)
instead of probing the primary key once per id. On the benchmark that cost a third of the
processing rate after such an ANALYZE; tests/test_core.py checks the plans.

Every statement that changes ``jobs.status`` is named after its :class:`~.edges.Edges` in
:mod:`jobline.shared.core.edges` and formats its status guard from it (``E.X.guard()``), so the
states it may start from are the declared ones (checked against ``TRANSITIONS``).
"""

from jobline.shared.core import edges as E
from jobline.shared.core.models import Status

# The precedence at submit, written once (docs/retry-policy.md, docs/job-types.md) and used by
# both ways in (INSERT_JOBS, and RESOLVE_JOB_DEFAULTS for the COPY path): over a row ``u`` (``ma``
# the submission's maxAttempts, ``bo`` its backoff as JSON text, already stripped of nulls,
# ``maf`` the submitter's handler decorator's or the global default, ``q``/``qx`` the queue and
# whether the submission named it, ``tmo`` the submission's timeout and ``tmf`` the submitter's
# handler's), the stored policy ``rp`` of its type and the job-type registry row ``jt``.
# maxAttempts = submission > stored policy > registry > handler/global; backoff merges key by key,
# the submission's keys over the policy's over the registry's. An empty merge is NULL (= the
# global default). queue = submission > registry > the submitter's fallback (its handler's, else
# 'default'); timeout = submission > registry > the submitter's handler.
_RESOLVED_MAX_ATTEMPTS = "COALESCE(u.ma, rp.max_attempts, jt.max_attempts, u.maf)"
_RESOLVED_BACKOFF = """NULLIF(COALESCE(jt.backoff, '{}'::jsonb)
              || jsonb_strip_nulls(jsonb_build_object('baseMs', rp.base_ms, 'factor', rp.factor,
                                                      'capMs', rp.cap_ms, 'jitter', rp.jitter,
                                                      'adaptive', rp.adaptive))
              || COALESCE(u.bo::jsonb, '{}'::jsonb), '{}'::jsonb)"""
_RESOLVED_QUEUE = "CASE WHEN u.qx THEN u.q ELSE COALESCE(jt.queue_name, u.q) END"
_RESOLVED_TIMEOUT = "COALESCE(u.tmo, jt.timeout_ms, u.tmf)"
_DEFAULTS_JOIN = """LEFT JOIN retry_policies rp ON rp.job_type = u.t
LEFT JOIN job_types jt ON jt.job_type = u.t"""

# The stored per-type retry policy and the registered defaults are resolved here, in the INSERT
# itself, so a plain submit is one statement (one round trip, autocommit) instead of BEGIN +
# SELECTs + INSERT + COMMIT. $7 = ma, $12 = bo, $16 = maf, $17 = qx, $18 = tmf of _RESOLVED_*.
# RETURNING the queue: a job that did not name one learns it here.
INSERT_JOBS = f"""
INSERT INTO jobs (id, queue_name, job_type, payload, status, priority, max_attempts, created_at,
                  scheduled_for, updated_at, timeout_ms, idempotency_key, batch_id, backoff,
                  non_retryable, deps_remaining, result_ttl_s)
SELECT u.id, {_RESOLVED_QUEUE}, u.t, u.p::jsonb, u.s, u.pr, {_RESOLVED_MAX_ATTEMPTS}, $14, u.due,
       $14, {_RESOLVED_TIMEOUT}, u.ik, u.bid,
       {_RESOLVED_BACKOFF},
       -- a ragged list per row cannot be a 2-D array, so each arrives as a JSON array text
       CASE WHEN u.nr IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(u.nr::jsonb)) END,
       u.dr, u.rttl
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[],
            $7::int[], $8::timestamptz[], $9::int[], $10::text[], $11::uuid[], $12::text[],
            $13::text[], $15::int[], $16::int[], $17::bool[], $18::int[], $19::int[]) WITH ORDINALITY
     AS u(id, q, t, p, s, pr, ma, due, tmo, ik, bid, bo, nr, dr, maf, qx, tmf, rttl, ord)
{_DEFAULTS_JOIN}
-- seq (FIFO within a priority) is drawn in insertion order; the join may reorder rows
ORDER BY u.ord
RETURNING id, seq, queue_name
"""

# The same resolution for the COPY path (which cannot join), once per distinct combination of
# (job type, submission maxAttempts, submission backoff, handler/global maxAttempts, queue,
# queue named, submission timeout, handler timeout).
RESOLVE_JOB_DEFAULTS = f"""
SELECT u.ord, {_RESOLVED_MAX_ATTEMPTS} AS max_attempts, {_RESOLVED_BACKOFF} AS backoff,
       {_RESOLVED_QUEUE} AS queue_name, {_RESOLVED_TIMEOUT} AS timeout_ms
FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::text[], $6::bool[], $7::int[],
            $8::int[]) WITH ORDINALITY AS u(t, ma, bo, maf, q, qx, tmo, tmf, ord)
{_DEFAULTS_JOIN}
"""

# A contiguous-in-order range of job seqs for a COPY batch (FIFO follows the batch order).
DRAW_SEQS = "SELECT array(SELECT nextval('jobs_seq') FROM generate_series(1, $1))"

UPSERT_QUEUES = """
INSERT INTO queues (name, created_at) SELECT unnest($1::text[]), $2 ON CONFLICT (name) DO NOTHING
"""

# A key whose previous holder expired is taken over; a live key is left alone and reported absent
# from RETURNING, which is how the caller learns it is a duplicate. Concurrent inserts of the
# same key serialise on the unique index, so exactly one submitter wins.
CLAIM_IDEMPOTENCY_KEYS = """
INSERT INTO idempotency_keys (key, job_id, created_at, expires_at)
SELECT k, j, $3, $4 FROM unnest($1::text[], $2::uuid[]) AS u(k, j)
ON CONFLICT (key) DO UPDATE
   SET job_id = EXCLUDED.job_id, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
 WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
RETURNING key
"""

EXISTING_IDEMPOTENCY_JOBS = """
SELECT k.key, j.id, j.status, j.queue_name, j.seq, j.job_type, j.payload::text AS payload
FROM idempotency_keys k JOIN jobs j ON j.id = k.job_id
WHERE k.key = ANY($1::text[])
"""

# The claim and the completion write their own outbox rows (jobs.started, jobs.completed) in a
# CTE: one statement row per (queue, job type, minute, jobs.seq / 1000), as the triggers write
# the other events (migration 0019). In the trigger this was ~170 µs of PostgreSQL per
# statement (the plan of a query over transition tables is made again on every call); here it
# is part of a prepared statement's plan. Nothing is written with JOBLINE_EVENTS=off.
_EVENTS_ON = "current_setting('jobline.events', true) IS DISTINCT FROM 'off'"
_MS = "least(greatest(0, extract(epoch FROM {0}) * 1000), 2147483647)::int"

CLAIM_JOBS = f"""
WITH c AS (
    UPDATE jobs
       SET status = 'processing', attempts = attempts + 1, lease_token = lease_token + 1,
           -- a delayed job (due after it was created) never starts before it was due; an
           -- immediate one's due time is its submitter's clock, which the claim's need not follow
           started_at = CASE WHEN scheduled_for > created_at THEN greatest($2, scheduled_for)
                             ELSE $2 END,
           lease_expires_at = $3, worker_id = $4, updated_at = $2
     WHERE id = ANY($1::uuid[]) AND (status || '') IN {E.CLAIM_JOBS.guard()}
    RETURNING id, queue_name, job_type, payload, attempts, max_attempts, lease_token,
              timeout_ms, backoff, seq, scheduled_for, started_at
), ev AS (
    INSERT INTO job_events (event_id, type, occurred_at, queue_name, job_type, n, job_ids,
                            at_ms, attempts, millis)
    SELECT jobline_event_base_id(), 'jobs.started', $2, queue_name, job_type,
           count(*), array_agg(id), array_agg((extract(epoch FROM started_at) * 1000)::bigint),
           array_agg(attempts), array_agg({_MS.format("started_at - scheduled_for")})
      FROM c WHERE {_EVENTS_ON}
     GROUP BY queue_name, job_type, seq / 1000
)
SELECT id, queue_name, job_type, payload::text AS payload, attempts, max_attempts, lease_token,
       timeout_ms, backoff, started_at
  FROM c
"""

COMPLETE_JOBS = f"""
WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $6::int[])
             AS u(id, token, res, finished, httl)
), done AS (
    -- result TTL: the job's own, else its handler's ($6), else the global default ($7);
    -- 0 keeps the result (jobline.shared.core.results)
    UPDATE jobs j
       SET status = 'completed', result = u.res::jsonb, completed_at = u.finished,
           updated_at = u.finished, lease_expires_at = NULL, error = NULL, error_type = NULL,
           result_expires_at = CASE WHEN coalesce(j.result_ttl_s, u.httl, $7) > 0
                                    THEN u.finished + make_interval(
                                        secs => coalesce(j.result_ttl_s, u.httl, $7)) END
      FROM u
     WHERE j.id = u.id AND j.lease_token = u.token AND (j.status || '') IN {E.COMPLETE_JOBS.guard()}
       -- $5: the fast path, only jobs whose completion affects no other job (no dependents,
       -- no batch); the rest complete in a transaction with their follow-ups (jobs.complete)
       AND (NOT $5 OR (NOT j.has_dependents AND j.batch_id IS NULL))
    RETURNING j.id, j.queue_name, j.attempts, j.worker_id, j.started_at, j.lease_token, u.finished,
              j.batch_id, j.job_type, j.seq, j.scheduled_for, j.created_at
), hist AS (
    INSERT INTO job_attempts (job_id, lease_token, attempt, worker_id, started_at, finished_at,
                              outcome, duration_ms, due_at, counted, next_status)
    SELECT id, lease_token, attempts, worker_id, started_at, finished, 'completed',
           {_MS.format("finished - started_at")}, scheduled_for, true, 'completed'
      FROM done
), ev AS (
    -- e2e_ms (created -> completed) feeds the e2e rollups (migration 0023)
    INSERT INTO job_events (event_id, type, occurred_at, queue_name, job_type, n, job_ids,
                            at_ms, attempts, millis, e2e_ms)
    SELECT jobline_event_base_id(), 'jobs.completed', min(finished), queue_name, job_type,
           count(*), array_agg(id), array_agg((extract(epoch FROM finished) * 1000)::bigint),
           array_agg(attempts), array_agg({_MS.format("finished - started_at")}),
           array_agg({_MS.format("finished - created_at")})
      FROM done WHERE {_EVENTS_ON}
     GROUP BY queue_name, job_type, date_trunc('minute', finished), seq / 1000
)
SELECT id, queue_name, batch_id FROM done
"""

# One statement decides each failed attempt's fate:
#   cancelled   when the outcome is a cancel, or a cancel was requested while the job ran;
#   terminal    (dead letter) when the handler said so (final), when a counted attempt was the
#               last one, or when the error type is non-retryable for this job;
#   otherwise   back to pending/scheduled at retry_at.
# Non-retryable types come from the first level that sets them: the job's own list, the stored
# policy of its type, the handler's list ($13, from the worker), the job-type registry, the
# global setting ($14). Only
# classified outcomes ($11) are checked: an explicit Retry or a release is the handler's call.
# burn = false (snooze, rate limit, warm-shutdown release) gives the attempt back.
FAIL_JOBS = f"""
WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[],
                         $6::bool[], $7::bool[], $8::text[], $9::timestamptz[], $11::bool[],
                         $12::bool[], $13::text[], $15::text[])
             AS u(id, token, err, etype, retry_at, burn, final, outcome, finished, classify,
                  cancel, hnr, dec)
), cur AS (
    SELECT j.id, j.attempts, j.max_attempts, u.token, u.err, u.etype, u.retry_at, u.burn,
           u.final, u.outcome, u.finished, j.scheduled_for AS due, u.dec,
           (u.cancel OR j.cancel_requested_at IS NOT NULL) AS cancelled,
           (u.final OR (u.burn AND j.attempts >= j.max_attempts)
            OR coalesce(u.classify AND u.etype = ANY(coalesce(
                   j.non_retryable, p.non_retryable,
                   CASE WHEN u.hnr IS NOT NULL
                        THEN ARRAY(SELECT jsonb_array_elements_text(u.hnr::jsonb)) END,
                   jt.non_retryable, $14::text[])), false)) AS terminal
      FROM jobs j JOIN u ON j.id = u.id AND j.lease_token = u.token
      LEFT JOIN retry_policies p ON p.job_type = j.job_type
      LEFT JOIN job_types jt ON jt.job_type = j.job_type
     WHERE (j.status || '') IN {E.FAIL_JOBS.guard()}
), upd AS (
    UPDATE jobs j
       SET attempts = CASE WHEN c.burn THEN j.attempts ELSE j.attempts - 1 END,
           status = CASE WHEN c.cancelled THEN 'cancelled'
                         WHEN c.terminal THEN $10
                         WHEN c.retry_at <= c.finished THEN 'pending'
                         ELSE 'scheduled' END,
           error = coalesce(c.err, j.error), error_type = coalesce(c.etype, j.error_type),
           scheduled_for = CASE WHEN c.terminal OR c.cancelled THEN j.scheduled_for
                                ELSE c.retry_at END,
           completed_at = CASE WHEN c.terminal OR c.cancelled THEN c.finished END,
           lease_expires_at = NULL, updated_at = c.finished
      FROM cur c
     WHERE j.id = c.id AND j.lease_token = c.token AND (j.status || '') IN {E.FAIL_JOBS.guard()}
    RETURNING j.id, j.queue_name, j.status, j.priority, j.seq, j.scheduled_for, j.lease_token,
              c.attempts AS attempt, j.worker_id, j.started_at,
              CASE WHEN c.cancelled THEN 'cancelled' ELSE c.outcome END AS outcome, c.err,
              j.error_type AS etype, c.finished, j.batch_id, c.due, c.burn, c.dec
), hist AS (
    -- etype is the job's error type after the attempt (the attempt's, else the job's last
    -- one), as its jobs.failed event reports it; due/burn/status: migration 0023; the retry
    -- advisor's decision (adaptive jobs only): 0029
    INSERT INTO job_attempts (job_id, lease_token, attempt, worker_id, started_at, finished_at,
                              outcome, error_type, error, duration_ms, due_at, counted,
                              next_status, retry_decision)
    SELECT id, lease_token, attempt, worker_id, started_at, finished, outcome, etype, err,
           least(greatest(0, extract(epoch FROM finished - started_at) * 1000), 2147483647)::int,
           due, burn, status, dec::jsonb
      FROM upd
)
SELECT id, queue_name, status, priority, seq, scheduled_for, batch_id FROM upd
"""

EXTEND_LEASES = """
UPDATE jobs j SET lease_expires_at = $3
  FROM unnest($1::uuid[], $2::bigint[]) AS u(id, token)
 WHERE j.id = u.id AND j.lease_token = u.token AND (j.status || '') = 'processing'
RETURNING j.id, j.cancel_requested_at IS NOT NULL AS cancel_requested
"""

# Not started: cancelled now. Running: only the request is recorded (first time kept), the
# attempt's end makes it cancelled (FAIL_JOBS). One statement, so a job that is claimed or
# finishes concurrently is handled by whichever state it is in when the row lock is taken.
CANCEL_OR_REQUEST = f"""
-- $1 the ids, $4 false: leave running jobs alone (a queue purge cancels only what has not
-- started; a job claimed since it was selected keeps running).
UPDATE jobs
   SET status = CASE WHEN status = 'processing' THEN status ELSE 'cancelled' END,
       completed_at = CASE WHEN status = 'processing' THEN completed_at ELSE $2 END,
       cancel_requested_at = CASE WHEN status = 'processing'
                                  THEN coalesce(cancel_requested_at, $2) END,
       error = CASE WHEN status = 'processing' THEN error ELSE coalesce($3, error) END,
       updated_at = $2
 WHERE id = ANY($1::uuid[]) AND status IN {E.CANCEL_OR_REQUEST.guard(Status.PROCESSING)}
   AND ($4 OR status <> 'processing')
RETURNING id, queue_name, status, worker_id, batch_id
"""

# A queue purge's next batch: jobs of $1 not started yet, created before the purge began ($2,
# a uuid7 floor of its start: jobs submitted during the purge are left alone, and it ends).
# Cancelled ones drop out of the filter, so each batch is a fresh LIMIT, not an offset.
PURGE_CANDIDATES = """
SELECT id FROM jobs
 WHERE queue_name = $1 AND status = ANY('{pending,scheduled}'::text[]) AND id < $2
 LIMIT $3
"""

JOB_STATUS = "SELECT id, status, queue_name FROM jobs WHERE id = $1"

JOB_STATUSES = """
SELECT id, status, queue_name, priority, seq, scheduled_for, lease_expires_at
  FROM jobs WHERE id = ANY($1::uuid[])
"""

GET_JOB = """
SELECT id, queue_name, job_type, payload, status, priority, attempts, max_attempts, result, error,
       error_type, created_at, started_at, completed_at, scheduled_for, timeout_ms,
       idempotency_key, worker_id, batch_id, seq, result_ttl_s, result_expires_at,
       result_expired_at
  FROM jobs WHERE id = $1
"""

GET_ATTEMPTS = """
SELECT attempt, worker_id, started_at, finished_at, outcome, error_type, error, duration_ms,
       lease_token, retry_decision::text AS retry_decision
  FROM job_attempts WHERE job_id = $1 ORDER BY lease_token
"""

EXPIRED_LEASES = """
SELECT id, queue_name, lease_token, attempts, max_attempts, backoff
  FROM jobs
 WHERE status = 'processing' AND lease_expires_at < $1
 ORDER BY lease_expires_at
 LIMIT $2
   FOR UPDATE SKIP LOCKED
"""

# Keyset scan used by reconcile; ordered by id so it can resume after each page.
DISPATCHABLE_PAGE = """
SELECT id, queue_name, status, priority, seq, scheduled_for, lease_expires_at
  FROM jobs
 WHERE status = $3 AND id > $1 AND id < $4
 ORDER BY id
 LIMIT $2
"""

QUEUE_CONTROLS = """
SELECT name, paused, max_in_flight, controls_version, rate_limit, rate_window_ms
  FROM queues ORDER BY name
"""

# Upserts so a queue can be paused (or capped) before its first job arrives: a paused queue is
# how a backlog is staged. $3 true = set max_in_flight to $4 (NULL = no cap), else keep it; $2
# NULL keeps paused. The version bump orders the Redis mirrors of racing changes.
SET_QUEUE_CONTROLS = """
INSERT INTO queues AS q (name, created_at, paused, max_in_flight, controls_version)
VALUES ($1, $5, coalesce($2, false), CASE WHEN $3 THEN $4::int END, 1)
ON CONFLICT (name) DO UPDATE
   SET paused = coalesce($2, q.paused),
       max_in_flight = CASE WHEN $3 THEN $4::int ELSE q.max_in_flight END,
       controls_version = q.controls_version + 1
RETURNING name, paused, max_in_flight, controls_version, rate_limit, rate_window_ms
"""

# Counts per (queue, status) without reading jobs (migration 0015): the folded counts plus the
# deltas appended since the last fold, in one statement so one snapshot sees each committed
# transition exactly once. `unfolded` is how many delta rows were summed (the read's variable
# cost); a reader that sees many folds them, and leaves zero counts out as a GROUP BY over jobs
# would (counts.queue_counts).
QUEUE_COUNTS = """
WITH d AS (
    SELECT queue_name, status, sum(delta) AS n, count(*) AS k
      FROM queue_count_deltas GROUP BY queue_name, status
)
SELECT queue_name, status, sum(n)::bigint AS n, sum(k)::bigint AS unfolded
  FROM (SELECT queue_name, status, n, 0 AS k FROM queue_counts
        UNION ALL
        SELECT queue_name, status, n, k FROM d) AS c
 GROUP BY queue_name, status
"""

FOLD_QUEUE_COUNTS = "SELECT jobline_fold_queue_counts()"

# What the counters replaced; kept for the benchmark's before/after comparison and the tests'
# oracle. Never on a polled path: it reads every row of jobs.
QUEUE_COUNTS_SCAN = """
SELECT queue_name, status, count(*) AS n FROM jobs GROUP BY queue_name, status
"""

# --- the edges out of waiting (run by jobline.shared.core.waiting.settle) -------------------

# $1 = ids that just completed, $2 = now. Each edge is decremented exactly once because a job
# completes exactly once (COMPLETE_JOBS is fenced). Rows are locked in id order first so two
# completers releasing overlapping dependents cannot deadlock; a dependent decremented by a
# concurrent, committed completion is re-read (EvalPlanQual), so the counter never loses one.
RELEASE_DEPENDENTS = f"""
WITH n AS (
    SELECT d.job_id, count(*)::int AS n
      FROM job_dependencies d
     WHERE d.depends_on = ANY($1::uuid[])
     GROUP BY d.job_id
), locked AS (
    SELECT j.id FROM jobs j JOIN n ON n.job_id = j.id
     WHERE j.status IN {E.RELEASE_DEPENDENTS.guard()}
     ORDER BY j.id
       FOR UPDATE OF j
), upd AS (
    UPDATE jobs j
       SET deps_remaining = greatest(j.deps_remaining - n.n, 0),
           status = CASE WHEN j.deps_remaining - n.n > 0 THEN 'waiting'
                         WHEN j.scheduled_for <= $2 THEN 'pending'
                         ELSE 'scheduled' END,
           updated_at = $2
      FROM n JOIN locked ON locked.id = n.job_id
     WHERE j.id = n.job_id AND j.status IN {E.RELEASE_DEPENDENTS.guard()}
    RETURNING j.id, j.queue_name, j.status, j.priority, j.seq, j.scheduled_for
)
SELECT * FROM upd WHERE status <> 'waiting'
"""

# One level of the cascade: the waiting dependents of $1 (which ended in status $2[i]) are
# cancelled with the reason. $3 = now. The caller feeds the returned ids back in as the next
# level; each level is a new statement, hence a new snapshot (see docs/dependencies.md).
CANCEL_DEPENDENTS = f"""
WITH c AS (
    SELECT DISTINCT ON (d.job_id) d.job_id, d.depends_on, s.status
      FROM job_dependencies d
      JOIN unnest($1::uuid[], $2::text[]) AS s(id, status) ON d.depends_on = s.id
     ORDER BY d.job_id, d.depends_on
), locked AS (
    SELECT j.id FROM jobs j JOIN c ON c.job_id = j.id
     WHERE j.status IN {E.CANCEL_DEPENDENTS.guard()}
     ORDER BY j.id
       FOR UPDATE OF j
)
UPDATE jobs j
   SET status = 'cancelled', error = 'dependency ' || c.depends_on || ' ' || c.status,
       error_type = 'dependency_failed', completed_at = $3, updated_at = $3
  FROM c JOIN locked ON locked.id = c.job_id
 WHERE j.id = c.job_id AND j.status IN {E.CANCEL_DEPENDENTS.guard()}
RETURNING j.id, j.queue_name, j.batch_id
"""

# $1 = one batch id per job that just became terminal (repeats allowed). The batch rows are
# locked in id order; the lock is held to commit, which is what serialises the batch's
# completers (docs/batches.md).
BUMP_BATCHES = """
WITH n AS (
    SELECT bid, count(*)::bigint AS n FROM unnest($1::uuid[]) AS bid GROUP BY bid
), locked AS (
    SELECT b.id FROM job_batches b JOIN n ON n.bid = b.id ORDER BY b.id FOR UPDATE OF b
)
UPDATE job_batches b SET finished_events = b.finished_events + n.n
  FROM n JOIN locked ON locked.id = n.bid
 WHERE b.id = n.bid
RETURNING b.id, b.finished_events >= b.total AS due
"""

# For batches whose event count reached the total: if no job of the batch is unfinished, stamp
# completed_at (first time) and release the onComplete job (only if still waiting: once).
# Must run as its own statement after BUMP_BATCHES, so its snapshot postdates the batch lock.
RELEASE_ON_COMPLETE = f"""
WITH done AS (
    SELECT b.id, b.on_complete_job_id
      FROM job_batches b
     WHERE b.id = ANY($1::uuid[])
       AND NOT EXISTS (SELECT 1 FROM jobs j
                        WHERE j.batch_id = b.id
                          AND j.status IN ('waiting', 'pending', 'scheduled', 'processing'))
), stamp AS (
    UPDATE job_batches b SET completed_at = coalesce(b.completed_at, $2)
      FROM done WHERE b.id = done.id
)
UPDATE jobs j
   SET status = CASE WHEN j.scheduled_for <= $2 THEN 'pending' ELSE 'scheduled' END,
       deps_remaining = 0, updated_at = $2
  FROM done
 WHERE j.id = done.on_complete_job_id AND j.status IN {E.RELEASE_ON_COMPLETE.guard()}
RETURNING j.id, j.queue_name, j.status, j.priority, j.seq, j.scheduled_for
"""


# --- dead-letter queue -----------------------------------------------------------------------
# One filter for every DLQ statement, so listing, export, retry and delete select the same set.
# A NULL parameter means "any". $1 ids, $2 queue, $3 job type, $4 error type, $5/$6 the
# dead-lettered-at range [from, to) on completed_at. Set-based: each statement touches the whole
# selection at once, however large (10k jobs retried is one UPDATE, not 10k).
_SELECTION = """
($1::uuid[] IS NULL OR id = ANY($1::uuid[]))
AND ($2::text IS NULL OR queue_name = $2)
AND ($3::text IS NULL OR job_type = $3)
AND ($4::text IS NULL OR error_type = $4)
AND ($5::timestamptz IS NULL OR completed_at >= $5)
AND ($6::timestamptz IS NULL OR completed_at < $6)
"""
_DLQ_WHERE = f"status = 'dead_letter' AND {_SELECTION}"

# Keyset page, newest first: $7 the last id of the previous page (NULL = first page), $8 size.
LIST_DEAD_LETTERS = f"""
SELECT id, queue_name, job_type, payload, status, priority, attempts, max_attempts, result, error,
       error_type, created_at, started_at, completed_at, scheduled_for, timeout_ms,
       idempotency_key, worker_id, batch_id, seq, result_ttl_s, result_expires_at,
       result_expired_at
  FROM jobs
 WHERE {_DLQ_WHERE} AND ($7::uuid IS NULL OR id < $7)
 ORDER BY id DESC
 LIMIT $8
"""

COUNT_DEAD_LETTERS = f"SELECT count(*) FROM jobs WHERE {_DLQ_WHERE}"

# Every manual retry (one job by id, one dead letter, a DLQ selection): back to pending with a
# fresh set of attempts; the last error stays for reference. $1-$6 the selection, $7 = now, $8
# the states this caller retries from (all of the guard's, or only dead_letter for the DLQ
# operations), intersected with the guard so no caller can widen it.
RETRY_JOBS = f"""
UPDATE jobs SET status = 'pending', attempts = 0, scheduled_for = $7, updated_at = $7,
       completed_at = NULL
 WHERE status IN {E.RETRY_JOBS.guard()} AND status = ANY($8::text[])
   AND {_SELECTION}
RETURNING id, queue_name, priority, seq
"""

# Deletes the jobs with their attempt history, progress rows and idempotency keys: a key left pointing at a
# deleted job would make every later submit with that key fail instead of creating a new job.
DELETE_DEAD_LETTERS = f"""
WITH gone AS (
    DELETE FROM jobs WHERE {_DLQ_WHERE} RETURNING id, queue_name
), hist AS (
    DELETE FROM job_attempts a USING gone WHERE a.job_id = gone.id
), keys AS (
    DELETE FROM idempotency_keys k USING gone WHERE k.job_id = gone.id
), progress AS (
    DELETE FROM job_progress p USING gone WHERE p.job_id = gone.id
)
SELECT id, queue_name FROM gone
"""
