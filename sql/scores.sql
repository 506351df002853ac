-- Feedback scores: what a call or a trace was worth, known later.
--
-- The signal of a prompt arrives after the call: a thumbs-up, a resolved
-- ticket, an evaluator's grade. prompt_score attaches one to a logged call
-- (or prompt_score_trace to a trace) at any time. Score names are declared
-- first (prompt_score_define), so a typo or a value out of range is an
-- error rather than a new series.
--
-- Scores are immutable: a correction is a new score that supersedes the
-- current one (same call or trace, same name), and history keeps both.
-- Each score records what it counts for (counted_for: the call's template
-- version and experiment variant; for a trace, every version and variant
-- its calls used), so a correction takes back exactly what the score it
-- supersedes added.
--
-- Statistics are kept as the call statistics are (see executions.sql): a
-- score appends deltas to an unindexed table, folded now and then into an
-- hourly rollup, and the views read both, so they are exact and no two
-- scorers wait on one row.

------------------------------------------------------------------------------
-- Definitions
------------------------------------------------------------------------------

CREATE TABLE prompt_score_definitions (
    name        text PRIMARY KEY
                CONSTRAINT prompt_score_definitions_name_check CHECK (name ~ '^[A-Za-z][A-Za-z0-9_.-]{0,62}$'),
    kind        text NOT NULL CHECK (kind IN ('numeric', 'boolean', 'categorical')),
    min_value   numeric,
    max_value   numeric,
    categories  text[],
    description text,
    higher_is_better boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT session_user,
    CONSTRAINT prompt_score_definitions_range CHECK (kind = 'numeric' OR (min_value IS NULL AND max_value IS NULL)),
    CONSTRAINT prompt_score_definitions_bounds CHECK (min_value <= max_value),
    CONSTRAINT prompt_score_definitions_categories CHECK ((kind = 'categorical') = (categories IS NOT NULL))
);

COMMENT ON TABLE prompt_score_definitions IS
    'Declared score names (prompt_score_define): what kind of value each takes and which values are allowed.';
COMMENT ON COLUMN prompt_score_definitions.name IS 'Score name (a letter, then letters, digits, _ . -; at most 63).';
COMMENT ON COLUMN prompt_score_definitions.kind IS 'numeric (a rating, an eval score), boolean (thumbs, resolved) or categorical.';
COMMENT ON COLUMN prompt_score_definitions.min_value IS 'Numeric scores: the least value allowed (NULL: no bound).';
COMMENT ON COLUMN prompt_score_definitions.max_value IS 'Numeric scores: the greatest value allowed (NULL: no bound).';
COMMENT ON COLUMN prompt_score_definitions.categories IS 'Categorical scores: the values allowed.';
COMMENT ON COLUMN prompt_score_definitions.description IS 'What the score means, for people reading the results.';
COMMENT ON COLUMN prompt_score_definitions.higher_is_better IS 'Which way is better when experiments compare it (boolean scores: true is better when set).';
COMMENT ON COLUMN prompt_score_definitions.created_at IS 'When it was first defined.';
COMMENT ON COLUMN prompt_score_definitions.created_by IS 'Session user who defined it.';

-- Sessions cache declarations (prompt_score): a change reaches them all at commit.
CREATE TRIGGER trigger_invalidate_score_definitions
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prompt_score_definitions
    FOR EACH STATEMENT EXECUTE FUNCTION _invalidate_caches_trigger('pgprompt.prompt_score_definitions');
COMMENT ON TRIGGER trigger_invalidate_score_definitions ON prompt_score_definitions IS
    'Drops the sessions'' cached score declarations at commit.';

------------------------------------------------------------------------------
-- Scores
------------------------------------------------------------------------------

CREATE SEQUENCE prompt_scores_id_seq;
COMMENT ON SEQUENCE prompt_scores_id_seq IS 'Ids of prompt_scores.';

