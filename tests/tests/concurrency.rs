//! 16 clients for 60 seconds (PGPROMPT_STRESS_SECONDS to change) mixing
//! activations, rollbacks, renders, logged calls (some rolled back) and
//! experiment starts and stops. While they run and at the end: exactly one
//! active version per template, statistics equal to the calls counted, one
//! audit row per change made, and no deadlock or serialization failure ever
//! reaches a caller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pgprompt_tests::*;

const TEMPLATES: [&str; 4] = ["t0", "t1", "t2", "t3"];

#[derive(Default, Debug)]
struct Tally {
    activations: i64,
    rollbacks: i64,
    starts: i64,
    stops: i64,
    logged: i64,
    renders: i64,
    refused: i64,
}

/// Invariants that must hold at every instant, checked in one snapshot.
fn check(c: &mut Client) {
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM prompt_templates t
                      WHERE (SELECT count(*) FROM prompt_versions v WHERE v.template_id = t.id AND v.version = t.active_version) <> 1),
                    (SELECT count(*) FROM prompt_executions),
                    (SELECT coalesce(sum(executions), 0)::int8 FROM prompt_template_stats),
                    (SELECT count(*) FROM ab_test_experiments WHERE status = 'running' GROUP BY template_id ORDER BY 1 DESC LIMIT 1)",
            &[],
        )
        .unwrap();
    let (bad_active, calls, counted, running): (i64, i64, i64, Option<i64>) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(bad_active, 0, "a template without exactly one active version");
    assert_eq!(calls, counted, "statistics differ from the calls");
    assert!(running.unwrap_or(0) <= 1, "two running experiments on one template");
}

