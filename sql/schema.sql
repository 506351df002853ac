-- pgprompt schema: templates, their immutable versions, labels, activation
-- history and the audit log.
--
-- Loaded first by CREATE EXTENSION pgprompt. Every object lives in the
-- schema pgprompt, which the extension creates and owns, so DROP EXTENSION
-- removes it with everything in it. Functions are in templates_api.sql,
-- triggers in triggers.sql.
--
-- Design in short:
--   * A version row never changes. Its id is what the per-session render cache
--     is keyed by, so a cached compile can never be stale.
--   * "Which version is active" is one column on the template row. Exactly one
--     active version per template is therefore structural, and concurrent
--     activations serialise on the template row lock: the last commit wins.
--     It is the release: the label production is a name for it, not a second
--     pointer that could drift from it.
--   * Triggers check that the active version is a version *of the same
--     template* (at once on activation, at commit for a new template). A
--     foreign key cannot: templates and versions would reference each other,
--     and pg_restore, which loads one table per transaction, could not load
--     either first.

CREATE SCHEMA pgprompt;
COMMENT ON SCHEMA pgprompt IS
    'pgprompt: versioned prompt templates rendered in SQL. Add it to search_path to call prompt_render(...) unqualified.';

-- Everything below, and the functions written in Rust, is created here.
-- SET LOCAL, not SET: CREATE EXTENSION saved the caller's search_path at
-- this nesting level and restores it afterwards, which a plain SET would
-- override (leaking pgprompt into the caller's session).
SET LOCAL search_path = pgprompt, pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Templates
------------------------------------------------------------------------------

CREATE TABLE prompt_templates (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CONSTRAINT prompt_templates_name_format CHECK (
                        length(name) BETWEEN 1 AND 200
                        AND name ~ '^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$'),
    description     text,
    category        text,
    active_version  integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT session_user,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text NOT NULL DEFAULT session_user,
    -- Last, as ALTER TABLE ADD COLUMN put them when 0.2.0 added them.
    requires_approval boolean NOT NULL DEFAULT false,
    protected_labels  text[] NOT NULL DEFAULT '{}'
);

COMMENT ON TABLE prompt_templates IS
    'One row per prompt template. The body lives in prompt_versions; active_version says which version renders by default.';
COMMENT ON COLUMN prompt_templates.id IS 'Surrogate key.';
COMMENT ON COLUMN prompt_templates.name IS
    'Unique name used by applications, e.g. nlu_topic_extraction. Letters, digits and _ . : / - ; up to 200 characters.';
COMMENT ON COLUMN prompt_templates.description IS 'What the template is for.';
COMMENT ON COLUMN prompt_templates.category IS 'Free-form grouping, e.g. nlu or content.';
COMMENT ON COLUMN prompt_templates.active_version IS
    'The release: the version prompt_render serves when no version or label is asked for, which the label production names. Moved by prompt_activate, prompt_label(name, version, ''production''), prompt_rollback and experiment promotion.';
COMMENT ON COLUMN prompt_templates.created_at IS 'When the template was created.';
COMMENT ON COLUMN prompt_templates.created_by IS 'Session user who created the template.';
COMMENT ON COLUMN prompt_templates.updated_at IS 'Last change to this row (maintained by trigger).';
COMMENT ON COLUMN prompt_templates.updated_by IS 'Session user of the last change (maintained by trigger).';
COMMENT ON COLUMN prompt_templates.requires_approval IS
    'Whether a version must be approved (prompt_approve, by a role other than its author) before it is released or given a protected label; releases then take pgprompt_releaser. Set with prompt_protect (pgprompt.require_approval = on makes every template require it).';
COMMENT ON COLUMN prompt_templates.protected_labels IS
    'Labels only members of pgprompt_releaser (or a superuser) may move; production here makes every release take the role. Set with prompt_protect.';

------------------------------------------------------------------------------
-- Versions (immutable)
------------------------------------------------------------------------------

CREATE TABLE prompt_versions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template_id     bigint NOT NULL REFERENCES prompt_templates (id) ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version >= 1),
    kind            text NOT NULL DEFAULT 'text' CHECK (kind IN ('text', 'chat')),
    body            text NOT NULL,
    model_config    jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(model_config) = 'object'),
    variables       text[] NOT NULL DEFAULT '{}',
    message         text,
    parent_version  integer CHECK (parent_version < version),
    checksum        text NOT NULL GENERATED ALWAYS AS (md5(kind || ':' || body)) STORED,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT session_user,
    -- Last, as ALTER TABLE ADD COLUMN put it when 0.2.0 added it.
    options         jsonb NOT NULL
                    DEFAULT '{"trim_blocks": false, "lstrip_blocks": false, "keep_trailing_newline": false, "undefined": "strict"}'
                    CHECK (jsonb_typeof(options) = 'object'),
    input_schema    jsonb CONSTRAINT prompt_versions_input_schema_check
                    CHECK (jsonb_typeof(input_schema) IN ('object', 'boolean')),
    authored_by     text,
    authored_at     timestamptz,
    UNIQUE (template_id, version),
    FOREIGN KEY (template_id, parent_version)
        REFERENCES prompt_versions (template_id, version)
);