-- No foreign keys: a key check locks the referenced row (every scorer of a
-- name would share one definition row), and calls live in partitions that
-- are dropped whole. prompt_score checks both; definitions with scores
-- cannot be dropped (_score_definitions_keep).
CREATE TABLE prompt_scores (
    id            bigint PRIMARY KEY DEFAULT nextval('prompt_scores_id_seq'),
    name          text NOT NULL,
    execution_id  bigint,
    trace_id      text,
    numeric_value numeric,
    boolean_value boolean,
    category      text,
    comment       text,
    source        text NOT NULL CHECK (btrim(source) <> '' AND length(source) <= 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL DEFAULT session_user,
    supersedes    bigint,
    counted_for   jsonb NOT NULL CHECK (jsonb_typeof(counted_for) = 'array'),
    CONSTRAINT prompt_scores_target CHECK ((execution_id IS NULL) <> (trace_id IS NULL)),
    CONSTRAINT prompt_scores_one_value CHECK (num_nonnulls(numeric_value, boolean_value, category) = 1)
);

ALTER SEQUENCE prompt_scores_id_seq OWNED BY prompt_scores.id;

-- A call's (or trace's) scores of one name form one chain: the first
-- supersedes nothing (0 here), each correction the score before it, and a
-- correction's id is above the id it supersedes. These unique indexes keep
-- it one chain when scorers race (two scores superseding the same one, or
-- two firsts: the later insert finds the conflict, reads the chain again
-- and supersedes the winner), with no lock held per scored call, so a
-- transaction may score any number of calls. Read backwards, they give the
-- score in force without a sort.
CREATE UNIQUE INDEX prompt_scores_execution ON prompt_scores (execution_id, name, coalesce(supersedes, 0))
    WHERE execution_id IS NOT NULL;
CREATE UNIQUE INDEX prompt_scores_trace ON prompt_scores (trace_id, name, coalesce(supersedes, 0))
    WHERE trace_id IS NOT NULL;
COMMENT ON INDEX prompt_scores_execution IS 'A call''s scores by name, one chain of corrections; the last is the score in force.';
COMMENT ON INDEX prompt_scores_trace IS 'A trace''s scores by name, one chain of corrections; the last is the score in force.';
-- Which score corrects a given one (prompt_scores_current). Not declared
-- unique: the chain's indexes above already make it so, and a second unique
-- index would be checked before them and fail a racing scorer instead of
-- letting them read again.
CREATE INDEX prompt_scores_supersedes ON prompt_scores (supersedes) WHERE supersedes IS NOT NULL;
COMMENT ON INDEX prompt_scores_supersedes IS 'The correction of each corrected score (unique by the chain''s indexes).';

COMMENT ON TABLE prompt_scores IS
    'Feedback on logged calls and traces (prompt_score, prompt_score_trace), immutable: a correction is a new row that supersedes the current one. prompt_scores_current shows the scores in force.';
COMMENT ON COLUMN prompt_scores.id IS 'Order of scoring.';
COMMENT ON COLUMN prompt_scores.name IS 'The score (prompt_score_definitions.name).';
COMMENT ON COLUMN prompt_scores.execution_id IS 'The scored call (prompt_executions.id), or NULL for a trace''s score.';
COMMENT ON COLUMN prompt_scores.trace_id IS 'The scored trace, or NULL for a call''s score.';
COMMENT ON COLUMN prompt_scores.numeric_value IS 'Value of a numeric score.';
COMMENT ON COLUMN prompt_scores.boolean_value IS 'Value of a boolean score.';
COMMENT ON COLUMN prompt_scores.category IS 'Value of a categorical score.';
COMMENT ON COLUMN prompt_scores.comment IS 'Why, in words (a reviewer''s note, an evaluator''s reasoning).';
COMMENT ON COLUMN prompt_scores.source IS 'Where the score came from: api (default), a user, an annotator, an evaluator...';
COMMENT ON COLUMN prompt_scores.created_at IS 'When it was given.';
COMMENT ON COLUMN prompt_scores.created_by IS 'Session user who gave it.';
COMMENT ON COLUMN prompt_scores.supersedes IS 'The score this one corrects (same call or trace and name), if any.';
COMMENT ON COLUMN prompt_scores.counted_for IS
    'What the score counts for in the statistics: objects of hour, template_id, template_name, version, experiment and variant (the scored call''s; for a trace, each version and variant its calls used).';

