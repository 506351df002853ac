-- The analytics benchmark's data: :rows calls over the last 90 days, in time
-- order as they would arrive, inserted in batches of :batch so the
-- statistics triggers see realistic statements. 20 templates with 2
-- versions, 3 models, 3% failures, long-tailed latencies, 1% of calls with a
-- guardrail finding.
\set ON_ERROR_STOP on
CREATE EXTENSION pgprompt;
SELECT pgprompt.prompt_save('template_' || t, 'Prompt {{ x }} number ' || t, '{"model": "gemini-2.5-flash"}') FROM generate_series(1, 20) t;
SELECT pgprompt.prompt_save('template_' || t, 'Prompt {{ x }} number ' || t || ', second version') FROM generate_series(1, 20) t;
SELECT pgprompt._executions_partition(d) FROM generate_series(now() - interval '92 days', now(), interval '1 day') d;

CREATE TABLE pg_temp.origin AS SELECT now() - interval '90 days' AS start;
-- One batch, one transaction (run by \gexec below).
CREATE FUNCTION pg_temp.fill(v_from bigint, p_batch bigint, p_rows bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_start timestamptz := (SELECT start FROM pg_temp.origin);
    v_step interval := interval '90 days' / p_rows;
BEGIN
        INSERT INTO pgprompt.prompt_executions (executed_at, template_id, template_name, version, user_id, model,
                    input_tokens, output_tokens, cached_input_tokens, cost_usd, latency_ms, success, error_message, metadata)
        SELECT v_start + i * v_step, t.id, t.name, 1 + (i % 7 = 0)::int, 'user-' || (i % 50000),
               m.model, tin, tout, 0, round((tin * m.input + tout * m.output) / 1000000, 12),
               (200 + 100 * (i % 13) + CASE WHEN i % 97 = 0 THEN 9000 ELSE 0 END)::int,
               i % 33 <> 0, CASE WHEN i % 33 = 0 THEN 'provider timeout' END, '{}'
          FROM generate_series(v_from + 1, least(v_from + p_batch, p_rows)) i
          CROSS JOIN LATERAL (SELECT 500 + (i * 7919) % 3000 AS tin, 50 + (i * 104729) % 800 AS tout) k
          JOIN pgprompt.prompt_templates t ON t.name = 'template_' || (1 + (i * 31) % 20)
          CROSS JOIN LATERAL (VALUES (CASE i % 3 WHEN 0 THEN 'gemini-2.5-flash' WHEN 1 THEN 'gpt-4o-mini' ELSE 'claude-haiku-4-5' END,
                                      CASE i % 3 WHEN 0 THEN 0.30 WHEN 1 THEN 0.15 ELSE 1.00 END,
                                      CASE i % 3 WHEN 0 THEN 2.50 WHEN 1 THEN 0.60 ELSE 5.00 END)) m(model, input, output);
        INSERT INTO pgprompt.prompt_guardrail_violations (occurred_at, guardrail, template, direction, kind, entity, severity, action)
        SELECT v_start + i * v_step, 'pii_detection_basic', 'template_' || (1 + (i * 31) % 20), 'input', 'pii',
               CASE i % 3 WHEN 0 THEN 'EMAIL_ADDRESS' WHEN 1 THEN 'PHONE_NUMBER' ELSE 'CREDIT_CARD' END, 'critical', 'redact'
          FROM generate_series(v_from + 1, least(v_from + p_batch, p_rows)) i
         WHERE i % 100 = 0;
END
$$;
SELECT format('SELECT pg_temp.fill(%s, %s, %s)', f, :batch, :rows) FROM generate_series(0, :rows - 1, :batch) f \gexec
SELECT pgprompt.prompt_stats_compact() AS folded;
VACUUM ANALYZE;
