-- Traces and sessions.
--
-- A trace is the application's unit of work: one request or one turn of a
-- conversation, often several calls (classify, retrieve, answer). Calls
-- name it with prompt_log_execution(trace_id =>, parent_id =>, session_id =>);
-- a session (a conversation) groups traces. These views read the calls
-- through the per-partition indexes on trace_id and session_id, so asking
-- for one trace or session touches only its rows.

CREATE VIEW v_trace_calls AS
SELECT e.trace_id,
       row_number() OVER (PARTITION BY e.trace_id ORDER BY e.executed_at, e.id) AS step,
       e.id,
       e.parent_id,
       e.session_id,
       e.executed_at,
       e.template_name AS template,
       e.version,
       e.experiment,
       e.variant,
       e.model,
       e.input_tokens,
       e.output_tokens,
       e.cost_usd,
       e.latency_ms,
       e.success,
       e.error_message
  FROM prompt_executions e
 WHERE e.trace_id IS NOT NULL;

COMMENT ON VIEW v_trace_calls IS
    'The calls of each trace in the order they were made (filter on trace_id: SELECT * FROM v_trace_calls WHERE trace_id = ... ORDER BY step).';
COMMENT ON COLUMN v_trace_calls.trace_id IS 'The trace.';
COMMENT ON COLUMN v_trace_calls.step IS 'Position of the call in its trace (1 = first), by executed_at then id.';
COMMENT ON COLUMN v_trace_calls.id IS 'The call (prompt_executions.id).';
COMMENT ON COLUMN v_trace_calls.parent_id IS 'The call that caused it, if given.';
COMMENT ON COLUMN v_trace_calls.session_id IS 'Its session, if given.';
COMMENT ON COLUMN v_trace_calls.executed_at IS 'When the call was made.';
COMMENT ON COLUMN v_trace_calls.template IS 'Template name at the time.';
COMMENT ON COLUMN v_trace_calls.version IS 'Template version.';
COMMENT ON COLUMN v_trace_calls.experiment IS 'Experiment, if any.';
COMMENT ON COLUMN v_trace_calls.variant IS 'Experiment variant.';
COMMENT ON COLUMN v_trace_calls.model IS 'Model.';
COMMENT ON COLUMN v_trace_calls.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_trace_calls.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_trace_calls.cost_usd IS 'Cost in USD (NULL: the model has no price).';
COMMENT ON COLUMN v_trace_calls.latency_ms IS 'Latency in milliseconds.';
COMMENT ON COLUMN v_trace_calls.success IS 'Whether the call succeeded.';
COMMENT ON COLUMN v_trace_calls.error_message IS 'Why it failed (redacted as stored).';

CREATE VIEW v_traces AS
SELECT e.trace_id,
       (array_agg(e.session_id ORDER BY e.executed_at, e.id) FILTER (WHERE e.session_id IS NOT NULL))[1] AS session_id,
       min(e.executed_at) AS started_at,
       max(e.executed_at + coalesce(e.latency_ms, 0) * interval '1 millisecond') AS ended_at,
       count(*) AS calls,
       count(*) FILTER (WHERE NOT e.success) AS failed_calls,
       sum(e.input_tokens)::bigint AS input_tokens,
       sum(e.output_tokens)::bigint AS output_tokens,
       sum(e.cost_usd) AS cost_usd,
       count(*) FILTER (WHERE e.cost_usd IS NULL) AS unpriced_calls,
       sum(e.latency_ms)::bigint AS latency_ms,
       (extract(epoch FROM max(e.executed_at + coalesce(e.latency_ms, 0) * interval '1 millisecond') - min(e.executed_at))
            * 1000)::bigint AS duration_ms,
       array_agg(DISTINCT e.template_name ORDER BY e.template_name) AS templates
  FROM prompt_executions e
 WHERE e.trace_id IS NOT NULL
 GROUP BY e.trace_id;

COMMENT ON VIEW v_traces IS
    'One row per trace: its calls, tokens, cost and latency in total (filter on trace_id or session_id).';
COMMENT ON COLUMN v_traces.trace_id IS 'The trace.';
COMMENT ON COLUMN v_traces.session_id IS 'The session of its first call that names one.';
COMMENT ON COLUMN v_traces.started_at IS 'When its first call was made.';
COMMENT ON COLUMN v_traces.ended_at IS 'When its last call ended (executed_at plus latency).';
COMMENT ON COLUMN v_traces.calls IS 'Calls in the trace.';
COMMENT ON COLUMN v_traces.failed_calls IS 'Of which failed.';
COMMENT ON COLUMN v_traces.input_tokens IS 'Input tokens of all its calls.';
COMMENT ON COLUMN v_traces.output_tokens IS 'Output tokens of all its calls.';
COMMENT ON COLUMN v_traces.cost_usd IS 'Cost of its priced calls in USD, exact (see unpriced_calls).';
COMMENT ON COLUMN v_traces.unpriced_calls IS 'Calls of models without a price, not in cost_usd.';
COMMENT ON COLUMN v_traces.latency_ms IS 'Sum of its calls'' latencies in milliseconds (the time spent waiting on models).';
COMMENT ON COLUMN v_traces.duration_ms IS 'Wall time from its first call to the end of its last, in milliseconds (less than latency_ms when calls overlapped).';
COMMENT ON COLUMN v_traces.templates IS 'Templates its calls used.';

CREATE VIEW v_sessions AS
SELECT e.session_id,
       count(DISTINCT e.trace_id) AS traces,
       count(*) AS calls,
       count(*) FILTER (WHERE NOT e.success) AS failed_calls,
       min(e.executed_at) AS started_at,
       max(e.executed_at + coalesce(e.latency_ms, 0) * interval '1 millisecond') AS ended_at,
       sum(e.input_tokens)::bigint AS input_tokens,
       sum(e.output_tokens)::bigint AS output_tokens,
       sum(e.cost_usd) AS cost_usd,
       count(*) FILTER (WHERE e.cost_usd IS NULL) AS unpriced_calls,
       array_agg(DISTINCT e.trace_id ORDER BY e.trace_id) FILTER (WHERE e.trace_id IS NOT NULL) AS trace_ids
  FROM prompt_executions e
 WHERE e.session_id IS NOT NULL
 GROUP BY e.session_id;

COMMENT ON VIEW v_sessions IS
    'One row per session: its traces and calls, tokens and cost (filter on session_id).';
COMMENT ON COLUMN v_sessions.session_id IS 'The session.';
COMMENT ON COLUMN v_sessions.traces IS 'Traces of the session.';
COMMENT ON COLUMN v_sessions.calls IS 'Calls of the session.';
COMMENT ON COLUMN v_sessions.failed_calls IS 'Of which failed.';
COMMENT ON COLUMN v_sessions.started_at IS 'Its first call.';
COMMENT ON COLUMN v_sessions.ended_at IS 'When its last call ended.';
COMMENT ON COLUMN v_sessions.input_tokens IS 'Input tokens of all its calls.';
COMMENT ON COLUMN v_sessions.output_tokens IS 'Output tokens of all its calls.';
COMMENT ON COLUMN v_sessions.cost_usd IS 'Cost of its priced calls in USD, exact.';
COMMENT ON COLUMN v_sessions.unpriced_calls IS 'Calls of models without a price.';
COMMENT ON COLUMN v_sessions.trace_ids IS 'Its traces, by id.';