-- Scores are history: nothing changes or goes, or the statistics would lie.
CREATE FUNCTION _scores_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'scores cannot be changed or removed'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'To correct a score, score again: the new score supersedes it (prompt_score).';
END
$$;

COMMENT ON FUNCTION _scores_immutable() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE of prompt_scores (55000).';

CREATE TRIGGER trigger_scores_immutable
    BEFORE UPDATE OR DELETE ON prompt_scores
    FOR EACH ROW EXECUTE FUNCTION _scores_immutable();
COMMENT ON TRIGGER trigger_scores_immutable ON prompt_scores IS 'Scores are immutable.';

CREATE TRIGGER trigger_scores_no_truncate
    BEFORE TRUNCATE ON prompt_scores
    FOR EACH STATEMENT EXECUTE FUNCTION _scores_immutable();
COMMENT ON TRIGGER trigger_scores_no_truncate ON prompt_scores IS 'Scores are immutable.';

CREATE VIEW prompt_scores_current AS
SELECT s.id, s.name, s.execution_id, s.trace_id, s.numeric_value, s.boolean_value, s.category,
       s.comment, s.source, s.created_at, s.created_by, s.supersedes
  FROM prompt_scores s
 WHERE NOT EXISTS (SELECT 1 FROM prompt_scores n WHERE n.supersedes = s.id);

COMMENT ON VIEW prompt_scores_current IS 'The scores in force: those no later score supersedes.';
COMMENT ON COLUMN prompt_scores_current.id IS 'The score.';
COMMENT ON COLUMN prompt_scores_current.name IS 'Its name.';
COMMENT ON COLUMN prompt_scores_current.execution_id IS 'The scored call, or NULL.';
COMMENT ON COLUMN prompt_scores_current.trace_id IS 'The scored trace, or NULL.';
COMMENT ON COLUMN prompt_scores_current.numeric_value IS 'Value of a numeric score.';
COMMENT ON COLUMN prompt_scores_current.boolean_value IS 'Value of a boolean score.';
COMMENT ON COLUMN prompt_scores_current.category IS 'Value of a categorical score.';
COMMENT ON COLUMN prompt_scores_current.comment IS 'Why.';
COMMENT ON COLUMN prompt_scores_current.source IS 'Where it came from.';
COMMENT ON COLUMN prompt_scores_current.created_at IS 'When it was given.';
COMMENT ON COLUMN prompt_scores_current.created_by IS 'Who gave it.';
COMMENT ON COLUMN prompt_scores_current.supersedes IS 'The score it corrected, if any.';

------------------------------------------------------------------------------
-- Statistics
------------------------------------------------------------------------------

-- Deltas, appended by prompt_score and folded by prompt_score_stats_compact.
CREATE TABLE prompt_score_stats_pending (
    hour              timestamptz NOT NULL,
    template_id       bigint NOT NULL,
    template_name     text NOT NULL,
    version           integer NOT NULL,
    experiment        text,
    variant           text,
    score             text NOT NULL,
    category          text,
    scores            bigint NOT NULL,
    value_sum         numeric NOT NULL,
    value_sum_squares numeric NOT NULL
);

ALTER TABLE prompt_score_stats_pending SET (autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_scale_factor = 0,
                                            autovacuum_vacuum_cost_delay = 0);

CREATE TABLE prompt_score_stats_hourly (
    hour              timestamptz NOT NULL,
    template_id       bigint NOT NULL,
    template_name     text NOT NULL,
    version           integer NOT NULL,
    experiment        text,
    variant           text,
    score             text NOT NULL,
    category          text,
    scores            bigint NOT NULL,
    value_sum         numeric NOT NULL,
    value_sum_squares numeric NOT NULL,
    CONSTRAINT prompt_score_stats_hourly_key UNIQUE NULLS NOT DISTINCT (hour, template_id, version, experiment, variant, score, category)
);

COMMENT ON TABLE prompt_score_stats_pending IS
    'Score statistics not yet folded into prompt_score_stats_hourly: one row per score and group it counts for (negative when a correction takes one back). Read prompt_score_stats.';