COMMENT ON TABLE prompt_versions IS
    'Immutable versions of each template, numbered 1..n per template. UPDATE and DELETE are refused; versions go only with their template.';
COMMENT ON COLUMN prompt_versions.id IS
    'Immutable version id; the per-session render cache is keyed by it.';
COMMENT ON COLUMN prompt_versions.template_id IS 'The template this version belongs to.';
COMMENT ON COLUMN prompt_versions.version IS 'Version number, 1 for the first version of a template.';
COMMENT ON COLUMN prompt_versions.kind IS
    'text: one Jinja body. chat: a JSON array of {role, content} messages whose contents are Jinja bodies.';
COMMENT ON COLUMN prompt_versions.body IS 'The template source (Jinja2 syntax, rendered by minijinja).';
COMMENT ON COLUMN prompt_versions.model_config IS
    'What to call the model with (a JSON object, checked when saved): model, temperature, max_tokens, top_p, stop, tools, tool_choice, response_format, and any other key as given. model_name is stored as model.';
COMMENT ON COLUMN prompt_versions.variables IS 'Top-level variables the body reads, sorted.';
COMMENT ON COLUMN prompt_versions.message IS 'Commit message describing the change.';
COMMENT ON COLUMN prompt_versions.parent_version IS
    'The version this one was derived from (lineage); NULL for the first.';
COMMENT ON COLUMN prompt_versions.checksum IS 'md5 of kind and body, to spot identical versions.';
COMMENT ON COLUMN prompt_versions.created_at IS 'When the version was saved.';
COMMENT ON COLUMN prompt_versions.created_by IS 'Session user who saved the version.';
COMMENT ON COLUMN prompt_versions.input_schema IS
    'A JSON Schema the vars must match to render this version (22023 naming the failing path); NULL: any vars.';
COMMENT ON COLUMN prompt_versions.authored_by IS
    'For a version imported from another database (prompt_import_version): who wrote it there. created_by is then who imported it; neither may approve it.';
COMMENT ON COLUMN prompt_versions.authored_at IS 'For an imported version: when it was saved where it was written.';
COMMENT ON COLUMN prompt_versions.options IS
    'How the version renders: trim_blocks, lstrip_blocks, keep_trailing_newline (Jinja2''s whitespace switches, off by default) and undefined (strict: printing, iterating or measuring a missing variable is an error; lenient: Jinja2''s default Undefined). Every key, as prompt_save stored them.';

------------------------------------------------------------------------------
-- Labels
------------------------------------------------------------------------------

CREATE TABLE prompt_labels (
    template_id     bigint NOT NULL REFERENCES prompt_templates (id) ON DELETE CASCADE,
    label           text NOT NULL
                    CONSTRAINT prompt_labels_label_format CHECK (
                        length(label) BETWEEN 1 AND 63
                        AND label ~ '^[a-z0-9][a-z0-9_.-]*$'
                        AND label NOT IN ('latest', 'active', 'production')),
    version         integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT session_user,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text NOT NULL DEFAULT session_user,
    PRIMARY KEY (template_id, label),
    FOREIGN KEY (template_id, version)
        REFERENCES prompt_versions (template_id, version) ON DELETE CASCADE
);

CREATE INDEX prompt_labels_version_idx ON prompt_labels (template_id, version);

COMMENT ON TABLE prompt_labels IS
    'Named pointers to one version of a template (staging, or any name), moved with prompt_label. production is not stored here: it is the template''s active_version (v_labels shows both).';
COMMENT ON COLUMN prompt_labels.template_id IS 'The template the label belongs to.';
COMMENT ON COLUMN prompt_labels.label IS
    'Lower-case name: letters, digits and _ . - ; latest, active and production are reserved (they are resolved, not stored).';
