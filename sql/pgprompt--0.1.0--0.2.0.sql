-- pgprompt 0.1.0 -> 0.2.0 (ALTER EXTENSION pgprompt UPDATE TO '0.2.0').
--
-- Every schema change since 0.1.0 is here, in the order it was made, so
-- that an updated database ends up object for object like a fresh 0.2.0
-- install (the upgrade test in tests/tests/upgrade.rs compares the two
-- catalogs). Released scripts are never edited: 0.2.0's changes go here
-- until 0.2.0 is released, later ones into a 0.2.0--<next> script.

\echo Use "ALTER EXTENSION pgprompt UPDATE" to load this file. \quit

-- As in the install script: objects are created in pgprompt, and the
-- caller's search_path comes back when the update ends.
SET LOCAL search_path = pgprompt, pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Pinned search_path: pg_temp last
------------------------------------------------------------------------------

-- 0.1.0 set search_path = pgprompt, pg_catalog on its functions. A path
-- that does not name pg_temp searches it first, so a caller's temporary
-- table named like one of ours was used instead, and its triggers ran as
-- the owner of a SECURITY DEFINER function. Every function that sets a
-- path now names pg_temp last, where nothing is looked up before ours.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pgprompt'::regnamespace
           AND 'search_path=pgprompt, pg_catalog' = ANY (p.proconfig)
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pgprompt, pg_catalog, pg_temp', f);
    END LOOP;
END
$$;
