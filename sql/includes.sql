-- Composition: a template includes another stored template with
-- {% include "persona@production" %} (a label, production, latest) or
-- {% include "persona@3" %} (a version). Rendering resolves the include
-- like any render (so moving persona's label changes what its includers
-- render from the next statement on) and follows at most 5 levels.
--
-- prompt_save records what each version includes, refuses includes of
-- templates, labels or versions that do not exist (42704) or of chat
-- templates (42809), and refuses a version that would close a cycle
-- (42P17) or nest includes deeper than 5 (54001), over the includes of
-- every version of every template: a label could point at any of them.
-- Releasing a template re-runs the test cases of the released versions
-- that include it (by the label that moves), so a child's release cannot
-- silently break a parent.

CREATE TABLE prompt_includes (
    template_id bigint NOT NULL,
    version     integer NOT NULL,
    target      text NOT NULL,
    child       text NOT NULL,
    selector    text NOT NULL,
    PRIMARY KEY (template_id, version, target),
    FOREIGN KEY (template_id, version) REFERENCES prompt_versions (template_id, version) ON DELETE CASCADE
);

CREATE INDEX prompt_includes_child ON prompt_includes (child, selector);

COMMENT ON TABLE prompt_includes IS
    'What each version includes ({% include "name@label" %}), recorded by prompt_save: the dependencies between templates.';
COMMENT ON COLUMN prompt_includes.template_id IS 'The including template.';
COMMENT ON COLUMN prompt_includes.version IS 'The including version.';
COMMENT ON COLUMN prompt_includes.target IS 'The include as written: name@label or name@version.';
COMMENT ON COLUMN prompt_includes.child IS 'The included template''s name.';
COMMENT ON COLUMN prompt_includes.selector IS 'The label (production, latest, any label) or version number it is pinned by.';
COMMENT ON INDEX prompt_includes_child IS 'Who includes a template (the release gate of its includers).';

SELECT pg_catalog.pg_extension_config_dump('prompt_includes', '');

-- Records and checks what a new version includes (prompt_save calls it).
CREATE FUNCTION _record_includes(p_template_id bigint, p_version integer, p_body text, p_kind text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    v_name text := (SELECT t.name FROM prompt_templates t WHERE t.id = p_template_id);
    v_child prompt_templates;
    v_version integer;
    v_kind text;
    v_path text[];
    v_deep text[];
BEGIN
    INSERT INTO prompt_includes (template_id, version, target, child, selector)
    SELECT p_template_id, p_version, i.target, i.template, i.selector FROM _template_includes(p_body, p_kind) i
    ON CONFLICT DO NOTHING;
    FOR r IN SELECT * FROM prompt_includes i WHERE i.template_id = p_template_id AND i.version = p_version ORDER BY i.target LOOP
        SELECT * INTO v_child FROM prompt_templates t WHERE t.name = r.child;
        IF v_child.id IS NULL THEN
            RAISE EXCEPTION 'template "%" includes %, but template "%" does not exist', v_name, r.target, r.child
                USING ERRCODE = 'undefined_object';
        END IF;
        v_version := CASE
            WHEN r.selector ~ '^[0-9]+$' THEN r.selector::integer
            WHEN r.selector IN ('production', 'active') THEN v_child.active_version
            WHEN r.selector = 'latest' THEN (SELECT max(v.version) FROM prompt_versions v WHERE v.template_id = v_child.id)
            ELSE (SELECT l.version FROM prompt_labels l WHERE l.template_id = v_child.id AND l.label = r.selector)
        END;
        SELECT v.kind INTO v_kind FROM prompt_versions v WHERE v.template_id = v_child.id AND v.version = v_version;
        IF v_kind IS NULL THEN
            RAISE EXCEPTION 'template "%" includes %, but template "%" has no % %', v_name, r.target, r.child,
                            CASE WHEN r.selector ~ '^[0-9]+$' THEN 'version' ELSE 'label' END, r.selector
                USING ERRCODE = 'undefined_object';
        END IF;
        IF v_kind <> 'text' THEN
            RAISE EXCEPTION 'template "%" includes %, a chat template: only text templates can be included', v_name, r.target
                USING ERRCODE = 'wrong_object_type';
        END IF;
    END LOOP;

    -- Every chain of includes from this version (to 7 steps), over the
    -- includes of every version: one returning to this template is a
    -- cycle; none may be deeper than 5.
    WITH RECURSIVE chain (child, path) AS (
        SELECT i.child, ARRAY[v_name, i.child]
          FROM prompt_includes i WHERE i.template_id = p_template_id AND i.version = p_version
        UNION
        SELECT i.child, c.path || i.child
          FROM chain c
          JOIN prompt_templates t ON t.name = c.child
          JOIN prompt_includes i ON i.template_id = t.id
         WHERE c.child <> v_name AND cardinality(c.path) <= 7
    )
    SELECT (SELECT c.path FROM chain c WHERE c.child = v_name ORDER BY cardinality(c.path) LIMIT 1),
           (SELECT c.path FROM chain c WHERE cardinality(c.path) > 6 ORDER BY cardinality(c.path) LIMIT 1)
      INTO v_path, v_deep;
    IF v_path IS NOT NULL THEN
        RAISE EXCEPTION 'template "%" would include itself: %', v_name, array_to_string(v_path, ' -> ')
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = 'Includes are followed through every version of each template, since a label may point at any of them.';
    END IF;
    IF v_deep IS NOT NULL THEN
        RAISE EXCEPTION 'template "%" would nest includes deeper than 5 levels: %', v_name, array_to_string(v_deep, ' -> ')
            USING ERRCODE = 'statement_too_complex';
    END IF;
END
$$;

COMMENT ON FUNCTION _record_includes(bigint, integer, text, text) IS
    'Internal: records what a new version includes and checks it: 42704 an unknown template, label or version, 42809 a chat template, 42P17 a cycle, 54001 deeper than 5 levels.';

-- The release gate of the templates whose release includes p_template by
-- p_selector: their test cases must pass with the new release in place.
CREATE FUNCTION _gate_includers(p_template prompt_templates, p_selector text, p_force boolean, p_action text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pgprompt, pg_catalog, pg_temp
AS $$
DECLARE
    r prompt_templates;
BEGIN
    FOR r IN
        SELECT DISTINCT t.* FROM prompt_includes i
          JOIN prompt_templates t ON t.id = i.template_id AND t.active_version = i.version
         WHERE i.child = p_template.name
           AND (i.selector = p_selector OR (p_selector = 'production' AND i.selector = 'active'))
         ORDER BY t.name
    LOOP
        PERFORM _release_gate(r, r.active_version,
                              format('%s of %s (included by version %s of %s)', p_action, p_template.name, r.active_version, r.name),
                              p_force);
    END LOOP;
END
$$;

COMMENT ON FUNCTION _gate_includers(prompt_templates, text, boolean, text) IS
    'Internal: runs the release gate of every released version that includes the template by the label that moves (PG002 when one of their test cases fails, unless forced).';

COMMENT ON FUNCTION _template_includes(text, text) IS
    'Internal: the stored templates a body includes (target as written, template, label or version); validates the body like prompt_variables (42601 for an include that is not "name@label" or "name@version").';
