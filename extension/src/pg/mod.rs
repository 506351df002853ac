//! The PostgreSQL layer: argument conversion, SPI, per-backend caches, GUCs
//! and error reporting. Logic lives in the pgrx-free modules beside this one.

pub mod audit;
pub mod cache;
pub mod config;
pub mod cost;
pub mod direct;
pub mod experiments;
pub mod gate;
pub mod guard;
pub mod gucs;
pub mod invalidation;
pub mod log;
pub mod probe;
pub mod raise;
pub mod scores;
pub mod spi;
pub mod stats;
pub mod templates;
pub mod vars;
pub mod worker;