COMMENT ON TABLE prompt_score_stats_hourly IS
    'Folded score statistics per hour (UTC, of the scored calls) and score: per template version (experiment NULL) and per experiment variant. Read prompt_score_stats, which adds the pending deltas.';

CREATE VIEW prompt_score_stats AS
SELECT hour, template_id, max(template_name) AS template_name, version, experiment, variant, score, category,
       sum(scores)::bigint AS scores, sum(value_sum) AS value_sum, sum(value_sum_squares) AS value_sum_squares
  FROM (SELECT hour, template_id, template_name, version, experiment, variant, score, category,
               scores, value_sum, value_sum_squares
          FROM prompt_score_stats_hourly
        UNION ALL
        SELECT hour, template_id, template_name, version, experiment, variant, score, category,
               scores, value_sum, value_sum_squares
          FROM prompt_score_stats_pending) s
 GROUP BY hour, template_id, version, experiment, variant, score, category;

COMMENT ON VIEW prompt_score_stats IS
    'Exact score statistics per hour (UTC, of the scored calls), the rollup plus pending deltas: rows without an experiment are per template version, rows with one per experiment variant. Only scores in force count.';

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['prompt_score_stats_pending', 'prompt_score_stats_hourly', 'prompt_score_stats'] LOOP
        EXECUTE format($c$
            COMMENT ON COLUMN %1$I.hour IS 'Hour (UTC) of the scored calls.';
            COMMENT ON COLUMN %1$I.template_id IS 'Template of the scored calls (prompt_templates.id).';
            COMMENT ON COLUMN %1$I.template_name IS 'Its name when the call was logged.';
            COMMENT ON COLUMN %1$I.version IS 'Template version.';
            COMMENT ON COLUMN %1$I.experiment IS 'Experiment (NULL in per-version rows).';
            COMMENT ON COLUMN %1$I.variant IS 'Experiment variant.';
            COMMENT ON COLUMN %1$I.score IS 'Score name.';
            COMMENT ON COLUMN %1$I.category IS 'Categorical scores: the category counted (NULL for other kinds).';
            COMMENT ON COLUMN %1$I.scores IS 'Scores in force.';
            COMMENT ON COLUMN %1$I.value_sum IS 'Sum of their values (boolean: true counts 1, so this is the trues; categorical: 0).';
            COMMENT ON COLUMN %1$I.value_sum_squares IS 'Sum of their squares (for variances).';
        $c$, r);
    END LOOP;
END
$$;

-- Folds pending deltas into the rollup; never waits (another folder: 0).
CREATE FUNCTION prompt_score_stats_compact()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock('pgprompt.prompt_score_stats_pending'::regclass::oid::integer, 0) THEN
        RETURN 0;
    END IF;
    WITH moved AS (
        DELETE FROM prompt_score_stats_pending RETURNING *
    ), folded AS (
        INSERT INTO prompt_score_stats_hourly AS s
        SELECT hour, template_id, max(template_name), version, experiment, variant, score, category,
               sum(scores), sum(value_sum), sum(value_sum_squares)
          FROM moved
         GROUP BY hour, template_id, version, experiment, variant, score, category
         -- One order for every folder: no two can deadlock on rollup rows.
         ORDER BY hour, template_id, version, experiment, variant, score, category
        ON CONFLICT ON CONSTRAINT prompt_score_stats_hourly_key DO UPDATE SET
               template_name = excluded.template_name,
               scores = s.scores + excluded.scores,
               value_sum = s.value_sum + excluded.value_sum,
               value_sum_squares = s.value_sum_squares + excluded.value_sum_squares
    )
    SELECT count(*) INTO v_folded FROM moved;
    RETURN v_folded;
END
$$;

COMMENT ON FUNCTION prompt_score_stats_compact() IS
    'Folds pending score deltas into prompt_score_stats_hourly and returns how many it folded (0 when another session is folding). prompt_score calls it now and then; cron may too. prompt_score_stats reads the same before and after.';

------------------------------------------------------------------------------
-- Defining and scoring
------------------------------------------------------------------------------

