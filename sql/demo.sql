-- What `make run` adds to the demo database (after examples.sql) so the web
-- interface (`pgprompt serve`) has something to show: a second version of
-- nlu_topic_extraction, an A/B experiment between its two versions, and two
-- weeks of logged calls. Deterministic (hashes, not random()) and run only
-- on a database without logged calls, so running `make run` again changes
-- nothing. Not part of the extension.

SET search_path = pgprompt, public;

DO $$
BEGIN
    IF EXISTS (SELECT FROM prompt_executions) THEN
        RETURN;
    END IF;

    -- A shorter wording to test against the release.
    PERFORM prompt_save('nlu_topic_extraction',
        'Topics in this {{ grade_level }}th grader''s question, most relevant first (at most {{ max_topics | default(3) }}), as JSON {"topics": [{"name": "..."}]}: "{{ student_query }}"{% if subject_hint %} (subject: {{ subject_hint }}){% endif %}',
        message => 'concise wording for the topic extractor');
    PERFORM prompt_experiment_create('topic_wording', 'nlu_topic_extraction',
        '[{"name": "control", "version": 1, "weight": 50}, {"name": "concise", "version": 2, "weight": 50}]',
        min_sample_size => 200, description => 'Does the concise wording extract topics as reliably, faster and cheaper?');
    PERFORM prompt_experiment_start('topic_wording');

    -- Calls over the last 14 days: per day and template a few dozen, with
    -- tokens, latency and failures drawn from a hash of the call.
    PERFORM prompt_log_execution(
        template => t.name,
        version => a.version,
        input_tokens => 300 + h % 700 - CASE WHEN a.version = 2 THEN 150 ELSE 0 END,
        output_tokens => 80 + (h / 7) % 400,
        latency_ms => 250 + (h / 11) % 900 + CASE WHEN h % 19 = 0 THEN 2500 ELSE 0 END - CASE WHEN a.version = 2 THEN 120 ELSE 0 END,
        success => (h / 13) % 100 >= CASE WHEN a.version = 2 THEN 3 ELSE 6 END,
        error_message => CASE WHEN (h / 13) % 100 < CASE WHEN a.version = 2 THEN 3 ELSE 6 END THEN 'model returned invalid JSON' END,
        user_id => u.user_id,
        experiment => CASE WHEN t.name = 'nlu_topic_extraction' THEN 'topic_wording' END,
        variant => CASE WHEN t.name = 'nlu_topic_extraction' THEN CASE a.version WHEN 1 THEN 'control' ELSE 'concise' END END,
        executed_at => date_trunc('day', now()) - make_interval(days => d) + make_interval(mins => h % 1440))
      FROM generate_series(1, 14) d,
           (VALUES ('nlu_topic_extraction', 40), ('clarification_question_generation', 15), ('educational_script_generation', 12)) t (name, per_day),
           LATERAL generate_series(1, t.per_day + (d * 7) % 11) i,
           LATERAL (SELECT abs(hashtext(t.name || ':' || d || ':' || i)) AS h) x,
           LATERAL (SELECT 'student-' || (x.h % 400) AS user_id) u,
           LATERAL (SELECT CASE WHEN t.name = 'nlu_topic_extraction' THEN prompt_assign(t.name, u.user_id) END AS version) a;
END
$$;
