//! The integration tests, one module per capability, linked into one test
//! binary: one link instead of one per file keeps a fresh build small and
//! quick. Each module's tests get databases of their own (`TestDb`), so
//! modules run side by side as the tests inside a module always did.
//! Run one module with `cargo test -p pgprompt-tests --test integration <module>::`.

mod analytics;
mod approvals;
mod audit;
mod cancel;
mod chat;
mod concurrency;
mod consistency;
mod costs;
mod drivers;
mod dump;
mod experiment_metrics;
mod experiments;
mod gates;
mod guard;
mod guard_accuracy;
mod hostile;
mod includes;
mod jinja_fidelity;
mod languages;
mod limits;
mod logging;
mod partitions;
mod pii_oracle;
mod readme;
mod render;
mod render_options;
mod replica;
mod roles;
mod schema;
mod scores;
mod search_path;
mod structured;
mod templates;
mod traces;
mod upgrade;