-- Whether any score of this name was ever counted (from the rollups: cheap).
CREATE FUNCTION _score_used(p_name text)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM prompt_score_stats_hourly WHERE score = p_name)
        OR EXISTS (SELECT 1 FROM prompt_score_stats_pending WHERE score = p_name)
$$;

COMMENT ON FUNCTION _score_used(text) IS 'Internal: whether scores of this name exist.';

CREATE FUNCTION prompt_score_define(name text, kind text, min_value numeric DEFAULT NULL, max_value numeric DEFAULT NULL,
                                    categories text[] DEFAULT NULL, description text DEFAULT NULL,
                                    higher_is_better boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    v_old prompt_score_definitions;
BEGIN
    PERFORM _require(name, 'name');
    PERFORM _require(kind, 'kind');
    PERFORM _require(higher_is_better, 'higher_is_better');
    IF name !~ '^[A-Za-z][A-Za-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid score name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A letter, then letters, digits, _ . or -; at most 63 characters.';
    END IF;
    IF kind NOT IN ('numeric', 'boolean', 'categorical') THEN
        RAISE EXCEPTION 'unknown score kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value', HINT = 'numeric, boolean or categorical.';
    END IF;
    IF kind <> 'numeric' AND num_nonnulls(min_value, max_value) > 0 THEN
        RAISE EXCEPTION 'only numeric scores take min_value and max_value (score "%" is %)', name, kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF min_value IN ('NaN', 'Infinity', '-Infinity') OR max_value IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'min_value and max_value must be finite numbers'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave a bound NULL for none.';
    END IF;
    IF min_value > max_value THEN
        RAISE EXCEPTION 'min_value % is above max_value %', min_value, max_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (kind = 'categorical') <> (categories IS NOT NULL) THEN
        RAISE EXCEPTION '%', CASE WHEN kind = 'categorical' THEN format('categorical score "%s" needs its categories', name)
                                  ELSE format('only categorical scores take categories (score "%s" is %s)', name, kind) END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kind = 'categorical' AND (cardinality(categories) = 0 OR cardinality(categories) > 100
                                 OR EXISTS (SELECT 1 FROM unnest(categories) c WHERE c IS NULL OR btrim(c) = '')
                                 OR (SELECT count(DISTINCT c) FROM unnest(categories) c) <> cardinality(categories)) THEN
        RAISE EXCEPTION 'categories must be 1 to 100 distinct, non-empty texts'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO v_old FROM prompt_score_definitions d WHERE d.name = prompt_score_define.name FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO prompt_score_definitions (name, kind, min_value, max_value, categories, description, higher_is_better)
        VALUES (name, kind, min_value, max_value, categories, description, higher_is_better);
        RETURN;
    END IF;
    -- A definition in use may change only so that every score given stays valid.
    IF _score_used(name) AND (
           kind <> v_old.kind
           OR min_value IS DISTINCT FROM v_old.min_value AND (min_value > v_old.min_value OR min_value IS NOT NULL AND v_old.min_value IS NULL)
           OR max_value IS DISTINCT FROM v_old.max_value AND (max_value < v_old.max_value OR max_value IS NOT NULL AND v_old.max_value IS NULL)
           OR NOT (categories @> v_old.categories)) THEN
        RAISE EXCEPTION 'score "%" has scores: its kind cannot change, its range only widen, its categories only grow', name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Defined as %s%s.', v_old.kind,
                                  CASE v_old.kind WHEN 'numeric' THEN format(' from %s to %s', coalesce(v_old.min_value::text, '-∞'), coalesce(v_old.max_value::text, '∞'))
                                                  WHEN 'categorical' THEN ' of ' || array_to_string(v_old.categories, ', ') ELSE '' END),
                  HINT = 'Define a score of another name.';
    END IF;
    UPDATE prompt_score_definitions d
       SET kind = prompt_score_define.kind, min_value = prompt_score_define.min_value, max_value = prompt_score_define.max_value,
           categories = prompt_score_define.categories, description = prompt_score_define.description,
           higher_is_better = prompt_score_define.higher_is_better
     WHERE d.name = prompt_score_define.name;
END
$$;

