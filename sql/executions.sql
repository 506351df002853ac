-- Execution log and statistics.
--
-- Every LLM call is one row of prompt_executions, written by
-- prompt_log_execution (Rust: it prices the call, redacts what it stores and
-- picks the partition). The table is partitioned by month so old calls go
-- by dropping whole partitions (prompt_purge_executions).
--
-- Statistics are kept by two statement triggers (the seeds'
-- trigger_update_template_statistics and trigger_update_ab_test_statistics)
-- and are exact: they commit and roll back with the rows they count.
--
-- Why deltas, not counters. The obvious design, a row per template whose
-- counters every insert UPDATEs, serializes every logger of a template on
-- one row lock (the seeds' design; see the benchmark in the README). Sharding
-- it per hour and backend still costs an index probe, a row lock and a new
-- row version per call: with 8 clients on 2 cores, plain inserts ran at
-- 13.4k/s and inserts with the sharded upsert at 10.3k/s (0.76). Appending a
-- small delta row to an unindexed table costs far less (0.84 in the same
-- setup), and nothing waits for anything. Every few hundred statements a
-- logger folds the deltas into the hourly rollup (prompt_stats_compact, which
-- never waits: if another session is folding, it skips). Readers see the
-- rollup plus pending deltas through the views prompt_template_stats and
-- ab_test_stats, so what they read is exact at every moment.

------------------------------------------------------------------------------
-- Executions
------------------------------------------------------------------------------

CREATE SEQUENCE prompt_executions_id_seq;
COMMENT ON SEQUENCE prompt_executions_id_seq IS 'Ids of prompt_executions.';

CREATE TABLE prompt_executions (
    id                  bigint NOT NULL DEFAULT nextval('prompt_executions_id_seq'),
    executed_at         timestamptz NOT NULL DEFAULT now(),
    template_id         bigint NOT NULL,
    template_name       text NOT NULL,
    version             integer NOT NULL CHECK (version >= 1),
    experiment          text,
    variant             text,
    user_id             text,
    model               text NOT NULL CHECK (btrim(model) <> ''),
    input_tokens        bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens       bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cached_input_tokens bigint NOT NULL DEFAULT 0
                        CHECK (cached_input_tokens >= 0 AND cached_input_tokens <= input_tokens),
    cost_usd            numeric CHECK (cost_usd >= 0),
    latency_ms          integer CHECK (latency_ms >= 0),
    success             boolean NOT NULL,
    error_message       text,
    rendered_prompt     text,
    response            text,
    metadata            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT prompt_executions_variant_with_experiment CHECK ((experiment IS NULL) = (variant IS NULL)),
    trace_id            text CONSTRAINT prompt_executions_trace_id_check CHECK (btrim(trace_id) <> '' AND length(trace_id) <= 200),
    parent_id           bigint,
    session_id          text CONSTRAINT prompt_executions_session_id_check CHECK (btrim(session_id) <> '' AND length(session_id) <= 200)
) PARTITION BY RANGE (executed_at);

ALTER SEQUENCE prompt_executions_id_seq OWNED BY prompt_executions.id;

-- Indexes are made per partition (see _executions_create_partition), not
-- on this table: pg_dump restores an extension's partitioned table with
-- CREATE EXTENSION and each partition as a table of its own, and a key
-- declared on both would be created twice on restore.

COMMENT ON TABLE prompt_executions IS
    'One row per LLM call (prompt_log_execution), partitioned by month (UTC); partitions are created as calls arrive (each with a primary key on id, indexes on (template_id, executed_at), on failed calls'' executed_at, on trace_id and on session_id, and a BRIN index on executed_at) and dropped by prompt_purge_executions. Statistics: prompt_template_stats, ab_test_stats.';
COMMENT ON COLUMN prompt_executions.id IS 'Order of logging.';
COMMENT ON COLUMN prompt_executions.executed_at IS 'When the call was made (the partition key).';
COMMENT ON COLUMN prompt_executions.template_id IS 'prompt_templates.id of the template (kept when the template is deleted).';
COMMENT ON COLUMN prompt_executions.template_name IS 'Name of the template at the time.';
COMMENT ON COLUMN prompt_executions.version IS 'Version of the template that was rendered.';
COMMENT ON COLUMN prompt_executions.experiment IS 'A/B experiment the call was part of, if any.';
COMMENT ON COLUMN prompt_executions.variant IS 'Variant of the experiment the user was assigned.';
COMMENT ON COLUMN prompt_executions.user_id IS 'The application''s user, if given.';
COMMENT ON COLUMN prompt_executions.model IS 'Model name as the provider reported it.';
COMMENT ON COLUMN prompt_executions.input_tokens IS 'Prompt tokens, cached ones included.';
COMMENT ON COLUMN prompt_executions.output_tokens IS 'Completion tokens (reasoning tokens included).';
COMMENT ON COLUMN prompt_executions.cached_input_tokens IS 'Part of input_tokens served from the provider''s cache.';
COMMENT ON COLUMN prompt_executions.cost_usd IS 'Exact cost in USD at the prices in effect at executed_at; NULL when the model has no price.';
COMMENT ON COLUMN prompt_executions.latency_ms IS 'Wall time of the call in milliseconds; NULL when unknown.';
COMMENT ON COLUMN prompt_executions.success IS 'Whether the call succeeded.';
COMMENT ON COLUMN prompt_executions.error_message IS 'Why it failed, redacted like rendered_prompt.';
COMMENT ON COLUMN prompt_executions.rendered_prompt IS
    'The prompt sent, with PII and what redact guardrails find replaced by <ENTITY> unless pgprompt.store_raw_text is on.';
COMMENT ON COLUMN prompt_executions.response IS 'The model''s answer, redacted like rendered_prompt.';
COMMENT ON COLUMN prompt_executions.metadata IS 'Anything else the application wants to keep (a JSON object).';
COMMENT ON COLUMN prompt_executions.trace_id IS 'The application''s unit of work the call was part of (a request, a turn): the calls of one trace are one answer.';
COMMENT ON COLUMN prompt_executions.parent_id IS 'The call that caused this one (its id), in the same trace.';
COMMENT ON COLUMN prompt_executions.session_id IS 'The user''s session (a conversation) the trace belongs to.';

-- Keeps the statistics exact: what they count cannot change afterwards.
-- Texts, metadata, user_id and error_message may (scrubbing, late answers);
-- deleting rows is allowed too and leaves the statistics as they were, like
-- dropping old partitions.
CREATE FUNCTION _executions_keep_measures()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    -- The trace too: scores of a trace count for the calls it had.
    IF (NEW.id, NEW.executed_at, NEW.template_id, NEW.template_name, NEW.version, NEW.experiment, NEW.variant,
        NEW.model, NEW.input_tokens, NEW.output_tokens, NEW.cached_input_tokens, NEW.cost_usd, NEW.latency_ms, NEW.success,
        NEW.trace_id, NEW.parent_id, NEW.session_id)
       IS DISTINCT FROM
       (OLD.id, OLD.executed_at, OLD.template_id, OLD.template_name, OLD.version, OLD.experiment, OLD.variant,
        OLD.model, OLD.input_tokens, OLD.output_tokens, OLD.cached_input_tokens, OLD.cost_usd, OLD.latency_ms, OLD.success,
        OLD.trace_id, OLD.parent_id, OLD.session_id) THEN
        RAISE EXCEPTION 'the measures of execution % cannot change', OLD.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Statistics count what was logged. Only rendered_prompt, response, error_message, user_id and metadata can be updated.';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _executions_keep_measures() IS
    'Trigger: refuses updates of the columns statistics count (55000).';

CREATE TRIGGER trigger_keep_execution_measures
    BEFORE UPDATE ON prompt_executions
    FOR EACH ROW EXECUTE FUNCTION _executions_keep_measures();
COMMENT ON TRIGGER trigger_keep_execution_measures ON prompt_executions IS
    'Counted columns are immutable, so statistics stay exact.';

------------------------------------------------------------------------------
-- Partitions
------------------------------------------------------------------------------

-- Month bounds are instants in UTC, computed and written the same way
-- whatever the session's TimeZone, DateStyle and timezone_abbreviations:
-- these functions pin TimeZone and DateStyle, and write bounds as ISO text
-- with an explicit +00. (0.1.0 wrote them in the caller's style: with
-- DateStyle Postgres and TimeZone Asia/Kolkata, 'IST' was read back as
-- Israel's time and months were shifted by 3.5 hours.)

-- The partition of prompt_executions holding time p_at, whatever its name
-- (a month made here, a partition of the user's own, a default partition),
-- or NULL.
CREATE FUNCTION _executions_partition_of(p_at timestamptz)
RETURNS regclass
LANGUAGE sql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
    SELECT c.oid::regclass
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) bound
      LEFT JOIN LATERAL regexp_match(bound, $re$^FOR VALUES FROM \((?:'([^']+)'|MINVALUE)\) TO \((?:'([^']+)'|MAXVALUE)\)$re$) b ON true
     WHERE i.inhparent = 'pgprompt.prompt_executions'::regclass
       AND (bound = 'DEFAULT'
            OR b IS NOT NULL AND (b[1] IS NULL OR p_at >= b[1]::timestamptz) AND (b[2] IS NULL OR p_at < b[2]::timestamptz))
     -- A month's own partition before a default one.
     ORDER BY bound = 'DEFAULT'
     LIMIT 1
$$;

COMMENT ON FUNCTION _executions_partition_of(timestamptz) IS
    'Internal: the partition of prompt_executions that holds a time (whatever its name), or NULL.';

-- Creates the month partition holding p_at unless a partition holds it.
-- The table is created first and then attached, which locks
-- prompt_executions only in SHARE UPDATE EXCLUSIVE mode, so loggers
-- writing other months carry on (CREATE TABLE ... PARTITION OF would lock
-- them all out). One creator at a time (an advisory lock taken before any
-- other), so two back-fills in opposite order cannot deadlock. pgprompt's
-- worker runs this in a transaction of its own, committed at once, so no
-- caller holds these locks (see prompt_log_execution). With p_wait false
-- it gives up, quietly, when it would have to wait or something is in the
-- way: that is the next month, made ahead of time.
CREATE FUNCTION _executions_create_partition(p_at timestamptz, p_wait boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    v_month timestamp := date_trunc('month', p_at AT TIME ZONE 'UTC');
    v_from text := to_char(v_month, 'YYYY-MM-DD') || ' 00:00:00+00';
    v_to text := to_char(v_month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
    v_name text := 'prompt_executions_' || to_char(v_month, 'YYYY_MM');
    v_timeout text := current_setting('lock_timeout');
BEGIN
    IF _executions_partition_of(p_at) IS NOT NULL THEN
        RETURN;
    END IF;
    IF p_wait THEN
        PERFORM pg_advisory_xact_lock('pgprompt.prompt_executions'::regclass::oid::integer, 0);
    ELSIF NOT pg_try_advisory_xact_lock('pgprompt.prompt_executions'::regclass::oid::integer, 0) THEN
        RETURN;
    END IF;
    -- Another creator may have made it while this one waited.
    IF _executions_partition_of(p_at) IS NOT NULL THEN
        RETURN;
    END IF;
    IF to_regclass(format('pgprompt.%I', v_name)) IS NOT NULL THEN
        IF NOT p_wait THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'pgprompt.% exists but is not the partition of prompt_executions for % (UTC)', v_name, to_char(v_month, 'YYYY-MM')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'It may be a month detached from prompt_executions; calls of that month cannot be logged until it is back.',
                  HINT = format('Attach it: ALTER TABLE pgprompt.prompt_executions ATTACH PARTITION pgprompt.%I FOR VALUES FROM (%L) TO (%L); or rename it.',
                                v_name, v_from, v_to);
    END IF;
    BEGIN
        IF NOT p_wait THEN
            PERFORM set_config('lock_timeout', '50ms', true);
        END IF;
        EXECUTE format('CREATE TABLE pgprompt.%I (LIKE pgprompt.prompt_executions INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', v_name);
        -- Ids are unique across partitions (one sequence); the key is per partition.
        EXECUTE format('ALTER TABLE pgprompt.%I ADD PRIMARY KEY (id)', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (template_id, executed_at)', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (executed_at) WHERE NOT success', v_name);
        -- A trace's and a session's calls (the trace views, scores by trace).
        EXECUTE format('CREATE INDEX ON pgprompt.%I (trace_id) WHERE trace_id IS NOT NULL', v_name);
        EXECUTE format('CREATE INDEX ON pgprompt.%I (session_id) WHERE session_id IS NOT NULL', v_name);
        -- Recent calls of all templates (the alert windows): calls arrive in
        -- time order, so a BRIN index finds them at almost no cost per insert.
        EXECUTE format('CREATE INDEX ON pgprompt.%I USING brin (executed_at) WITH (pages_per_range = 16)', v_name);
        -- The bound as a constraint lets ATTACH skip its validation scan.
        EXECUTE format('ALTER TABLE pgprompt.%I ADD CONSTRAINT %I CHECK (executed_at >= %L AND executed_at < %L)',
                       v_name, v_name || '_bound', v_from, v_to);
        EXECUTE format('ALTER TABLE pgprompt.prompt_executions ATTACH PARTITION pgprompt.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_from, v_to);
        EXECUTE format('ALTER TABLE pgprompt.%I DROP CONSTRAINT %I', v_name, v_name || '_bound');
        EXECUTE format('COMMENT ON TABLE pgprompt.%I IS %L', v_name,
                       format('Calls of %s (UTC), a partition of prompt_executions.', to_char(v_month, 'YYYY-MM')));
        PERFORM set_config('lock_timeout', v_timeout, true);
    EXCEPTION
        -- Ahead of time, a lock that is not free is no reason to wait or fail.
        WHEN lock_not_available THEN
            IF p_wait THEN
                RAISE;
            END IF;
            RETURN;
    END;
    -- What was made holds exactly the month.
    IF (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = format('pgprompt.%I', v_name)::regclass)
           IS DISTINCT FROM format('FOR VALUES FROM (%L) TO (%L)', v_from, v_to)
       OR _executions_partition_of(p_at) IS DISTINCT FROM format('pgprompt.%I', v_name)::regclass THEN
        RAISE EXCEPTION 'the partition made for % (UTC) does not hold exactly that month', to_char(v_month, 'YYYY-MM')
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = format('pgprompt.%I', v_name)::regclass);
    END IF;
END
$$;

COMMENT ON FUNCTION _executions_create_partition(timestamptz, boolean) IS
    'Internal: creates, attaches and checks the month partition (UTC) of prompt_executions holding a time, unless a partition holds it; 55000 when a table of that name is in the way.';

-- The partition for a call's month, and the next month's ahead of time so
-- that the first calls of a month rarely have to wait for one.
CREATE FUNCTION _executions_partition(p_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
BEGIN
    PERFORM _executions_create_partition(p_at, true);
    -- Ahead of time is a convenience: what stands in its way (a partition of
    -- the user's own overlapping next month, say) is reported, and left to
    -- the first call of that month, which fails with it if it still holds.
    BEGIN
        PERFORM _executions_create_partition(((date_trunc('month', p_at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'), false);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'the partition of prompt_executions for the month after % could not be made ahead of time: %', p_at, SQLERRM;
    END;
END
$$;

COMMENT ON FUNCTION _executions_partition(timestamptz) IS
    'Internal: makes sure prompt_executions has a partition for the month of a time (and tries the next month).';

-- What prompt_purge_executions dropped: so that a late score of a call of
-- a purged month is told so (its id lies in the month's range), rather
-- than that the call never was.
CREATE TABLE prompt_executions_purged (
    partition   text NOT NULL,
    range_start timestamptz NOT NULL,
    range_end   timestamptz NOT NULL,
    min_id      bigint,
    max_id      bigint,
    purged_at   timestamptz NOT NULL DEFAULT now(),
    purged_by   text NOT NULL DEFAULT session_user
);

COMMENT ON TABLE prompt_executions_purged IS 'Month partitions of prompt_executions dropped by prompt_purge_executions.';
COMMENT ON COLUMN prompt_executions_purged.partition IS 'The partition dropped.';
COMMENT ON COLUMN prompt_executions_purged.range_start IS 'Start of the range it held.';
COMMENT ON COLUMN prompt_executions_purged.range_end IS 'End of the range it held (exclusive).';
COMMENT ON COLUMN prompt_executions_purged.min_id IS 'The least id of its calls (NULL: it held none).';
COMMENT ON COLUMN prompt_executions_purged.max_id IS 'The greatest id of its calls.';
COMMENT ON COLUMN prompt_executions_purged.purged_at IS 'When it was dropped.';
COMMENT ON COLUMN prompt_executions_purged.purged_by IS 'Session user who dropped it.';

CREATE FUNCTION prompt_purge_executions(older_than interval)
RETURNS TABLE (partition text, range_start timestamptz, range_end timestamptz)
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    p record;
BEGIN
    PERFORM _require(older_than, 'older_than');
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative (got %)', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR p IN
        SELECT c.relname, b[1]::timestamptz AS lo, b[2]::timestamptz AS hi
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) b
         WHERE i.inhparent = 'pgprompt.prompt_executions'::regclass
         ORDER BY 2
    LOOP
        CONTINUE WHEN p.hi > now() - older_than;
        -- (min and max come from the partition's key: no scan.)
        EXECUTE format('INSERT INTO pgprompt.prompt_executions_purged (partition, range_start, range_end, min_id, max_id)
                        SELECT %L, %L, %L, min(id), max(id) FROM pgprompt.%I', p.relname, p.lo, p.hi, p.relname);
        EXECUTE format('DROP TABLE pgprompt.%I', p.relname);
        partition := p.relname;
        range_start := p.lo;
        range_end := p.hi;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION prompt_purge_executions(interval) IS
$$Drops the month partitions of prompt_executions whose every call is older than older_than (whole partitions only: a month goes once its last day is that old), records them in prompt_executions_purged and returns them. Statistics are kept.
Errors: 22004 NULL, 22023 negative interval.$$;

------------------------------------------------------------------------------
-- Statistics
------------------------------------------------------------------------------

-- Deltas from the statistics triggers, waiting to be folded into the rollups.
-- No index, no update: appending is all a logger does.
CREATE TABLE prompt_stats_pending (
    hour                timestamptz NOT NULL,
    template_id         bigint NOT NULL,
    template_name       text NOT NULL,
    version             integer NOT NULL,
    experiment          text,
    variant             text,
    latency_bucket      smallint,
    executions          bigint NOT NULL,
    successes           bigint NOT NULL,
    latency_sum_ms      bigint NOT NULL,
    input_tokens        bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    cost_usd            numeric NOT NULL,
    priced_executions   bigint NOT NULL,
    last_executed_at    timestamptz NOT NULL,
    latency_sum_squares numeric NOT NULL DEFAULT 0,
    cost_sum_squares    numeric NOT NULL DEFAULT 0
);

-- Deltas come and go all day: vacuum it as soon as a few thousand are dead,
-- so folding (which scans it) stays cheap.
ALTER TABLE prompt_stats_pending SET (autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_scale_factor = 0,
                                      autovacuum_vacuum_cost_delay = 0);

COMMENT ON TABLE prompt_stats_pending IS
    'Statistics not yet folded into the hourly rollups: one row per statement and group, from the statistics triggers. Read it through prompt_template_stats and ab_test_stats.';
COMMENT ON COLUMN prompt_stats_pending.hour IS 'Hour (UTC) of the calls.';
COMMENT ON COLUMN prompt_stats_pending.template_id IS 'Template of the calls.';
COMMENT ON COLUMN prompt_stats_pending.template_name IS 'Its name at the time.';
COMMENT ON COLUMN prompt_stats_pending.version IS 'Template version.';
COMMENT ON COLUMN prompt_stats_pending.experiment IS 'NULL: a template delta; otherwise an experiment delta.';
COMMENT ON COLUMN prompt_stats_pending.variant IS 'Experiment variant.';
COMMENT ON COLUMN prompt_stats_pending.latency_bucket IS 'Latency sketch bucket of these calls (see prompt_latency_quantile and _latency_bucket); NULL: latency unknown.';
COMMENT ON COLUMN prompt_stats_pending.executions IS 'Calls.';
COMMENT ON COLUMN prompt_stats_pending.successes IS 'Successful calls.';
COMMENT ON COLUMN prompt_stats_pending.latency_sum_ms IS 'Sum of their latencies.';
COMMENT ON COLUMN prompt_stats_pending.input_tokens IS 'Sum of input tokens.';
COMMENT ON COLUMN prompt_stats_pending.output_tokens IS 'Sum of output tokens.';
COMMENT ON COLUMN prompt_stats_pending.cached_input_tokens IS 'Sum of cached input tokens.';
COMMENT ON COLUMN prompt_stats_pending.cost_usd IS 'Sum of costs (calls without a price count as 0; see priced_executions).';
COMMENT ON COLUMN prompt_stats_pending.priced_executions IS 'Calls whose cost is known.';
COMMENT ON COLUMN prompt_stats_pending.last_executed_at IS 'The newest of these calls.';
COMMENT ON COLUMN prompt_stats_pending.latency_sum_squares IS 'Sum of the squares of their latencies.';
COMMENT ON COLUMN prompt_stats_pending.cost_sum_squares IS 'Sum of the squares of their costs.';

CREATE TABLE prompt_stats_hourly (
    hour                timestamptz NOT NULL,
    template_id         bigint NOT NULL,
    template_name       text NOT NULL,
    version             integer NOT NULL,
    experiment          text,
    variant             text,
    executions          bigint NOT NULL,
    successes           bigint NOT NULL,
    latency_count       bigint NOT NULL,
    latency_sum_ms      bigint NOT NULL,
    latency_histogram   bigint[] NOT NULL,
    input_tokens        bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    cost_usd            numeric NOT NULL,
    priced_executions   bigint NOT NULL,
    last_executed_at    timestamptz NOT NULL,
    CONSTRAINT prompt_stats_hourly_key UNIQUE NULLS NOT DISTINCT (hour, template_id, version, experiment, variant),
    latency_sum_squares numeric NOT NULL DEFAULT 0,
    cost_sum_squares    numeric NOT NULL DEFAULT 0
);

COMMENT ON TABLE prompt_stats_hourly IS
    'Folded statistics per hour (UTC): per template version (experiment NULL) and per experiment variant. Read prompt_template_stats and ab_test_stats, which add the pending deltas.';

CREATE AGGREGATE _hist_from_buckets(smallint, bigint) (
    SFUNC = _hist_add,
    STYPE = bigint[]
);
COMMENT ON AGGREGATE _hist_from_buckets(smallint, bigint) IS
    'Internal: the latency histogram of (bucket, calls) pairs.';

CREATE AGGREGATE prompt_latency_histogram(bigint[]) (
    SFUNC = _hist_merge,
    STYPE = bigint[]
);
COMMENT ON AGGREGATE prompt_latency_histogram(bigint[]) IS
    'Adds latency histograms bucket by bucket: the histogram of several hours, versions or templates.';

-- Folds pending deltas into the rollup. Never waits: when another session
-- is folding, it returns 0 at once.
CREATE FUNCTION prompt_stats_compact()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock('pgprompt.prompt_stats_pending'::regclass::oid::integer, 0) THEN
        RETURN 0;
    END IF;
    WITH moved AS (
        DELETE FROM prompt_stats_pending RETURNING *
    ), buckets AS (
        -- Per latency bucket first, in plain SQL: the histograms are then
        -- built from a few rows per group rather than one per delta (calling
        -- _hist_add per delta was half the cost of folding).
        SELECT hour, template_id, max(template_name) AS template_name, version, experiment, variant, latency_bucket,
               sum(executions)::bigint AS executions, sum(successes)::bigint AS successes,
               sum(latency_sum_ms)::bigint AS latency_sum_ms, sum(input_tokens)::bigint AS input_tokens,
               sum(output_tokens)::bigint AS output_tokens, sum(cached_input_tokens)::bigint AS cached_input_tokens,
               sum(cost_usd) AS cost_usd, sum(priced_executions)::bigint AS priced_executions,
               max(last_executed_at) AS last_executed_at,
               sum(latency_sum_squares) AS latency_sum_squares, sum(cost_sum_squares) AS cost_sum_squares
          FROM moved
         GROUP BY hour, template_id, version, experiment, variant, latency_bucket
    ), folded AS (
        INSERT INTO prompt_stats_hourly AS s
        SELECT hour, template_id, max(template_name), version, experiment, variant,
               sum(executions), sum(successes),
               coalesce(sum(executions) FILTER (WHERE latency_bucket IS NOT NULL), 0), sum(latency_sum_ms),
               _hist_from_buckets(latency_bucket, executions),
               sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(cost_usd), sum(priced_executions),
               max(last_executed_at), sum(latency_sum_squares), sum(cost_sum_squares)
          FROM buckets
         GROUP BY hour, template_id, version, experiment, variant
         -- One order for every folder: no two can deadlock on rollup rows.
         ORDER BY hour, template_id, version, experiment, variant
        ON CONFLICT ON CONSTRAINT prompt_stats_hourly_key DO UPDATE SET
               template_name = excluded.template_name,
               executions = s.executions + excluded.executions,
               successes = s.successes + excluded.successes,
               latency_count = s.latency_count + excluded.latency_count,
               latency_sum_ms = s.latency_sum_ms + excluded.latency_sum_ms,
               latency_histogram = _hist_merge(s.latency_histogram, excluded.latency_histogram),
               input_tokens = s.input_tokens + excluded.input_tokens,
               output_tokens = s.output_tokens + excluded.output_tokens,
               cached_input_tokens = s.cached_input_tokens + excluded.cached_input_tokens,
               cost_usd = s.cost_usd + excluded.cost_usd,
               priced_executions = s.priced_executions + excluded.priced_executions,
               last_executed_at = greatest(s.last_executed_at, excluded.last_executed_at),
               latency_sum_squares = s.latency_sum_squares + excluded.latency_sum_squares,
               cost_sum_squares = s.cost_sum_squares + excluded.cost_sum_squares
    )
    SELECT count(*) INTO v_folded FROM moved;
    RETURN v_folded;
END
$$;

COMMENT ON FUNCTION prompt_stats_compact() IS
    'Folds pending statistics deltas into prompt_stats_hourly and returns how many it folded (0 when another session is folding). Loggers call it now and then; cron may too. The statistics views read the same before and after.';

-- What the statistics triggers call every few hundred statements. Only in
-- READ COMMITTED, where deleting deltas another session just folded cannot
-- raise a serialization error, and any error is swallowed: folding must
-- never make a caller's INSERT fail.
CREATE FUNCTION _stats_compact_quietly()
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        PERFORM prompt_stats_compact();
        PERFORM prompt_score_stats_compact();  -- (scores.sql)
    END IF;
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;

COMMENT ON FUNCTION _stats_compact_quietly() IS
    'Internal: prompt_stats_compact and prompt_score_stats_compact, now and then from the statistics triggers and scoring, in READ COMMITTED only, never raising.';

CREATE TRIGGER trigger_update_template_statistics
    AFTER INSERT ON prompt_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION _stats_capture('template');
COMMENT ON TRIGGER trigger_update_template_statistics ON prompt_executions IS
    'Adds each statement''s calls to the statistics per template version and hour (the seeds'' template statistics trigger).';

CREATE TRIGGER trigger_update_ab_test_statistics
    AFTER INSERT ON prompt_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION _stats_capture('experiment');
COMMENT ON TRIGGER trigger_update_ab_test_statistics ON prompt_executions IS
    'Adds each statement''s experiment calls to the statistics per experiment variant and hour (the seeds'' A/B statistics trigger).';

-- The rollup and the pending deltas as rows of one shape, ungrouped: views
-- filter it first (a filter on hour reaches the rollup's key) and group after.
CREATE VIEW prompt_stats_rows AS
SELECT hour, template_id, template_name, version, experiment, variant, executions, successes,
       latency_count, latency_sum_ms, latency_histogram,
       input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions, last_executed_at,
       latency_sum_squares, cost_sum_squares
  FROM prompt_stats_hourly
UNION ALL
SELECT hour, template_id, template_name, version, experiment, variant, executions, successes,
       CASE WHEN latency_bucket IS NULL THEN 0 ELSE executions END, latency_sum_ms, _hist_of(latency_bucket, executions),
       input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions, last_executed_at,
       latency_sum_squares, cost_sum_squares
  FROM prompt_stats_pending;

COMMENT ON VIEW prompt_stats_rows IS
    'The hourly rollup and the pending deltas as rows of one shape, not yet grouped: what the analytics views aggregate. Rows without an experiment count template calls; rows with one count the same calls again per experiment variant.';

-- Statistics as they are: the rollup plus whatever is pending, per hour.
CREATE VIEW prompt_stats AS
SELECT hour, template_id, max(template_name) AS template_name, version, experiment, variant,
       sum(executions)::bigint AS executions,
       sum(successes)::bigint AS successes,
       sum(latency_count)::bigint AS latency_count,
       sum(latency_sum_ms)::bigint AS latency_sum_ms,
       prompt_latency_histogram(latency_histogram) AS latency_histogram,
       sum(input_tokens)::bigint AS input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(cached_input_tokens)::bigint AS cached_input_tokens,
       sum(cost_usd) AS cost_usd,
       sum(priced_executions)::bigint AS priced_executions,
       max(last_executed_at) AS last_executed_at,
       sum(latency_sum_squares) AS latency_sum_squares,
       sum(cost_sum_squares) AS cost_sum_squares
  FROM prompt_stats_rows
 GROUP BY hour, template_id, version, experiment, variant;

CREATE VIEW prompt_template_stats AS
SELECT hour, template_id, template_name, version, executions, successes, latency_count, latency_sum_ms,
       latency_histogram, input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions, last_executed_at,
       latency_sum_squares, cost_sum_squares
  FROM prompt_stats WHERE experiment IS NULL;

CREATE VIEW ab_test_stats AS
SELECT hour, experiment, variant, template_id, template_name, version, executions, successes, latency_count,
       latency_sum_ms, latency_histogram, input_tokens, output_tokens, cached_input_tokens, cost_usd, priced_executions,
       last_executed_at, latency_sum_squares, cost_sum_squares
  FROM prompt_stats WHERE experiment IS NOT NULL;

COMMENT ON VIEW prompt_stats IS
    'Exact statistics per hour (UTC), the rollup plus pending deltas: rows without an experiment are per template version, rows with one per experiment variant.';
COMMENT ON VIEW prompt_template_stats IS
    'Exact statistics per template version and hour (UTC), maintained by trigger_update_template_statistics: calls, successes, latency (sum, count, histogram), tokens and cost. Deleted or purged calls stay counted.';
COMMENT ON VIEW ab_test_stats IS
    'Exact statistics per experiment variant and hour (UTC), maintained by trigger_update_ab_test_statistics.';

-- The same columns mean the same in the rollup and the four views.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['prompt_stats_hourly', 'prompt_stats_rows', 'prompt_stats', 'prompt_template_stats', 'ab_test_stats'] LOOP
        EXECUTE format($c$
            COMMENT ON COLUMN %1$I.hour IS 'Hour (UTC) of the calls.';
            COMMENT ON COLUMN %1$I.template_id IS 'Template (prompt_templates.id; kept when the template is deleted).';
            COMMENT ON COLUMN %1$I.template_name IS 'Its name when last logged.';
            COMMENT ON COLUMN %1$I.version IS 'Template version.';
            COMMENT ON COLUMN %1$I.executions IS 'Calls.';
            COMMENT ON COLUMN %1$I.successes IS 'Successful calls.';
            COMMENT ON COLUMN %1$I.latency_count IS 'Calls with a known latency.';
            COMMENT ON COLUMN %1$I.latency_sum_ms IS 'Sum of their latencies in milliseconds.';
            COMMENT ON COLUMN %1$I.latency_histogram IS 'Calls per latency bucket (a DDSketch of 1%% relative accuracy after 0.1.0''s 64 buckets of 12%%); prompt_latency_quantile(latency_histogram, 0.95) is the p95.';
            COMMENT ON COLUMN %1$I.input_tokens IS 'Sum of input tokens.';
            COMMENT ON COLUMN %1$I.output_tokens IS 'Sum of output tokens.';
            COMMENT ON COLUMN %1$I.cached_input_tokens IS 'Sum of cached input tokens.';
            COMMENT ON COLUMN %1$I.cost_usd IS 'Sum of costs in USD, exact (calls of unpriced models add nothing).';
            COMMENT ON COLUMN %1$I.priced_executions IS 'Calls whose cost is known.';
            COMMENT ON COLUMN %1$I.last_executed_at IS 'The newest of the calls.';
            COMMENT ON COLUMN %1$I.latency_sum_squares IS 'Sum of the squares of their latencies (for variances; 0 for hours logged before 0.2.0 whose calls were purged).';
            COMMENT ON COLUMN %1$I.cost_sum_squares IS 'Sum of the squares of their costs (for variances).';
        $c$, r);
        IF r <> 'prompt_template_stats' THEN
            EXECUTE format($c$
                COMMENT ON COLUMN %1$I.experiment IS 'Experiment (NULL in per-template rows).';
                COMMENT ON COLUMN %1$I.variant IS 'Experiment variant.';
            $c$, r);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION prompt_log_execution(text, integer, text, bigint, bigint, double precision, boolean, text, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text) IS
$$Logs one LLM call and returns its id: prices it (cost_usd, NULL with a WARNING when the model has no price), stores the rendered prompt, response and error message with PII and what redact guardrails find replaced by <ENTITY> (raw when pgprompt.store_raw_text is on), records what log and redact guardrails find in prompt_guardrail_violations, and counts it in the statistics. latency_ms may have a fraction (drivers send a measured duration as double precision): it is kept in whole milliseconds, rounded half away from zero. version defaults to the active one, model to the version's model_config.model (or model_name, the seeds' key). In an experiment, a call with a user_id counts for the variant the user's bucket owns: variant may be left out, and one that contradicts the bucket is refused. trace_id, parent_id (the id of the call that caused this one) and session_id place the call in the application's work (v_trace_calls, v_traces, v_sessions); a call with a parent belongs to the parent's trace and session, taken from it when left out. With pgprompt.log_executions off it writes nothing and returns NULL. Nothing here fails the caller for a missing price or a guardrail finding.
Errors: 22004 NULL template or no model, 22023 negative tokens or latency, a latency that is not finite or beyond 2147483647 ms, cached tokens above input tokens, empty model, metadata not an object, a variant without an experiment, an experiment without variant or user, a variant that is not the user's, a variant of another experiment or template, an empty or overlong (200 characters) trace or session id, a parent that is not a logged call or whose trace or session contradicts the given one; 42704 unknown template, version or experiment.$$;

COMMENT ON FUNCTION prompt_latency_quantile(bigint[], double precision) IS
    'The q quantile (0..1, nearest rank as percentile_disc) of a latency histogram in milliseconds, within 1% of the exact value (12% for counts logged before 0.2.0); NULL for an empty histogram.';
COMMENT ON FUNCTION _stats_capture() IS
    'Internal trigger: adds a statement''s new executions to prompt_stats_pending (argument: template or experiment).';
COMMENT ON FUNCTION _hist_add(bigint[], smallint, bigint) IS 'Internal: adds calls to one bucket of a histogram.';
COMMENT ON FUNCTION _hist_merge(bigint[], bigint[]) IS 'Internal: adds two histograms.';
COMMENT ON FUNCTION _hist_of(smallint, bigint) IS 'Internal: the histogram of calls in one bucket.';
COMMENT ON FUNCTION _latency_bucket(integer) IS 'Internal: the latency sketch bucket of a latency in milliseconds (what the statistics triggers count it in).';

SELECT pg_catalog.pg_extension_config_dump('prompt_executions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_stats_pending', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_executions_purged', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_stats_hourly', '');
