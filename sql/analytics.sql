-- Analytics views and alerts, for BI tools, Grafana and people with psql.
--
-- The views read the hourly rollups kept by the statistics triggers (plus
-- the pending deltas), never the raw calls, so they answer in milliseconds
-- however many calls there are; percentiles come from the per-hour latency
-- sketches (within 1%). Only the error list
-- (v_recent_execution_errors), the guardrail summary and the alert windows
-- read raw rows, through indexes on recent time. Money is numeric, time is
-- timestamptz (days and hours in UTC).

------------------------------------------------------------------------------
-- Views
------------------------------------------------------------------------------

CREATE VIEW v_template_performance AS
SELECT max(s.template_name) AS template,
       s.template_id,
       s.version,
       sum(s.executions)::bigint AS executions,
       sum(s.successes)::bigint AS successes,
       sum(s.successes)::float8 / nullif(sum(s.executions), 0) AS success_rate,
       sum(s.latency_sum_ms)::float8 / nullif(sum(s.latency_count), 0) AS avg_latency_ms,
       prompt_latency_quantile(prompt_latency_histogram(s.latency_histogram), 0.5) AS p50_latency_ms,
       prompt_latency_quantile(prompt_latency_histogram(s.latency_histogram), 0.95) AS p95_latency_ms,
       sum(s.input_tokens)::bigint AS input_tokens,
       sum(s.output_tokens)::bigint AS output_tokens,
       sum(s.cached_input_tokens)::bigint AS cached_input_tokens,
       sum(s.cost_usd) AS total_cost_usd,
       trim_scale(round(sum(s.cost_usd) / nullif(sum(s.priced_executions), 0), 12)) AS avg_cost_usd,
       max(s.last_executed_at) AS last_executed_at
  FROM prompt_stats_rows s
 WHERE s.experiment IS NULL
   AND s.hour >= date_trunc('hour', now()) - interval '30 days'
 GROUP BY s.template_id, s.version;

COMMENT ON VIEW v_template_performance IS
    'Per template version, over the last 30 days (by hour, UTC): calls, success rate, latency (mean, p50, p95 from histograms), tokens and cost. For other windows aggregate prompt_template_stats.';
COMMENT ON COLUMN v_template_performance.template IS 'Template name (kept after the template is deleted).';
COMMENT ON COLUMN v_template_performance.template_id IS 'prompt_templates.id (the row may be gone).';
COMMENT ON COLUMN v_template_performance.version IS 'Template version.';
COMMENT ON COLUMN v_template_performance.executions IS 'Calls logged.';
COMMENT ON COLUMN v_template_performance.successes IS 'Successful calls.';
COMMENT ON COLUMN v_template_performance.success_rate IS 'successes / executions (NULL without calls).';
COMMENT ON COLUMN v_template_performance.avg_latency_ms IS 'Mean latency of calls with a latency, ms.';
COMMENT ON COLUMN v_template_performance.p50_latency_ms IS 'Median latency, ms (from the latency sketches: within 1%; 12% for hours logged before 0.2.0).';
COMMENT ON COLUMN v_template_performance.p95_latency_ms IS '95th percentile latency, ms (from the latency sketches: within 1%; 12% for hours logged before 0.2.0).';
COMMENT ON COLUMN v_template_performance.input_tokens IS 'Input tokens, cached ones included.';
COMMENT ON COLUMN v_template_performance.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_template_performance.cached_input_tokens IS 'Input tokens served from the provider cache.';
COMMENT ON COLUMN v_template_performance.total_cost_usd IS 'Cost of the priced calls, USD, exact.';
COMMENT ON COLUMN v_template_performance.avg_cost_usd IS 'Mean cost of a priced call, USD (12 decimal places).';
COMMENT ON COLUMN v_template_performance.last_executed_at IS 'The newest call.';

CREATE VIEW v_recent_execution_errors AS
SELECT e.id, e.executed_at, e.template_name AS template, e.template_id, e.version, e.model, e.user_id,
       e.error_message, e.latency_ms, e.experiment, e.variant
  FROM prompt_executions e
 WHERE NOT e.success
   AND e.executed_at >= now() - interval '24 hours'
 ORDER BY e.executed_at DESC, e.id DESC
 LIMIT 100;

COMMENT ON VIEW v_recent_execution_errors IS
    'The last 100 failed calls of the last 24 hours, newest first (no prompt or response text).';
