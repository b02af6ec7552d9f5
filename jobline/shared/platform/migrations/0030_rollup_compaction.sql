-- 0030: the relay's live fold writes minute rollups only (issue 14: folding every relay pass
-- into the hour and day rows too cost the shipped stack ~10% of its throughput). Closed minutes
-- are summed into the hour/day rows once, by the compaction (jobline.analytics.rollups), which
-- moves `compacted_through` in the same transaction. Invariant: an hour/day row holds exactly
-- the minutes before `compacted_through` (events of older minutes folded late go straight into
-- all three grains); readers take the minute rows from `compacted_through` on.
-- It starts at the next minute: every earlier event was folded into every grain already.
CREATE TABLE rollup_watermark (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    compacted_through timestamptz NOT NULL
);
INSERT INTO rollup_watermark (id, compacted_through)
VALUES (1, date_trunc('minute', now()) + interval '1 minute');