#[test]
fn sixteen_clients_mixing_everything_keep_every_invariant() {
    let seconds: u64 = std::env::var("PGPROMPT_STRESS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let db = TestDb::new();
    let mut c = db.connect();
    for t in TEMPLATES {
        c.batch_execute(&format!(
            r#"SELECT prompt_save('{t}', 'v1 {{{{ x }}}}', '{{"model": "gpt-4o"}}');
               SELECT prompt_save('{t}', 'v2 {{{{ x }}}}', '{{"model": "gpt-4o"}}');
               SELECT prompt_save('{t}', 'v3 {{{{ x }}}}', '{{"model": "gpt-4o"}}');
               SELECT prompt_experiment_create('{t}_a', '{t}', '[{{"version": 1, "weight": 50}}, {{"version": 2, "weight": 50}}]');
               SELECT prompt_experiment_create('{t}_b', '{t}', '[{{"version": 2, "weight": 50}}, {{"version": 3, "weight": 50}}]');"#
        ))
        .unwrap();
    }
    let audit_before: i64 = one(&mut c, "SELECT max(id) FROM prompt_audit_logs");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..16u64)
        .map(|w| {
            let (mut s, notices) = db.connect_with_notices();
            thread::spawn(move || {
                let mut r = Rng(0x2545F4914F6CDD1D ^ (w + 1).wrapping_mul(0x9E3779B97F4A7C15));
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let t = TEMPLATES[r.below(4) as usize];
                    let outcome = match r.below(10) {
                        0 => {
                            let v = 1 + r.below(3) as i32;
                            notices.take();
                            let res = s.execute("SELECT prompt_activate($1, $2)", &[&t, &v]);
                            if res.is_ok() && !notices.take().iter().any(|(_, m)| m.contains("already the release")) {
                                tally.activations += 1;
                            }
                            res.map(|_| ())
                        }
                        1 => s.execute("SELECT prompt_rollback($1)", &[&t]).map(|_| tally.rollbacks += 1),
                        2 => {
                            let e = format!("{t}_{}", if r.below(2) == 0 { "a" } else { "b" });
                            if r.below(2) == 0 {
                                s.execute("SELECT prompt_experiment_start($1)", &[&e]).map(|_| tally.starts += 1)
                            } else {
                                s.execute("SELECT prompt_experiment_stop($1)", &[&e]).map(|_| tally.stops += 1)
                            }
                        }
                        3..=5 => s
                            .query_one("SELECT prompt_render($1, '{\"x\": 1}')", &[&t])
                            .map(|_| tally.renders += 1),
                        _ => {
                            // Render for a user and log it, in a transaction that sometimes rolls back.
                            let user = format!("u{}", r.below(1000));
                            let commit = r.below(5) != 0;
                            let calls = 1 + r.below(3) as i64;
                            let mut tx = s.transaction().unwrap();
                            let res = (|| {
                                for _ in 0..calls {
                                    tx.execute(
                                        "SELECT prompt_log_execution($1, f.version, input_tokens => 100, output_tokens => 10,
                                                                     latency_ms => 50, success => random() < 0.9, user_id => $2,
                                                                     experiment => f.experiment, variant => f.variant)
                                           FROM prompt_render_for($1, $2, '{\"x\": 1}') f",
                                        &[&t, &user],
                                    )?;
                                }
                                Ok::<(), postgres::Error>(())
                            })();
                            match res {
                                Ok(()) if commit => tx.commit().map(|_| tally.logged += calls),
                                Ok(()) => tx.rollback(),
                                Err(e) => Err(e),
                            }
                        }
                    };
                    if let Err(e) = outcome {
                        match e.code().map(|c| c.code()) {
                            // State conflicts a caller is told about: nothing to roll back to,
                            // an experiment not in the state for the step.
                            Some("55000") => tally.refused += 1,
                            other => panic!("worker {w}: unexpected error {other:?}: {e}"),
                        }
                    }
                }
                tally
            })
        })
        .collect();

    // Sample the invariants while the workers run.
    let sampler = {
        let mut s = db.connect();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut samples = 0;
            while !stop.load(Ordering::SeqCst) {
                check(&mut s);
                samples += 1;
                thread::sleep(Duration::from_millis(500));
            }
            samples
        })
    };
    let tallies: Vec<Tally> = workers.into_iter().map(|h| h.join().expect("a worker failed")).collect();
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().expect("an invariant broke while the workers ran");
    assert!(samples >= 2 * seconds as usize / 2, "{samples} samples");

    let total = |f: fn(&Tally) -> i64| tallies.iter().map(f).sum::<i64>();
    check(&mut c);
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM prompt_executions"), total(|t| t.logged));
    let audited = |c: &mut Client, action: &str, kind: &str| -> i64 {
        c.query_one("SELECT count(*) FROM prompt_audit_logs WHERE id > $1 AND action = $2 AND object_type = $3", &[&audit_before, &action, &kind])
            .unwrap()
            .get(0)
    };
    assert_eq!(audited(&mut c, "activate", "activation"), total(|t| t.activations), "one audit row per activation");
    assert_eq!(audited(&mut c, "rollback", "activation"), total(|t| t.rollbacks), "one audit row per rollback");
    assert_eq!(audited(&mut c, "start", "experiment"), total(|t| t.starts), "one audit row per start");
    assert_eq!(audited(&mut c, "stop", "experiment"), total(|t| t.stops), "one audit row per stop");
    // Experiment statistics equal their logged calls, per variant.
    let mismatched: i64 = one(
        &mut c,
        "SELECT count(*) FROM (SELECT experiment, variant, count(*) AS n FROM prompt_executions WHERE experiment IS NOT NULL GROUP BY 1, 2) e
          FULL JOIN (SELECT experiment, variant, sum(executions) AS n FROM ab_test_stats GROUP BY 1, 2) s USING (experiment, variant)
          WHERE e.n IS DISTINCT FROM s.n",
    );
    assert_eq!(mismatched, 0);
    let renders = total(|t| t.renders);
    assert!(renders > 100 && total(|t| t.logged) > 100, "renders {renders}, logged {}", total(|t| t.logged));
    println!("{seconds}s, 16 clients: {:?} activations, {} rollbacks, {} starts, {} stops, {renders} renders, {} logged, {} refused (55000), {samples} samples",
             total(|t| t.activations), total(|t| t.rollbacks), total(|t| t.starts), total(|t| t.stops), total(|t| t.logged), total(|t| t.refused));
}