COMMENT ON COLUMN v_recent_execution_errors.id IS 'prompt_executions.id.';
COMMENT ON COLUMN v_recent_execution_errors.executed_at IS 'When the call was made.';
COMMENT ON COLUMN v_recent_execution_errors.template IS 'Template name.';
COMMENT ON COLUMN v_recent_execution_errors.template_id IS 'prompt_templates.id.';
COMMENT ON COLUMN v_recent_execution_errors.version IS 'Template version.';
COMMENT ON COLUMN v_recent_execution_errors.model IS 'Model called.';
COMMENT ON COLUMN v_recent_execution_errors.user_id IS 'The application''s user.';
COMMENT ON COLUMN v_recent_execution_errors.error_message IS 'Why it failed.';
COMMENT ON COLUMN v_recent_execution_errors.latency_ms IS 'How long it took, ms.';
COMMENT ON COLUMN v_recent_execution_errors.experiment IS 'Experiment, if any.';
COMMENT ON COLUMN v_recent_execution_errors.variant IS 'Experiment variant.';

CREATE VIEW v_guardrail_violations_summary AS
SELECT (date_trunc('day', v.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS day,
       v.guardrail, v.template, max(v.severity) AS severity,
       count(*)::bigint AS violations,
       count(*) FILTER (WHERE v.action = 'block')::bigint AS blocked,
       count(*) FILTER (WHERE v.action = 'redact')::bigint AS redacted,
       count(*) FILTER (WHERE v.direction = 'input')::bigint AS in_input,
       count(*) FILTER (WHERE v.direction = 'output')::bigint AS in_output,
       array_agg(DISTINCT v.entity ORDER BY v.entity) AS entities
  FROM prompt_guardrail_violations v
 GROUP BY 1, v.guardrail, v.template;

COMMENT ON VIEW v_guardrail_violations_summary IS
    'Guardrail findings per day (UTC), guardrail and template. Filter on day: WHERE day >= now() - interval ''30 days''.';
COMMENT ON COLUMN v_guardrail_violations_summary.day IS 'Start of the day, UTC.';
COMMENT ON COLUMN v_guardrail_violations_summary.guardrail IS 'Guardrail name.';
COMMENT ON COLUMN v_guardrail_violations_summary.template IS 'Template the content belonged to (NULL: none given).';
COMMENT ON COLUMN v_guardrail_violations_summary.severity IS 'The guardrail''s severity.';
COMMENT ON COLUMN v_guardrail_violations_summary.violations IS 'Findings.';
COMMENT ON COLUMN v_guardrail_violations_summary.blocked IS 'Findings whose action was block.';
COMMENT ON COLUMN v_guardrail_violations_summary.redacted IS 'Findings whose action was redact.';
COMMENT ON COLUMN v_guardrail_violations_summary.in_input IS 'Findings in prompts.';
COMMENT ON COLUMN v_guardrail_violations_summary.in_output IS 'Findings in responses.';
COMMENT ON COLUMN v_guardrail_violations_summary.entities IS 'What was found (EMAIL_ADDRESS, instruction_override, ...).';

CREATE VIEW v_daily_costs AS
SELECT (date_trunc('day', s.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS day,
       max(s.template_name) AS template, s.template_id,
       sum(s.executions)::bigint AS executions,
       sum(s.input_tokens)::bigint AS input_tokens,
       sum(s.output_tokens)::bigint AS output_tokens,
       sum(s.cached_input_tokens)::bigint AS cached_input_tokens,
       sum(s.cost_usd) AS cost_usd,
       (sum(s.executions) - sum(s.priced_executions))::bigint AS unpriced_executions
  FROM prompt_stats_rows s
 WHERE s.experiment IS NULL
 GROUP BY 1, s.template_id;

COMMENT ON VIEW v_daily_costs IS
    'Cost and tokens per day (UTC) and template, from the rollups. Filter on day: WHERE day >= now() - interval ''30 days''.';
COMMENT ON COLUMN v_daily_costs.day IS 'Start of the day, UTC.';
COMMENT ON COLUMN v_daily_costs.template IS 'Template name.';
COMMENT ON COLUMN v_daily_costs.template_id IS 'prompt_templates.id (the row may be gone).';
COMMENT ON COLUMN v_daily_costs.executions IS 'Calls.';
COMMENT ON COLUMN v_daily_costs.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_daily_costs.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_daily_costs.cached_input_tokens IS 'Cached input tokens.';
COMMENT ON COLUMN v_daily_costs.cost_usd IS 'Cost of the priced calls, USD, exact.';
COMMENT ON COLUMN v_daily_costs.unpriced_executions IS 'Calls of models without a price (not in cost_usd).';

CREATE VIEW v_hourly_error_rates AS
SELECT s.hour, max(s.template_name) AS template, s.template_id,
       sum(s.executions)::bigint AS executions,
       (sum(s.executions) - sum(s.successes))::bigint AS errors,
       (sum(s.executions) - sum(s.successes))::float8 / nullif(sum(s.executions), 0) AS error_rate,
       sum(s.successes)::float8 / nullif(sum(s.executions), 0) AS success_rate
  FROM prompt_stats_rows s
 WHERE s.experiment IS NULL
 GROUP BY s.hour, s.template_id;

COMMENT ON VIEW v_hourly_error_rates IS
    'Calls and errors per hour (UTC) and template, from the rollups. Filter on hour: WHERE hour >= now() - interval ''7 days''.';
COMMENT ON COLUMN v_hourly_error_rates.hour IS 'Start of the hour.';
COMMENT ON COLUMN v_hourly_error_rates.template IS 'Template name.';
COMMENT ON COLUMN v_hourly_error_rates.template_id IS 'prompt_templates.id (the row may be gone).';
COMMENT ON COLUMN v_hourly_error_rates.executions IS 'Calls.';
COMMENT ON COLUMN v_hourly_error_rates.errors IS 'Failed calls.';
COMMENT ON COLUMN v_hourly_error_rates.error_rate IS 'errors / executions (NULL without calls).';
COMMENT ON COLUMN v_hourly_error_rates.success_rate IS '1 - error_rate.';

------------------------------------------------------------------------------
-- Alerts
------------------------------------------------------------------------------

CREATE TABLE prompt_alert_rules (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    metric          text NOT NULL,
    template_id     bigint REFERENCES prompt_templates (id) ON DELETE CASCADE,
    threshold       numeric NOT NULL,
    time_window     interval NOT NULL,
    min_executions  integer NOT NULL DEFAULT 1,
    enabled         boolean NOT NULL DEFAULT true,
    description     text,
    builtin         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT session_user,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text NOT NULL DEFAULT session_user
);

COMMENT ON TABLE prompt_alert_rules IS
    'Alert rules checked by prompt_check_alerts: a metric over a time window, for all templates or one, against a threshold.';
COMMENT ON COLUMN prompt_alert_rules.id IS 'Surrogate key.';
COMMENT ON COLUMN prompt_alert_rules.name IS 'Unique name.';
COMMENT ON COLUMN prompt_alert_rules.metric IS
    'daily_cost_usd (cost in the window scaled to a day; fires above), p95_latency_ms (fires above), error_rate (0..1, fires above), success_rate (0..1, fires below).';
COMMENT ON COLUMN prompt_alert_rules.template_id IS 'The template it watches; NULL: all templates together.';
COMMENT ON COLUMN prompt_alert_rules.threshold IS 'The limit.';
COMMENT ON COLUMN prompt_alert_rules.time_window IS 'How far back the metric looks (the last 5 minutes, the last day, ...).';
COMMENT ON COLUMN prompt_alert_rules.min_executions IS 'Calls the window needs before a rate or percentile may fire.';
COMMENT ON COLUMN prompt_alert_rules.enabled IS 'Disabled rules are not checked.';
COMMENT ON COLUMN prompt_alert_rules.description IS 'What it guards.';
COMMENT ON COLUMN prompt_alert_rules.builtin IS 'Installed by CREATE EXTENSION (the seeds'' four rules).';
COMMENT ON COLUMN prompt_alert_rules.created_at IS 'When the rule was created.';
COMMENT ON COLUMN prompt_alert_rules.created_by IS 'Session user who created it.';
COMMENT ON COLUMN prompt_alert_rules.updated_at IS 'Last change (maintained by trigger).';
COMMENT ON COLUMN prompt_alert_rules.updated_by IS 'Session user of the last change (maintained by trigger).';

CREATE FUNCTION _alert_rules_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' AND _restoring() THEN
        PERFORM _replace_builtin(TG_RELID, 'name', NEW.id, NEW.name);
    END IF;
    IF NEW.metric IS NULL OR NEW.metric NOT IN ('daily_cost_usd', 'p95_latency_ms', 'error_rate', 'success_rate') THEN
        RAISE EXCEPTION 'unknown alert metric "%"', NEW.metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Metrics: daily_cost_usd, p95_latency_ms, error_rate, success_rate.';
    END IF;
    IF NEW.time_window IS NULL OR NEW.time_window <= interval '0' OR NEW.time_window > interval '366 days' THEN
        RAISE EXCEPTION 'alert window must be positive and at most 366 days (got %)', NEW.time_window
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.threshold IS NULL OR NEW.threshold < 0 OR NEW.threshold = 'NaN'
       OR (NEW.metric IN ('error_rate', 'success_rate') AND NEW.threshold > 1) THEN
        RAISE EXCEPTION 'threshold % does not suit %', NEW.threshold, NEW.metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Rates are fractions from 0 to 1; costs and latencies are not negative.';
    END IF;
    IF NEW.min_executions < 1 THEN
        RAISE EXCEPTION 'min_executions must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _alert_rules_validate() IS
    'Trigger: refuses an unknown metric, a window that is not positive, a threshold that does not suit the metric (22023); a restored row replaces the built-in one.';

CREATE TRIGGER trigger_stamp_new_rows
    BEFORE INSERT ON prompt_alert_rules
    FOR EACH ROW EXECUTE FUNCTION _stamp_new_row();
COMMENT ON TRIGGER trigger_stamp_new_rows ON prompt_alert_rules IS
    'created_at/by and updated_at/by of a new alert rule are now and the session user, builtin is false.';

CREATE TRIGGER trigger_validate_prompt_alert_rules
    BEFORE INSERT OR UPDATE ON prompt_alert_rules
    FOR EACH ROW EXECUTE FUNCTION _alert_rules_validate();
COMMENT ON TRIGGER trigger_validate_prompt_alert_rules ON prompt_alert_rules IS 'Rules are checked for direct SQL too.';

CREATE TRIGGER trigger_update_prompt_alert_rules_timestamp
    BEFORE UPDATE ON prompt_alert_rules
    FOR EACH ROW EXECUTE FUNCTION _touch_updated();
COMMENT ON TRIGGER trigger_update_prompt_alert_rules_timestamp ON prompt_alert_rules IS
    'Maintains updated_at and updated_by.';

CREATE TRIGGER trigger_audit_prompt_alert_rules
    AFTER INSERT OR UPDATE OR DELETE ON prompt_alert_rules
    FOR EACH ROW EXECUTE FUNCTION _audit_row('alert_rule', 'name');
COMMENT ON TRIGGER trigger_audit_prompt_alert_rules ON prompt_alert_rules IS 'Writes prompt_audit_logs.';

-- The seeds' monitoring thresholds.
INSERT INTO prompt_alert_rules (name, metric, threshold, time_window, min_executions, description, builtin) VALUES
    ('daily_cost',   'daily_cost_usd', 10,   '1 day',      1,  'Cost over $10 per day.', true),
    ('p95_latency',  'p95_latency_ms', 5000, '5 minutes',  20, 'p95 latency over 5000 ms for 5 minutes.', true),
    ('error_rate',   'error_rate',     0.05, '15 minutes', 20, 'Error rate over 5% for 15 minutes.', true),
    ('success_rate', 'success_rate',   0.95, '30 minutes', 20, 'Success rate under 95% for 30 minutes.', true);

SELECT pg_catalog.pg_extension_config_dump('prompt_alert_rules', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_alert_rules_id_seq', '');

CREATE FUNCTION prompt_check_alerts()
RETURNS TABLE (rule text, template text, value numeric, threshold numeric, "window" interval, firing boolean)
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    r prompt_alert_rules;
    v_calls bigint;
BEGIN
    FOR r IN SELECT * FROM prompt_alert_rules a WHERE a.enabled ORDER BY a.name LOOP
        -- Raw calls of the window: the BRIN index on executed_at finds them
        -- for all templates, the (template_id, executed_at) index for one.
        SELECT count(*),
               CASE r.metric
                   WHEN 'daily_cost_usd' THEN coalesce(sum(e.cost_usd), 0)
                        * (86400 / extract(epoch FROM r.time_window))
                   -- The sketch the views read (within 1%), so an alert and
                   -- the dashboard agree on the p95 of the same calls.
                   WHEN 'p95_latency_ms' THEN
                        prompt_latency_quantile(_hist_from_buckets(_latency_bucket(e.latency_ms), 1), 0.95)::numeric
                   WHEN 'error_rate' THEN
                        (count(*) FILTER (WHERE NOT e.success))::numeric / nullif(count(*), 0)
                   WHEN 'success_rate' THEN
                        (count(*) FILTER (WHERE e.success))::numeric / nullif(count(*), 0)
               END
          INTO v_calls, value
          FROM prompt_executions e
         WHERE e.executed_at > now() - r.time_window
           AND (r.template_id IS NULL OR e.template_id = r.template_id);
        rule := r.name;
        template := (SELECT t.name FROM prompt_templates t WHERE t.id = r.template_id);
        value := round(value, 6);
        threshold := r.threshold;
        "window" := r.time_window;
        firing := value IS NOT NULL
                  AND (r.metric = 'daily_cost_usd' OR v_calls >= r.min_executions)
                  AND CASE WHEN r.metric = 'success_rate' THEN value < r.threshold ELSE value > r.threshold END;
        IF firing THEN
            PERFORM _publish('pgprompt_alerts', jsonb_build_object(
                'rule', r.name, 'metric', r.metric, 'template', template, 'value', value,
                'threshold', r.threshold, 'window', r.time_window::text, 'executions', v_calls)::text);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION prompt_check_alerts() IS
$$Evaluates every enabled alert rule over its window of raw calls and returns one row per rule: the metric's value (NULL without calls), the threshold and whether it fires (rates and percentiles need min_executions calls). Firing rules also NOTIFY pgprompt_alerts with {"rule", "metric", "template", "value", "threshold", "window", "executions"}, delivered at commit. Run it from cron or pg_cron every minute.$$;
