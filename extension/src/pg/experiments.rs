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

/// Checks a comparison's inputs: counts not negative, alpha a level.
fn check_comparison(counts: &[i64], alpha: f64) {
    if counts.iter().any(|x| *x < 0) {
        raise::raise(Error::invalid("counts must not be negative"));
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        raise::raise(Error::invalid(format!("alpha must be between 0 and 1 (got {alpha})")));
    }
}

/// A comparison row: diff, its interval and p-value, degrees of freedom,
/// then the confidence sequence and the always-valid p-value.
type ComparisonRow = (Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

/// The row of a fixed-horizon comparison and its always-valid counterpart.
fn comparison_row(fixed: Option<significance::Comparison>, seq: Option<significance::Comparison>) -> ComparisonRow {
    let finite = |x: f64| x.is_finite().then_some(x);
    (
        fixed.or(seq).map(|c| c.diff),
        fixed.map(|c| c.low),
        fixed.map(|c| c.high),
        fixed.map(|c| c.p),
        fixed.and_then(|c| finite(c.df)),
        seq.map(|c| c.low),
        seq.map(|c| c.high),
        seq.map(|c| c.p),
    )
}

/// Mean b against mean a, from each group's size, mean and variance:
/// Welch's t-test with its interval, and the mSPRT's always-valid p-value
/// and confidence sequence (see `sequential`).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_compare_means(
    n_a: i64,
    mean_a: f64,
    var_a: f64,
    n_b: i64,
    mean_b: f64,
    var_b: f64,
    alpha: default!(f64, 0.05),
) -> TableIterator<
    'static,
    (
        name!(diff, Option<f64>),
        name!(ci_low, Option<f64>),
        name!(ci_high, Option<f64>),
        name!(p_value, Option<f64>),
        name!(df, Option<f64>),
        name!(seq_ci_low, Option<f64>),
        name!(seq_ci_high, Option<f64>),
        name!(seq_p_value, Option<f64>),
    ),
> {
    check_comparison(&[n_a, n_b], alpha);
    if [mean_a, var_a, mean_b, var_b].iter().any(|x| !x.is_finite()) || var_a < 0.0 || var_b < 0.0 {
        raise::raise(Error::invalid("means and variances must be finite, variances not negative"));
    }
    let a = significance::Sample { n: n_a as f64, mean: mean_a, var: var_a };
    let b = significance::Sample { n: n_b as f64, mean: mean_b, var: var_b };
    TableIterator::once(comparison_row(significance::welch(a, b, alpha), crate::sequential::msprt(a, b, alpha)))
}

/// Rate b against rate a: the difference with Newcombe's interval and the
/// pooled z-test, and the mSPRT's always-valid p-value and confidence
/// sequence.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_compare_rates(
    successes_a: i64,
    n_a: i64,
    successes_b: i64,
    n_b: i64,
    alpha: default!(f64, 0.05),
) -> TableIterator<
    'static,
    (
        name!(diff, Option<f64>),
        name!(ci_low, Option<f64>),
        name!(ci_high, Option<f64>),
        name!(p_value, Option<f64>),
        name!(df, Option<f64>),
        name!(seq_ci_low, Option<f64>),
        name!(seq_ci_high, Option<f64>),
        name!(seq_p_value, Option<f64>),
    ),
> {
    check_comparison(&[successes_a, n_a, successes_b, n_b], alpha);
    if successes_a > n_a || successes_b > n_b {
        raise::raise(Error::invalid("successes must not exceed n"));
    }
    let (sa, na, sb, nb) = (successes_a as u64, n_a as u64, successes_b as u64, n_b as u64);
    let fixed = significance::proportions(sa, na, sb, nb, alpha);
    let seq = crate::sequential::msprt(crate::sequential::rate(sa, na), crate::sequential::rate(sb, nb), alpha);
    TableIterator::once(comparison_row(fixed, seq))
}

/// The (1 - alpha) interval of a mean from its sample's size, mean and
/// variance (Student's t), as {low, high}; NULL under two observations.
#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_mean_interval(n: i64, mean: f64, var: f64, alpha: default!(f64, 0.05)) -> Option<Vec<f64>> {
    check_comparison(&[n], alpha);
    if n < 2 || !mean.is_finite() || !var.is_finite() {
        return None;
    }
    let half = significance::t_quantile(1.0 - alpha / 2.0, (n - 1) as f64) * (var.max(0.0) / n as f64).sqrt();
    Some(vec![mean - half, mean + half])
}

/// The (1 - alpha) Wilson interval of a rate, as {low, high}.
#[pg_extern(immutable, parallel_safe, strict)]
fn prompt_rate_interval(successes: i64, n: i64, alpha: default!(f64, 0.05)) -> Option<Vec<f64>> {
    check_comparison(&[successes, n], alpha);
    significance::wilson(successes as u64, n as u64, significance::normal_quantile(1.0 - alpha / 2.0)).map(|(lo, hi)| vec![lo, hi])
}
