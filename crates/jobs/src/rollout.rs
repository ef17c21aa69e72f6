//! Rollout pacing and abort criteria: pure arithmetic over a job's config, its
//! [`RolloutProgress`] and its [`StatusCounts`].
//!
//! Pacing: within a stage running at `rate` executions per minute, release `k` (0-based) is due
//! at `anchor + ceil(k · 60000 / rate)`, so any window of ten minutes holds `10 · rate` releases
//! (±1). With `exponentialRate` the rate of stage `s` is `floor(base · factor^s)`, capped by
//! `maximumPerMinute` (or 1000); a stage ends when its notified or succeeded count reaches the
//! criteria, and the next stage's first release is one new-rate interval later.
//!
//! Abort: a criterion fires when at least `minNumberOfExecutedThings` executions have finished
//! (SUCCEEDED/FAILED/REJECTED/TIMED_OUT) and failures of its type are ≥ `thresholdPercentage` of
//! them. It is evaluated after every terminal transition, so it fires at the exact event that
//! crosses the threshold.

use crate::counts::StatusCounts;
use crate::execution::ExecutionStatus;
use crate::model::{AbortConfig, AbortCriteria, FailureType, RolloutConfig, RolloutProgress};

/// Highest release rate AWS allows (per minute).
pub const MAX_RATE_PER_MINUTE: u32 = 1000;

const MINUTE_MS: u64 = 60_000;

/// Releases per minute in the current stage; `None` = no pacing (release everything at once).
pub fn current_rate(config: Option<&RolloutConfig>, stage: u32) -> Option<u32> {
    let config = config?;
    let cap = config
        .maximum_per_minute
        .unwrap_or(MAX_RATE_PER_MINUTE)
        .clamp(1, MAX_RATE_PER_MINUTE);
    match &config.exponential_rate {
        Some(exp) => {
            let exponent = i32::try_from(stage).unwrap_or(i32::MAX);
            let rate = f64::from(exp.base_rate_per_minute) * exp.increment_factor.powi(exponent);
            // Float → int `as` saturates; the clamp bounds it to 1..=cap.
            Some((rate.floor() as u32).clamp(1, cap))
        }
        None => config.maximum_per_minute.map(|_| cap),
    }
}

/// When the next release is due (epoch ms).
pub fn next_release_at(config: Option<&RolloutConfig>, progress: &RolloutProgress) -> u64 {
    match current_rate(config, progress.stage) {
        None => progress.stage_anchor,
        Some(rate) => {
            let rate = u64::from(rate);
            let offset = progress
                .released_in_stage
                .saturating_mul(MINUTE_MS)
                .div_ceil(rate);
            progress.stage_anchor.saturating_add(offset)
        }
    }
}

/// Moves to the next exponential stage if the current one met its increase criteria.
/// Returns whether the stage changed.
pub fn maybe_advance_stage(
    config: Option<&RolloutConfig>,
    progress: &mut RolloutProgress,
    succeeded_total: u64,
    now: u64,
) -> bool {
    let Some(exp) = config.and_then(|c| c.exponential_rate.as_ref()) else {
        return false;
    };
    let criteria = &exp.rate_increase_criteria;
    let notified_met = criteria
        .number_of_notified_things
        .is_some_and(|n| progress.released_in_stage >= u64::from(n));
    let succeeded_met = criteria.number_of_succeeded_things.is_some_and(|n| {
        succeeded_total.saturating_sub(progress.succeeded_at_stage_start) >= u64::from(n)
    });
    if !(notified_met || succeeded_met) {
        return false;
    }
    progress.stage = progress.stage.saturating_add(1);
    let rate = u64::from(current_rate(config, progress.stage).unwrap_or(1));
    progress.stage_anchor = now.saturating_add(MINUTE_MS.div_ceil(rate));
    progress.released_in_stage = 0;
    progress.succeeded_at_stage_start = succeeded_total;
    true
}

/// Checks a rollout config against the AWS limits.
pub fn validate_rollout(config: &RolloutConfig) -> Result<(), String> {
    let in_range = |n: u32| (1..=MAX_RATE_PER_MINUTE).contains(&n);
    if let Some(max) = config.maximum_per_minute
        && !in_range(max)
    {
        return Err(format!(
            "maximumPerMinute {max} must be 1-{MAX_RATE_PER_MINUTE}"
        ));
    }
    if let Some(exp) = &config.exponential_rate {
        if !in_range(exp.base_rate_per_minute) {
            return Err(format!(
                "baseRatePerMinute {} must be 1-{MAX_RATE_PER_MINUTE}",
                exp.base_rate_per_minute
            ));
        }
        if !(1.1..=5.0).contains(&exp.increment_factor) {
            return Err(format!(
                "incrementFactor {} must be 1.1-5",
                exp.increment_factor
            ));
        }
        let c = &exp.rate_increase_criteria;
        let ok = |n: Option<u32>| n.is_none_or(|n| n >= 1);
        if c.number_of_notified_things.is_none() && c.number_of_succeeded_things.is_none()
            || !ok(c.number_of_notified_things)
            || !ok(c.number_of_succeeded_things)
        {
            return Err(
                "rateIncreaseCriteria needs numberOfNotifiedThings or numberOfSucceededThings >= 1"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Checks an abort config against the AWS limits.
pub fn validate_abort(config: &AbortConfig) -> Result<(), String> {
    if config.criteria_list.is_empty() {
        return Err("abortConfig.criteriaList needs at least one criterion".into());
    }
    for c in &config.criteria_list {
        if !(0.0..=100.0).contains(&c.threshold_percentage) {
            return Err(format!(
                "thresholdPercentage {} must be 0-100",
                c.threshold_percentage
            ));
        }
        if c.min_number_of_executed_things < 1 {
            return Err("minNumberOfExecutedThings must be at least 1".into());
        }
    }
    Ok(())
}

/// Failures counted by a criterion.
fn failures(counts: &StatusCounts, failure_type: FailureType) -> u64 {
    use ExecutionStatus::{Failed, Rejected, TimedOut};
    match failure_type {
        FailureType::Failed => counts.get(Failed),
        FailureType::Rejected => counts.get(Rejected),
        FailureType::TimedOut => counts.get(TimedOut),
        FailureType::All => counts.get(Failed) + counts.get(Rejected) + counts.get(TimedOut),
    }
}

/// The first criterion that is met by `counts`, if any.
pub fn abort_criterion_met<'a>(
    config: Option<&'a AbortConfig>,
    counts: &StatusCounts,
) -> Option<&'a AbortCriteria> {
    let executed = counts.executed();
    config?.criteria_list.iter().find(|c| {
        executed >= u64::from(c.min_number_of_executed_things)
            && executed > 0
            && failures(counts, c.failure_type) as f64 * 100.0
                >= c.threshold_percentage * executed as f64
    })
}