COMMENT ON COLUMN prompt_labels.version IS 'The version the label points at.';
COMMENT ON COLUMN prompt_labels.created_at IS 'When the label was first set.';
COMMENT ON COLUMN prompt_labels.created_by IS 'Session user who first set the label.';
COMMENT ON COLUMN prompt_labels.updated_at IS 'When the label last moved (maintained by trigger).';
COMMENT ON COLUMN prompt_labels.updated_by IS 'Session user who last moved the label (maintained by trigger).';

------------------------------------------------------------------------------
-- Activation history
------------------------------------------------------------------------------

CREATE TABLE prompt_activations (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template_id         bigint NOT NULL REFERENCES prompt_templates (id) ON DELETE CASCADE,
    version             integer NOT NULL,
    previous_version    integer,
    action              text NOT NULL CHECK (action IN ('create', 'activate', 'rollback')),
    undo_to             bigint,
    activated_at        timestamptz NOT NULL DEFAULT now(),
    activated_by        text NOT NULL DEFAULT session_user,
    FOREIGN KEY (template_id, version)
        REFERENCES prompt_versions (template_id, version) ON DELETE CASCADE
);

CREATE INDEX prompt_activations_template_idx ON prompt_activations (template_id, id DESC);

COMMENT ON TABLE prompt_activations IS
    'Every change of a template''s active version, newest last. prompt_rollback walks it like an undo stack.';
COMMENT ON COLUMN prompt_activations.id IS 'Order of activations.';
COMMENT ON COLUMN prompt_activations.template_id IS 'The template whose active version changed.';
COMMENT ON COLUMN prompt_activations.version IS 'The version that became active.';
COMMENT ON COLUMN prompt_activations.previous_version IS 'The version that was active before (NULL at creation).';
COMMENT ON COLUMN prompt_activations.action IS
    'create (first version of a new template), activate (prompt_activate or a direct UPDATE), rollback (prompt_rollback).';
COMMENT ON COLUMN prompt_activations.undo_to IS
    'The activation a rollback from this state returns to (NULL: nothing to roll back to).';
COMMENT ON COLUMN prompt_activations.activated_at IS 'When the change was made.';
COMMENT ON COLUMN prompt_activations.activated_by IS 'Session user who made the change.';

------------------------------------------------------------------------------
-- Audit log (append-only)
------------------------------------------------------------------------------

CREATE TABLE prompt_audit_logs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL DEFAULT session_user,
    application     text DEFAULT nullif(current_setting('application_name', true), ''),
    action          text NOT NULL,
    object_type     text NOT NULL,
    object_name     text,
    template_id     bigint,
    version         integer,
    before          jsonb,
    after           jsonb,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id()
);

CREATE INDEX prompt_audit_logs_template_idx ON prompt_audit_logs (template_id, id);
CREATE INDEX prompt_audit_logs_occurred_idx ON prompt_audit_logs (occurred_at);

COMMENT ON TABLE prompt_audit_logs IS
    'Every change to templates, versions, labels and activations, written by triggers. Append-only: only superusers may UPDATE, DELETE or TRUNCATE.';
COMMENT ON COLUMN prompt_audit_logs.id IS 'Order of events.';
COMMENT ON COLUMN prompt_audit_logs.occurred_at IS 'Transaction time of the change.';
COMMENT ON COLUMN prompt_audit_logs.actor IS 'Session user who made the change.';
COMMENT ON COLUMN prompt_audit_logs.application IS 'application_name of the session (the CLI sets pgprompt).';
COMMENT ON COLUMN prompt_audit_logs.action IS
    'create, update, delete, new_version, activate, rollback, label_set, label_move, label_remove.';
COMMENT ON COLUMN prompt_audit_logs.object_type IS 'template, version, label or activation.';
COMMENT ON COLUMN prompt_audit_logs.object_name IS 'Template name (and label, as name@label, for label events).';
COMMENT ON COLUMN prompt_audit_logs.template_id IS 'Template id at the time (kept after the template is deleted).';
COMMENT ON COLUMN prompt_audit_logs.version IS 'Version concerned, if any.';
COMMENT ON COLUMN prompt_audit_logs.before IS 'State before the change (NULL for creations).';
COMMENT ON COLUMN prompt_audit_logs.after IS 'State after the change (NULL for deletions).';
COMMENT ON COLUMN prompt_audit_logs.transaction_id IS 'Transaction that made the change; groups events of one call.';

------------------------------------------------------------------------------
-- pg_dump keeps the rows of these tables (and the sequences behind their ids).
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('prompt_templates', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_versions', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_labels', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_activations', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_audit_logs', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_templates_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_versions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_activations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('prompt_audit_logs_id_seq', '');
