-- Setup of the logging benchmark (.ci/bench, BENCH=log).
CREATE EXTENSION pgprompt;
SELECT pgprompt.prompt_save('bench_tutor', 'Explain {{ topic }} to a grade {{ grade }} student.', '{"model": "gemini-2.5-flash"}');

-- The texts of a realistic call: the 2 KB prompt of the render benchmark
-- and a 700-byte answer.
CREATE TABLE texts AS SELECT
$p$You are Ada, a patient tutor on an educational video platform for K-12 students.
The student you are helping is in grade 7 and is studying biology. Always answer in English.
Your goals, in order. 1. Understand what the student is really asking. If the question is ambiguous, ask one short
clarifying question instead of guessing. 2. Explain the idea at the right level for the grade. Prefer concrete,
everyday examples over abstract definitions. 3. Check understanding by ending with one short question the student
can answer in a sentence.
Style rules. Use short sentences and common words. Define any technical term the first time you use it. Never make
the student feel bad about a mistake; point out what was right first. Do not give the full answer to homework
problems. Give the next step and a hint. Keep answers under 200 words unless the student asks for more detail. Use
numbered steps for procedures and bullet points for lists of facts. If you use a formula, explain every symbol in it.
Safety rules. Do not ask for or repeat personal information such as addresses, phone numbers or full names. If the
student mentions being unsafe or in danger, tell them to talk to a trusted adult or teacher right away. Stay on
educational topics. Politely decline requests that are not about learning.
Examples of good habits. When asked why the sky is blue, talk about sunlight being made of many colours before
mentioning scattering. When asked to solve an equation, show the first step and ask the student to try the next one.
Format. Start with a one-sentence answer. Then give the explanation. Then the check-for-understanding question, on
its own line.
The student's question is "Why do leaves change colour in autumn?"
Remember, you are Ada, and your job is to help a grade 7 student understand biology, not to do the work for them.$p$::text AS prompt,
$r$Leaves change colour because the green pigment, chlorophyll, breaks down when the days get shorter and colder.
Chlorophyll is the chemical that lets a leaf turn sunlight into food. In summer the tree keeps making new chlorophyll,
so the green hides the other colours. In autumn the tree stops making it and pulls useful materials back into its
branches. Then the yellow and orange pigments that were there all along can finally show, and some trees also make
new red pigments from sugars trapped in the leaf.
Your turn. Why do you think evergreen trees stay green all winter?$r$::text AS response,
'{"request_id": "r-1"}'::text AS metadata;

-- The baseline: the same columns, constraints and indexes, no triggers.
-- And the seeds' design: the same again, with a row trigger that updates one
-- statistics row per template.
CREATE TABLE plain (LIKE pgprompt.prompt_executions INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (executed_at);
CREATE TABLE naive (LIKE pgprompt.prompt_executions INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (executed_at);
DO $$
DECLARE
    t text;
    m timestamp;
    p text;
BEGIN
    FOREACH t IN ARRAY ARRAY['plain', 'naive'] LOOP
        FOR m IN SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + k * interval '1 month' FROM generate_series(0, 1) k LOOP
            p := t || to_char(m, '_YYYY_MM');
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           p, t, m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
            EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (id)', p);
            EXECUTE format('CREATE INDEX ON %I (template_id, executed_at)', p);
            EXECUTE format('CREATE INDEX ON %I (executed_at) WHERE NOT success', p);
            EXECUTE format('CREATE INDEX ON %I (trace_id) WHERE trace_id IS NOT NULL', p);
            EXECUTE format('CREATE INDEX ON %I (session_id) WHERE session_id IS NOT NULL', p);
            EXECUTE format('CREATE INDEX ON %I USING brin (executed_at) WITH (pages_per_range = 16)', p);
        END LOOP;
    END LOOP;
END
$$;

CREATE TABLE naive_stats (template_id bigint PRIMARY KEY, executions bigint, successes bigint, latency_ms bigint,
                          input_tokens bigint, output_tokens bigint, cost_usd numeric);
INSERT INTO naive_stats VALUES (1, 0, 0, 0, 0, 0, 0);
CREATE FUNCTION naive_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE naive_stats SET executions = executions + 1, successes = successes + NEW.success::int,
           latency_ms = latency_ms + NEW.latency_ms, input_tokens = input_tokens + NEW.input_tokens,
           output_tokens = output_tokens + NEW.output_tokens, cost_usd = cost_usd + NEW.cost_usd
     WHERE template_id = NEW.template_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER trigger_update_template_statistics AFTER INSERT ON naive FOR EACH ROW EXECUTE FUNCTION naive_update();

-- This month's partition of prompt_executions (and the next).
SELECT pgprompt.prompt_log_execution('bench_tutor') IS NOT NULL AS logged;
