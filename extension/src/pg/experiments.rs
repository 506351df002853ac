//! SQL functions of A/B experiments: bucketing, assignment, rendering for a
//! user, and the statistics the results view calls.
//!
//! Assignment is on the render path, so it reads no table per call: every
//! session keeps the experiments (reloaded after ab_test_experiments changes,
//! see `invalidation`) and resolves the template through the render cache.
//! Lifecycle and results are plain SQL in `sql/experiments.sql`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::JsonB;

use super::cache::Selector;
use super::invalidation::{self, Channel};
use super::raise::{self, required, OrRaise};
use super::templates;
use super::vars::{JsonArg, JsonbArg, TextArg};
use crate::bucket;
use crate::error::{Error, ErrorKind};
use crate::significance;

/// One experiment as assignment and logging need it.
pub struct Experiment {
    pub name: String,
    pub template_id: i64,
    pub running: bool,
    salt: String,
    /// Variant names and versions, in bucket order.
    pub variants: Vec<(String, i32)>,
    /// Their weights (percent of buckets), in the same order.
    weights: Vec<u32>,
}

impl Experiment {
    /// The version of the named variant.
    pub fn version_of(&self, variant: &str) -> Option<i32> {
        self.variants.iter().find(|v| v.0 == variant).map(|v| v.1)
    }

    /// The variant (and its version) owning the user's bucket.
    pub fn assign(&self, user_id: &str) -> &(String, i32) {
        let i = bucket::pick(&self.weights, bucket::bucket(&self.salt, user_id)).expect("weights sum to 100 (checked by the table)");
        &self.variants[i]
    }
}

#[derive(Default)]
pub struct Experiments {
    by_name: HashMap<String, Rc<Experiment>>,
    running: HashMap<i64, Rc<Experiment>>,
}

thread_local! {
    static EXPERIMENTS: invalidation::Slot<Experiments> = const { RefCell::new(None) };
}

/// This session's experiments, reloaded when ab_test_experiments changed.
pub fn experiments() -> Rc<Experiments> {
    invalidation::cached(&EXPERIMENTS, Channel::Experiments, load)
}

fn load() -> Experiments {
    Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT e.name, e.template_id, e.status = 'running', e.hash_salt, x.names, x.versions, x.weights, \
                        'pgprompt.ab_test_experiments'::regclass::oid::int8 \
                 FROM pgprompt.ab_test_experiments e \
                 CROSS JOIN LATERAL (SELECT array_agg(v ->> 'name' ORDER BY o), array_agg((v ->> 'version')::int ORDER BY o), \
                                            array_agg((v ->> 'weight')::int ORDER BY o) \
                                       FROM jsonb_array_elements(e.variants) WITH ORDINALITY a(v, o)) x(names, versions, weights)",
                None,
                &[],
            )
            .expect("reading ab_test_experiments");
        let mut all = Experiments::default();
        for row in rows {
            let text = |i: usize| row.get::<String>(i).ok().flatten().unwrap_or_default();
            let names: Vec<String> = row.get::<Vec<String>>(5).ok().flatten().unwrap_or_default();
            let versions: Vec<i32> = row.get::<Vec<i32>>(6).ok().flatten().unwrap_or_default();
            let weights: Vec<i32> = row.get::<Vec<i32>>(7).ok().flatten().unwrap_or_default();
            invalidation::watch(Channel::Experiments, row.get::<i64>(8).ok().flatten().unwrap_or_default() as u32);
            let e = Rc::new(Experiment {
                name: text(1),
                template_id: row.get::<i64>(2).ok().flatten().unwrap_or_default(),
                running: row.get::<bool>(3).ok().flatten().unwrap_or(false),
                salt: text(4),
                variants: names.into_iter().zip(versions).collect(),
                weights: weights.into_iter().map(|w| w.max(0) as u32).collect(),
            });
            if e.running {
                all.running.insert(e.template_id, e.clone());
            }
            all.by_name.insert(e.name.clone(), e);
        }
        all
    })
}

impl Experiments {
    /// The experiment of that name, or 42704.
    pub fn named(&self, name: &str) -> Rc<Experiment> {
        self.by_name.get(name).cloned().unwrap_or_else(|| {
            raise::raise(
                Error::new(ErrorKind::UnknownObject, format!("experiment \"{name}\" does not exist"))
                    .with_hint("List experiments with: SELECT name, status FROM pgprompt.ab_test_experiments;"),
            )
        })
    }
}

/// What a user gets: version, and experiment and variant when one runs.
struct Assignment {
    version: i32,
    experiment: Option<(Rc<Experiment>, String)>,
}

fn assign(template: Option<&str>, user_id: Option<&str>) -> Assignment {
    let name = required(template, "template");
    let user = required(user_id, "user_id");
    if user.is_empty() {
        raise::raise(Error::invalid("user_id must not be empty: every empty id would get the same variant"));
    }
    let active = templates::resolve(name, &Selector::Active).or_raise();
    let all = experiments();
    match all.running.get(&active.template_id) {
        Some(e) => {
            let (variant, version) = e.assign(user);
            Assignment { version: *version, experiment: Some((e.clone(), variant.clone())) }
        }
        None => Assignment { version: active.version, experiment: None },
    }
}

#[pg_extern(immutable, parallel_safe)]
fn prompt_bucket(user_id: Option<&str>, salt: default!(Option<&str>, "''")) -> i32 {
    bucket::bucket(required(salt, "salt"), required(user_id, "user_id")) as i32
}

