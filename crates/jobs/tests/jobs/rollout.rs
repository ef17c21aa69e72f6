use otastream_jobs::{ExponentialRate, JobSpec, RateIncreaseCriteria, RolloutConfig};
use serde_json::json;

use crate::support::{Harness, MINUTE, T0, names, notify_next_count, released, reply, spec};

fn paced_spec(job_id: &str, things: &[String], rollout: RolloutConfig) -> JobSpec {
    let refs: Vec<&str> = things.iter().map(String::as_str).collect();
    JobSpec {
        job_executions_rollout_config: Some(rollout),
        ..spec(job_id, &refs)
    }
}

fn exponential(
    base: u32,
    factor: f64,
    notified: Option<u32>,
    succeeded: Option<u32>,
) -> RolloutConfig {
    RolloutConfig {
        maximum_per_minute: None,
        exponential_rate: Some(ExponentialRate {
            base_rate_per_minute: base,
            increment_factor: factor,
            rate_increase_criteria: RateIncreaseCriteria {
                number_of_notified_things: notified,
                number_of_succeeded_things: succeeded,
            },
        }),
    }
}

/// 1000 things at maximumPerMinute 100: every simulated minute of ten releases 100 ± 2 %
/// (exactly 1000 in total), each release notifies its device, and held-back executions are
/// invisible to their devices until released.
#[test]
fn constant_rate_within_two_percent() {
    let mut h = Harness::new();
    let things = names("t", 1000);
    let rollout = RolloutConfig {
        maximum_per_minute: Some(100),
        exponential_rate: None,
    };
    let mut all = h.create(paced_spec("j", &things, rollout));
    all.extend(h.advance_to(T0 + MINUTE - 1));
    let (_, body) = reply(&h.device("t0999", "$next/get", ""));
    assert_eq!(
        body,
        json!({"timestamp": (T0 + MINUTE - 1) / 1000}),
        "not released yet"
    );
    all.extend(h.advance_to(T0 + 10 * MINUTE - 1));
    let times: Vec<u64> = released(&all).into_iter().map(|(_, t)| t).collect();
    let notified = notify_next_count(&all);
    for minute in 0..10 {
        let start = T0 + minute * MINUTE;
        let n = times
            .iter()
            .filter(|t| (start..start + MINUTE).contains(*t))
            .count();
        assert!((98..=102).contains(&n), "minute {minute}: {n} releases");
    }
    assert_eq!(times.len(), 1000);
    assert_eq!(notified, 1000);
    assert_eq!(h.engine.poll_timeout(), None);
    let (_, body) = reply(&h.device("t0999", "$next/get", ""));
    assert_eq!(body["execution"]["jobId"], "j");
}

/// Gaps between consecutive release times.
fn gaps(times: &[u64]) -> Vec<u64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// exponentialRate by notified things: base 10/min, ×2 each time 10 more things were notified
/// (the count restarts with each stage): release gaps go 6 s (×9), then 3 s, 1.5 s, 0.75 s,
/// 0.375 s (×10 each), until the rate reaches the 1000/min ceiling.
#[test]
fn exponential_rate_by_notified_things() {
    let mut h = Harness::new();
    let things = names("t", 200);
    let mut all = h.create(paced_spec(
        "j",
        &things,
        exponential(10, 2.0, Some(10), None),
    ));
    all.extend(h.advance_to(T0 + 10 * MINUTE));
    let times: Vec<u64> = released(&all).into_iter().map(|(_, t)| t).collect();
    assert_eq!(times.len(), 200);
    let gaps = gaps(&times);
    let mut expected = vec![6000; 9];
    for gap in [3000, 1500, 750, 375] {
        expected.extend([gap; 10]);
    }
    assert_eq!(gaps[..expected.len()], expected[..]);
    assert!(
        gaps[gaps.len() - 50..].iter().all(|g| *g == 60),
        "1000/min ceiling"
    );
    assert_eq!(
        h.engine.job("j").map(|j| j.rollout_progress.stage),
        Some(20)
    );
}

/// exponentialRate by succeeded things: base 6/min (10 s apart); the second success doubles
/// the rate at that moment, so the next releases come 5 s later and every 5 s after.
#[test]
fn exponential_rate_by_succeeded_things() {
    let mut h = Harness::new();
    let things = names("t", 50);
    let mut all = h.create(paced_spec("j", &things, exponential(6, 2.0, None, Some(2))));
    all.extend(h.advance_to(T0 + 21_000));
    assert_eq!(released(&all).len(), 3);
    h.device("t0000", "j/update", r#"{"status":"SUCCEEDED"}"#);
    h.advance_to(T0 + 22_000);
    h.device("t0001", "j/update", r#"{"status":"SUCCEEDED"}"#);
    let later = h.advance_to(T0 + 40_000);
    let times: Vec<u64> = released(&later).into_iter().map(|(_, t)| t - T0).collect();
    assert_eq!(times, [27_000, 32_000, 37_000]);
}

/// maximumPerMinute caps an exponential rate.
#[test]
fn maximum_caps_exponential_rate() {
    let mut h = Harness::new();
    let things = names("t", 300);
    let mut rollout = exponential(10, 5.0, Some(5), None);
    rollout.maximum_per_minute = Some(60);
    let mut all = h.create(paced_spec("j", &things, rollout));
    all.extend(h.advance_to(T0 + 3 * MINUTE));
    let gaps = gaps(
        &released(&all)
            .into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>(),
    );
    assert!(gaps.iter().all(|g| *g >= 1000), "{gaps:?}");
    assert_eq!(gaps.last(), Some(&1000));
}

/// A restart keeps the pace, and after downtime the rollout resumes at its rate instead of
/// releasing the backlog in one burst.
#[test]
fn restart_resumes_pace_without_burst() {
    let mut h = Harness::new();
    let things = names("t", 100);
    let rollout = RolloutConfig {
        maximum_per_minute: Some(10),
        exponential_rate: None,
    };
    let mut all = h.create(paced_spec("j", &things, rollout));
    all.extend(h.advance_to(T0 + MINUTE - 1));
    assert_eq!(released(&all).len(), 10);
    h.restart();
    assert_eq!(h.engine.poll_timeout(), Some(T0 + MINUTE));
    h.now = T0 + 10 * MINUTE;
    h.restart();
    let burst = h.advance_to(T0 + 10 * MINUTE);
    assert_eq!(released(&burst).len(), 1);
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 10 * MINUTE + 6000));
}