COMMENT ON FUNCTION prompt_score_define(text, text, numeric, numeric, text[], text, boolean) IS
$$Declares a score name, or changes its declaration: kind numeric (optionally bounded by min_value and max_value, inclusive), boolean, or categorical (with its categories), a description, and which way is better when experiments compare it (higher_is_better). Once scores of the name exist, its kind cannot change, its range can only widen and its categories only grow.
Errors: 22004 NULL name or kind, 22023 a name that is not an identifier, an unknown kind, bounds or categories that do not fit the kind, bounds not finite or crossed, categories empty, repeated or more than 100; 55000 a change that would make given scores invalid.$$;

-- Definitions with scores stay, or the scores would have no meaning.
CREATE FUNCTION _score_definitions_keep()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.name = OLD.name THEN
        RETURN NEW;
    END IF;
    IF _score_used(OLD.name) THEN
        RAISE EXCEPTION 'score "%" has scores and cannot be %', OLD.name, CASE TG_OP WHEN 'DELETE' THEN 'dropped' ELSE 'renamed' END
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

COMMENT ON FUNCTION _score_definitions_keep() IS 'Trigger: refuses to drop or rename a score definition that has scores (55000).';

CREATE TRIGGER trigger_score_definitions_keep
    BEFORE UPDATE OR DELETE ON prompt_score_definitions
    FOR EACH ROW EXECUTE FUNCTION _score_definitions_keep();
COMMENT ON TRIGGER trigger_score_definitions_keep ON prompt_score_definitions IS 'Definitions with scores stay.';

-- prompt_score and prompt_score_trace are written in Rust (pg/scores.rs):
-- they check the value against the declaration, find what the score
-- counts for and the score in force, insert the score superseding it (if
-- another scorer got there first, the unique index says so and they read
-- again) and append the deltas, each a kept plan. They run as the owner
-- (roles.sql), so applications score without writing these tables.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['numeric', 'boolean', 'text'] LOOP
        EXECUTE format($c$COMMENT ON FUNCTION prompt_score(bigint, text, %1$s, text, text) IS %2$L$c$, t,
$t$Scores a logged call (execution: the id prompt_log_execution returned) and returns the score's id. value is a number, true or false, or a text (a category, or a number or boolean written out), as the declared score name wants; comment says why, source who or what gave it. Scoring the same call and name again records a correction that supersedes the score in force (history keeps both; statistics count the new one only). Any role in pgprompt_app may score.
Errors: 22004 NULL execution, name, value or source; 22023 a value of the wrong kind, out of the declared range or not one of the categories, an empty or overlong source; 42704 an undeclared score name, a call that is not logged (or whose month was purged); 40001 under REPEATABLE READ or SERIALIZABLE, when a concurrent score of the same call and name got ahead (retry the transaction).$t$);
        EXECUTE format($c$COMMENT ON FUNCTION prompt_score_trace(text, text, %1$s, text, text) IS %2$L$c$, t,
$t$Scores a trace (every call logged with that trace_id) and returns the score's id: it counts once for each template version and experiment variant the trace's calls used. Otherwise as prompt_score.
Errors: 22004 NULL trace_id, name, value or source; 22023 a value of the wrong kind, out of range or not a category; 42704 an undeclared score name, a trace without logged calls; 40001 as prompt_score.$t$);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

-- Per group and score: count, sum and sum of squares, categories folded
-- into one object. The mean of a boolean score is its rate of true.
CREATE VIEW v_template_scores AS
WITH g AS (
    SELECT template_id, max(template_name) AS template_name, version, score, category,
           sum(scores) AS n, sum(value_sum) AS s, sum(value_sum_squares) AS ss
      FROM prompt_score_stats
     WHERE experiment IS NULL
     GROUP BY template_id, version, score, category
)
SELECT max(g.template_name) AS template, g.template_id, g.version, g.score, d.kind,
       sum(g.n)::bigint AS scores,
       CASE WHEN d.kind <> 'categorical' THEN (sum(g.s) / nullif(sum(g.n), 0))::float8 END AS mean,
       CASE WHEN d.kind = 'numeric' AND sum(g.n) > 1
            THEN sqrt(greatest(sum(g.ss) - sum(g.s) * sum(g.s) / sum(g.n), 0) / (sum(g.n) - 1))::float8 END AS stddev,
       jsonb_object_agg(g.category, g.n ORDER BY g.category) FILTER (WHERE g.category IS NOT NULL AND g.n <> 0) AS categories
  FROM g
  JOIN prompt_score_definitions d ON d.name = g.score
 GROUP BY g.template_id, g.version, g.score, d.kind;

