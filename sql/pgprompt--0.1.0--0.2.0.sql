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
