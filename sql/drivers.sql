------------------------------------------------------------------------------
-- What database drivers send
--
-- Drivers that bind parameters with their types (psycopg 3, asyncpg, JDBC,
-- Npgsql) send a Python or Java integer as smallint, integer or bigint, a
-- UUID as uuid and a float as double precision. PostgreSQL converts none of
-- these implicitly to text, nor double precision to numeric, so calls that
-- read naturally in an application (a numeric user id, a rating computed as
-- a float) failed with "function does not exist". These overloads take such
-- values and call the functions they stand for, which do all the checking.
--
-- Literals and untyped parameters (node-postgres, psql variables) keep
-- resolving to the text forms: for an argument of unknown type PostgreSQL
-- prefers the candidate that takes text. Latencies need no overload:
-- prompt_log_execution takes latency_ms as double precision and rounds it.
-- Variables may be given as json, jsonb or text (prompt_render and friends);
-- metadata is jsonb (psycopg: Jsonb(dict)).
--
-- The wrappers are plain SQL functions, run as the caller (the functions
-- they call are SECURITY DEFINER where they write) and inlined by the
-- planner where PostgreSQL can. Those with a polymorphic user id have their
-- body as text (PostgreSQL parses it for each argument type).
------------------------------------------------------------------------------

-- A user id of any type but an array, as its text (42 -> '42', a uuid in
-- its canonical form): the user's bucket is the bucket of that text.
CREATE FUNCTION prompt_bucket(user_id anynonarray, salt text DEFAULT '') RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pgprompt.prompt_bucket(user_id::pg_catalog.text, salt) $$;

CREATE FUNCTION prompt_assign(template text, user_id anynonarray) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pgprompt.prompt_assign(template, user_id::pg_catalog.text) $$;

CREATE FUNCTION prompt_render_for(template text, user_id anynonarray, vars jsonb DEFAULT '{}')
RETURNS TABLE (prompt text, messages jsonb, version integer, experiment text, variant text, config jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT * FROM pgprompt.prompt_render_for(template, user_id::pg_catalog.text, vars) $$;

CREATE FUNCTION prompt_render_for(template text, user_id anynonarray, vars json)
RETURNS TABLE (prompt text, messages jsonb, version integer, experiment text, variant text, config jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT * FROM pgprompt.prompt_render_for(template, user_id::pg_catalog.text, vars) $$;

CREATE FUNCTION prompt_render_for(template text, user_id anynonarray, vars text)
RETURNS TABLE (prompt text, messages jsonb, version integer, experiment text, variant text, config jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT * FROM pgprompt.prompt_render_for(template, user_id::pg_catalog.text, vars) $$;

-- user_id comes first so that this overload is chosen only when user_id is
-- given with a type other than text (every other argument is named or
-- defaulted as in the main form, which callers reach with named arguments).
CREATE FUNCTION prompt_log_execution(
    user_id anynonarray,
    template text,
    version integer DEFAULT NULL,
    model text DEFAULT NULL,
    input_tokens bigint DEFAULT 0,
    output_tokens bigint DEFAULT 0,
    latency_ms double precision DEFAULT NULL,
    success boolean DEFAULT true,
    rendered_prompt text DEFAULT NULL,
    response text DEFAULT NULL,
    error_message text DEFAULT NULL,
    cached_input_tokens bigint DEFAULT 0,
    experiment text DEFAULT NULL,
    variant text DEFAULT NULL,
    metadata jsonb DEFAULT '{}',
    executed_at timestamptz DEFAULT now(),
    trace_id text DEFAULT NULL,
    parent_id bigint DEFAULT NULL,
    session_id text DEFAULT NULL
) RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ SELECT pgprompt.prompt_log_execution(
    template => template, version => version, model => model, input_tokens => input_tokens,
    output_tokens => output_tokens, latency_ms => latency_ms, success => success, user_id => user_id::pg_catalog.text,
    rendered_prompt => rendered_prompt, response => response, error_message => error_message,
    cached_input_tokens => cached_input_tokens, experiment => experiment, variant => variant,
    metadata => metadata, executed_at => executed_at, trace_id => trace_id, parent_id => parent_id,
    session_id => session_id) $$;

-- A score given as double precision, as numeric: exactly the number for
-- integers up to 2^53 and PostgreSQL's 15 significant digits for fractions
-- (0.1 stays 0.1). Integer literals reach this form too (double precision
-- is the preferred numeric type), with the same value.
CREATE FUNCTION prompt_score(execution bigint, name text, value double precision, comment text DEFAULT NULL,
                             source text DEFAULT 'api') RETURNS bigint
LANGUAGE sql VOLATILE
RETURN pgprompt.prompt_score(execution, name, value::pg_catalog.numeric, comment, source);

CREATE FUNCTION prompt_score_trace(trace_id text, name text, value double precision, comment text DEFAULT NULL,
                                   source text DEFAULT 'api') RETURNS bigint
LANGUAGE sql VOLATILE
RETURN pgprompt.prompt_score_trace(trace_id, name, value::pg_catalog.numeric, comment, source);

COMMENT ON FUNCTION prompt_bucket(anynonarray, text) IS
    'prompt_bucket with a user id of another type than text (an integer or uuid a driver sends typed): the bucket of its text form.';
COMMENT ON FUNCTION prompt_assign(text, anynonarray) IS
    'prompt_assign with a user id of another type than text (an integer or uuid a driver sends typed), read as its text form.';
COMMENT ON FUNCTION prompt_render_for(text, anynonarray, jsonb) IS
    'prompt_render_for with a user id of another type than text (an integer or uuid a driver sends typed), read as its text form.';
COMMENT ON FUNCTION prompt_render_for(text, anynonarray, json) IS
    'prompt_render_for with json vars and a user id of another type than text, read as its text form.';
COMMENT ON FUNCTION prompt_render_for(text, anynonarray, text) IS
    'prompt_render_for with vars as JSON text and a user id of another type than text, read as its text form.';
COMMENT ON FUNCTION prompt_log_execution(anynonarray, text, integer, text, bigint, bigint, double precision, boolean, text, text, text, bigint, text, text, jsonb, timestamptz, text, bigint, text) IS
    'prompt_log_execution with a user id of another type than text (an integer or uuid a driver sends typed), logged as its text form. Call it with named arguments, as the main form.';
COMMENT ON FUNCTION prompt_score(bigint, text, double precision, text, text) IS
    'prompt_score with a numeric score given as double precision (what drivers send for a float, and what integer literals resolve to): the value as numeric.';
COMMENT ON FUNCTION prompt_score_trace(text, text, double precision, text, text) IS
    'prompt_score_trace with a numeric score given as double precision: the value as numeric.';
