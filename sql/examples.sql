-- Example templates: the three prompts of the educational video platform the
-- project started from. `make run` loads this file; CREATE EXTENSION does not.
--
-- Loading it twice changes nothing: a version is saved only when the body or
-- config differs from the template's newest version.
--
--   psql -d yourdb -f sql/examples.sql

SET search_path = pgprompt, public;

WITH examples (name, kind, description, category, config, body) AS (VALUES
(
    'nlu_topic_extraction', 'text',
    'Extract educational topics from a student''s question.',
    'nlu',
    '{"provider": "vertex_ai", "model": "gemini-2.5-flash", "temperature": 0.2, "max_output_tokens": 1024}',
$body$You are the language-understanding step of an educational video platform for K-12 students.

Extract the educational topics in the student's question.

Student question: "{{ student_query }}"
Grade level: {{ grade_level }}
{% if subject_hint %}Subject hint from the teacher: {{ subject_hint }}
{% endif %}
Answer with JSON only, in this shape:
{"topics": [{"name": "...", "subject": "...", "confidence": 0.0}], "needs_clarification": false, "reason": "..."}

Rules:
- Name topics the way a grade {{ grade_level }} curriculum would.
- Set needs_clarification to true when the question is too vague to pick a topic.
- Give at most {{ max_topics | default(3) }} topics, the most relevant first.$body$
),
(
    'clarification_question_generation', 'chat',
    'Ask the student short questions when a request is too vague to pick a topic.',
    'content',
    '{"provider": "vertex_ai", "model": "gemini-2.5-flash", "temperature": 0.7, "max_output_tokens": 512}',
$body$[
  {"role": "system",
   "content": "You help K-12 students ask better questions. Write for a grade {{ grade_level }} reader: short sentences, a friendly tone, no jargon."},
  {"placeholder": "history", "optional": true},
  {"role": "user",
   "content": "A student asked: \"{{ student_query }}\"\n{% if candidate_topics %}It could be about: {{ candidate_topics | join(', ') }}.\n{% endif %}Write {{ num_questions | default(2) }} short questions that would tell us which topic they mean. Answer with a JSON array of strings."}
]$body$
),
(
    'educational_script_generation', 'text',
    'Write the script of a short educational video for one topic.',
    'content',
    '{"provider": "vertex_ai", "model": "gemini-2.5-flash", "temperature": 0.7, "max_output_tokens": 4096}',
$body$Write the script of a {{ duration_minutes | default(3) }}-minute educational video about {{ topic }} for grade {{ grade_level }} students.
{% if student_interests %}
The student likes {{ student_interests | join(", ") }}: take the examples from there.
{% endif %}
Learning objectives:
{% for objective in learning_objectives %}{{ loop.index }}. {{ objective }}
{% endfor %}
Structure:
1. Hook (10-15 seconds): a question or a surprising fact.
2. Explanation: one idea at a time, each with a concrete example.
3. Recap: the objectives again, in one sentence each.
4. A question for the student to think about.

Use words a grade {{ grade_level }} student knows, and mark each part with [VISUAL: ...] notes for the animator.$body$
)
)
SELECT e.name,
       prompt_save(e.name, e.body, e.config::jsonb, 'example template', e.kind, e.description, e.category) AS version
  FROM examples e
 WHERE NOT EXISTS (
        SELECT 1
          FROM prompt_templates t
          JOIN prompt_versions v ON v.template_id = t.id
         WHERE t.name = e.name
           AND v.version = (SELECT max(v2.version) FROM prompt_versions v2 WHERE v2.template_id = t.id)
           AND v.kind = e.kind AND v.body = e.body AND v.model_config = e.config::jsonb);
