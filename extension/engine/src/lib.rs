//! pgprompt's template engine, shared by the extension and the client so
//! that a template renders byte for byte the same on the server and in an
//! application's offline fallback: `render` (templates compiled with
//! minijinja, Jinja2's semantics, bounded work) and `error` (the one error
//! type and its SQLSTATEs). Nothing here knows PostgreSQL.

pub mod error;
pub mod render;