#[pg_extern(stable, parallel_safe)]
fn prompt_assign(template: Option<&str>, user_id: Option<&str>) -> i32 {
    assign(template, user_id).version
}

/// What `prompt_render_for` returns: the render, the assignment and the
/// version's model configuration (pgrx reads the columns from each
/// signature, so they are spelt out there).
type RenderFor = TableIterator<
    'static,
    (
        name!(prompt, Option<String>),
        name!(messages, Option<JsonB>),
        name!(version, i32),
        name!(experiment, Option<String>),
        name!(variant, Option<String>),
        name!(config, templates::StoredJsonb),
    ),
>;

#[pg_extern(stable, parallel_safe, name = "prompt_render_for")]
fn prompt_render_for_config(
    template: Option<&str>,
    user_id: Option<&str>,
    vars: default!(Option<JsonbArg>, "'{}'"),
) -> TableIterator<
    'static,
    (
        name!(prompt, Option<String>),
        name!(messages, Option<JsonB>),
        name!(version, i32),
        name!(experiment, Option<String>),
        name!(variant, Option<String>),
        name!(config, templates::StoredJsonb),
    ),
> {
    let vars = templates::vars_doc(&vars);
    render_for(template, user_id, &vars)
}

/// `prompt_render_for` with vars as JSON text, keys in the order written.
#[pg_extern(stable, parallel_safe, name = "prompt_render_for")]
fn prompt_render_for_ordered(
    template: Option<&str>,
    user_id: Option<&str>,
    vars: Option<TextArg>,
) -> TableIterator<
    'static,
    (
        name!(prompt, Option<String>),
        name!(messages, Option<JsonB>),
        name!(version, i32),
        name!(experiment, Option<String>),
        name!(variant, Option<String>),
        name!(config, templates::StoredJsonb),
    ),
> {
    render_for(template, user_id, &templates::text_vars(vars.as_ref()))
}

/// `prompt_render_for` with `json` vars, keys in the order written.
#[pg_extern(stable, parallel_safe, name = "prompt_render_for")]
fn prompt_render_for_json(
    template: Option<&str>,
    user_id: Option<&str>,
    vars: Option<JsonArg>,
) -> TableIterator<
    'static,
    (
        name!(prompt, Option<String>),
        name!(messages, Option<JsonB>),
        name!(version, i32),
        name!(experiment, Option<String>),
        name!(variant, Option<String>),
        name!(config, templates::StoredJsonb),
    ),
> {
    render_for(template, user_id, &templates::text_vars(vars.as_ref()))
}

fn render_for(template: Option<&str>, user_id: Option<&str>, vars: &dyn crate::render::Vars) -> RenderFor {
    let a = assign(template, user_id);
    let (prompt, messages) = templates::render_any(template, a.version, vars);
    let config = templates::config_of(required(template, "template"), a.version);
    let (experiment, variant) = match a.experiment {
        Some((e, v)) => (Some(e.name.clone()), Some(v)),
        None => (None, None),
    };
    TableIterator::once((prompt, messages, a.version, experiment, variant, config))
}

/// 0.1.0's `prompt_render_for` (without the configuration), for databases
/// whose schema is not updated yet (the library is shared by every
/// version's SQL).
#[pg_extern(stable, parallel_safe, sql = false)]
fn prompt_render_for(
    template: Option<&str>,
    user_id: Option<&str>,
    vars: default!(Option<JsonbArg>, "'{}'"),
) -> TableIterator<
    'static,
    (
        name!(prompt, Option<String>),
        name!(messages, Option<JsonB>),
        name!(version, i32),
        name!(experiment, Option<String>),
        name!(variant, Option<String>),
    ),
> {
    let vars = templates::vars_doc(&vars);
    let a = assign(template, user_id);
    let (prompt, messages) = templates::render_any(template, a.version, &vars);
    let (experiment, variant) = match a.experiment {
        Some((e, v)) => (Some(e.name.clone()), Some(v)),
        None => (None, None),
    };
    TableIterator::once((prompt, messages, a.version, experiment, variant))
}

#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_wilson_interval(successes: i64, n: i64) -> Option<Vec<f64>> {
    if successes < 0 || n < 0 {
        raise::raise(Error::invalid("successes and n must not be negative"));
    }
    significance::wilson(successes as u64, n as u64, significance::Z95).map(|(lo, hi)| vec![lo, hi])
}

#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_two_proportion_p(successes_a: i64, n_a: i64, successes_b: i64, n_b: i64) -> Option<f64> {
    if [successes_a, n_a, successes_b, n_b].iter().any(|x| *x < 0) {
        raise::raise(Error::invalid("counts must not be negative"));
    }
    significance::two_proportion_p(successes_a as u64, n_a as u64, successes_b as u64, n_b as u64)
}

#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_sample_ratio_p(observed: Vec<Option<i64>>, weights: Vec<Option<f64>>) -> Option<f64> {
    let observed: Vec<u64> = observed.iter().map(|o| o.unwrap_or(0).max(0) as u64).collect();
    let weights: Vec<f64> = weights.iter().map(|w| w.unwrap_or(0.0)).collect();
    if observed.len() != weights.len() {
        raise::raise(Error::invalid(format!("{} counts but {} weights", observed.len(), weights.len())));
    }
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        raise::raise(Error::invalid("weights must be finite and not negative"));
    }
    significance::sample_ratio_p(&observed, &weights)
}
