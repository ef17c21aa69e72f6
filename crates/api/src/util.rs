//! Small shared helpers: epoch-seconds timestamps, list pagination, query flags.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Query parameters of a request (`?maxResults=5&nextToken=...`).
pub(crate) type QueryMap = HashMap<String, String>;

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// AWS rest-json timestamp: epoch seconds as a JSON number with a millisecond fraction.
pub(crate) fn epoch_seconds(ms: u64) -> Value {
    let secs = ms as f64 / 1000.0;
    serde_json::Number::from_f64(secs).map_or(Value::Null, Value::Number)
}

/// Whether every query parameter named in `fields` that is present equals `doc`'s member.
pub(crate) fn matches_query(doc: &Value, query: &QueryMap, fields: &[&str]) -> bool {
    fields.iter().all(|f| {
        query
            .get(*f)
            .is_none_or(|v| doc[*f] == Value::String(v.clone()))
    })
}

/// A boolean query flag (`?force=true`).
pub(crate) fn flag(query: &QueryMap, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Pages `items` by `maxResults` (default and cap `max`) and an offset `nextToken`; returns the page
/// and the token of the next page, present only when more items exist.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    query: &QueryMap,
    max: usize,
) -> ApiResult<(Vec<T>, Option<String>)> {
    paginate_by(items, query, max, ("maxResults", "nextToken"))
}

/// [`paginate`] for the older iot lists paged by `pageSize` and `marker` (the next page's marker
/// goes into `nextMarker`).
pub(crate) fn paginate_marker<T>(
    items: Vec<T>,
    query: &QueryMap,
    max: usize,
) -> ApiResult<(Vec<T>, Option<String>)> {
    paginate_by(items, query, max, ("pageSize", "marker"))
}

fn paginate_by<T>(
    items: Vec<T>,
    query: &QueryMap,
    max: usize,
    (size_key, token_key): (&str, &str),
) -> ApiResult<(Vec<T>, Option<String>)> {
    let page = match query.get(size_key) {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid(format!("{size_key} must be between 1 and {max}")))?,
        None => max,
    };
    let start = match query.get(token_key) {
        Some(token) => token
            .strip_prefix("offset-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| ApiError::invalid(format!("The {token_key} is invalid")))?,
        None => 0,
    };
    let end = start.saturating_add(page).min(items.len());
    let next = (end < items.len()).then(|| format!("offset-{end}"));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

/// Adds `"nextToken"` to a list response when there is one.
pub(crate) fn with_token(mut body: Value, next: Option<String>) -> Value {
    if let (Some(token), Value::Object(map)) = (next, &mut body) {
        map.insert("nextToken".into(), Value::String(token));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn paginate_walks_every_item_once() {
        let items: Vec<u32> = (0..5).collect();
        let (first, next) = paginate(items.clone(), &q(&[("maxResults", "2")]), 250).expect("page");
        assert_eq!(first, [0, 1]);
        let token = next.expect("more");
        let (second, next) = paginate(
            items.clone(),
            &q(&[("maxResults", "2"), ("nextToken", &token)]),
            250,
        )
        .expect("page");
        assert_eq!(second, [2, 3]);
        let token = next.expect("more");
        let (third, next) = paginate(
            items,
            &q(&[("maxResults", "2"), ("nextToken", &token)]),
            250,
        )
        .expect("page");
        assert_eq!((third, next), (vec![4], None));
    }

    #[test]
    fn paginate_refuses_bad_sizes_and_tokens() {
        assert!(paginate(vec![1], &q(&[("maxResults", "0")]), 250).is_err());
        assert!(paginate(vec![1], &q(&[("maxResults", "251")]), 250).is_err());
        assert!(paginate(vec![1], &q(&[("nextToken", "bogus")]), 250).is_err());
    }

    #[test]
    fn timestamps_are_epoch_seconds_with_millis() {
        assert_eq!(
            epoch_seconds(1_575_414_146_286),
            serde_json::json!(1_575_414_146.286)
        );
    }
}