COMMENT ON VIEW v_template_scores IS
    'Scores in force per template version and score name, all time: how many, their mean (for boolean scores the rate of true) and standard deviation, or the count per category.';
COMMENT ON COLUMN v_template_scores.template IS 'Template name.';
COMMENT ON COLUMN v_template_scores.template_id IS 'prompt_templates.id.';
COMMENT ON COLUMN v_template_scores.version IS 'Template version.';
COMMENT ON COLUMN v_template_scores.score IS 'Score name.';
COMMENT ON COLUMN v_template_scores.kind IS 'numeric, boolean or categorical.';
COMMENT ON COLUMN v_template_scores.scores IS 'Scores in force.';
COMMENT ON COLUMN v_template_scores.mean IS 'Mean value (boolean: the share of true); NULL for categorical scores.';
COMMENT ON COLUMN v_template_scores.stddev IS 'Sample standard deviation of numeric scores (NULL under 2 scores).';
COMMENT ON COLUMN v_template_scores.categories IS 'Categorical scores: scores per category.';

CREATE VIEW v_experiment_scores AS
WITH g AS (
    SELECT experiment, variant, max(template_name) AS template_name, version, score, category,
           sum(scores) AS n, sum(value_sum) AS s, sum(value_sum_squares) AS ss
      FROM prompt_score_stats
     WHERE experiment IS NOT NULL
     GROUP BY experiment, variant, version, score, category
)
SELECT g.experiment, g.variant, max(g.template_name) AS template, g.version, g.score, d.kind,
       sum(g.n)::bigint AS scores,
       CASE WHEN d.kind <> 'categorical' THEN (sum(g.s) / nullif(sum(g.n), 0))::float8 END AS mean,
       CASE WHEN d.kind = 'numeric' AND sum(g.n) > 1
            THEN sqrt(greatest(sum(g.ss) - sum(g.s) * sum(g.s) / sum(g.n), 0) / (sum(g.n) - 1))::float8 END AS stddev,
       jsonb_object_agg(g.category, g.n ORDER BY g.category) FILTER (WHERE g.category IS NOT NULL AND g.n <> 0) AS categories
  FROM g
  JOIN prompt_score_definitions d ON d.name = g.score
 GROUP BY g.experiment, g.variant, g.version, g.score, d.kind;

COMMENT ON VIEW v_experiment_scores IS
    'Scores in force per experiment variant and score name: how many, their mean (boolean: the share of true) and standard deviation, or the count per category.';
COMMENT ON COLUMN v_experiment_scores.experiment IS 'Experiment.';
COMMENT ON COLUMN v_experiment_scores.variant IS 'Variant.';
COMMENT ON COLUMN v_experiment_scores.template IS 'Template name.';
COMMENT ON COLUMN v_experiment_scores.version IS 'The variant''s version.';
COMMENT ON COLUMN v_experiment_scores.score IS 'Score name.';
COMMENT ON COLUMN v_experiment_scores.kind IS 'numeric, boolean or categorical.';
COMMENT ON COLUMN v_experiment_scores.scores IS 'Scores in force.';
COMMENT ON COLUMN v_experiment_scores.mean IS 'Mean value (boolean: the share of true); NULL for categorical scores.';
COMMENT ON COLUMN v_experiment_scores.stddev IS 'Sample standard deviation of numeric scores (NULL under 2 scores).';
COMMENT ON COLUMN v_experiment_scores.categories IS 'Categorical scores: scores per category.';

SELECT pg_catalog.pg_extension_config_dump('prompt_score_definitions', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_scores', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_scores_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_score_stats_pending', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_score_stats_hourly', '');
