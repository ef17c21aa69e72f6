//! Per-thing topic policy: which topics and filters a session may use, and where they are routed.
//!
//! A session authenticated as thing `T` may publish and subscribe under `$aws/things/T/...` (answered
//! in-process), may use any ordinary topic (routed through the embedded broker), and may use no other
//! `$`-prefixed topic. A session acting for no thing (an application client on the plain port whose
//! client id is not a thing name) may use ordinary topics only. MQTT-4.7.2-1 says filters starting with a wildcard never match `$` topics, so an
//! ordinary filter such as `#` cannot leak another thing's reserved messages.

use rumqttc::mqttbytes::{valid_filter, valid_topic};

/// Where a topic or filter is routed, as decided by [`classify_topic`] and [`classify_filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `$aws/things/<own thing>/...`: answered in-process by a reserved-topic handler.
    Reserved,
    /// A topic without the `$` prefix: routed through the embedded broker.
    Broker,
}

/// Why a topic or filter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not a syntactically valid MQTT topic name or filter.
    #[error("malformed topic or filter")]
    Malformed,
    /// A `$` topic this thing may not use (another thing's reserved topics, `$SYS`, ...).
    #[error("topic not allowed for this thing")]
    Forbidden,
}

/// The prefix of every reserved topic of `thing`: `$aws/things/<thing>/`.
pub fn reserved_prefix(thing: &str) -> String {
    format!("$aws/things/{thing}/")
}

/// Classifies a PUBLISH topic name sent by a session acting for `thing` (None: for no thing).
pub fn classify_topic(thing: Option<&str>, topic: &str) -> Result<Route, PolicyError> {
    if !valid_topic(topic) {
        return Err(PolicyError::Malformed);
    }
    classify(thing, topic)
}

/// Classifies a SUBSCRIBE/UNSUBSCRIBE filter sent by a session acting for `thing` (None: for no
/// thing).
pub fn classify_filter(thing: Option<&str>, filter: &str) -> Result<Route, PolicyError> {
    if !valid_filter(filter) {
        return Err(PolicyError::Malformed);
    }
    classify(thing, filter)
}

fn classify(thing: Option<&str>, name: &str) -> Result<Route, PolicyError> {
    if !name.starts_with('$') {
        return Ok(Route::Broker);
    }
    match thing.and_then(|thing| own_reserved_suffix(thing, name)) {
        Some(rest) if !rest.is_empty() => Ok(Route::Reserved),
        _ => Err(PolicyError::Forbidden),
    }
}

/// The part of `name` after `$aws/things/<thing>/`, if `name` is under that prefix.
pub fn own_reserved_suffix<'a>(thing: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix("$aws/things/")?
        .strip_prefix(thing)?
        .strip_prefix('/')
}

/// MQTT filter matching that, unlike `rumqttc::mqttbytes::matches`, also matches `$` topics.
///
/// Only used for reserved subscriptions, which [`classify_filter`] has already confined to the
/// session's own `$aws/things/<thing>/` prefix, so a leading wildcard can never reach a `$` topic.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match levels.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_reserved_topics_are_reserved() {
        assert_eq!(
            classify_topic(Some("dev1"), "$aws/things/dev1/streams/s1/get/cbor"),
            Ok(Route::Reserved)
        );
        assert_eq!(
            classify_filter(Some("dev1"), "$aws/things/dev1/jobs/#"),
            Ok(Route::Reserved)
        );
    }

    #[test]
    fn other_things_and_other_dollar_topics_are_forbidden() {
        for name in [
            "$aws/things/dev2/streams/s1/get/cbor",
            "$aws/things/dev1x/streams/s1/get/cbor",
            "$aws/things/dev1",
            "$aws/things/dev1/",
            "$aws/things/+/streams/s1/data/cbor",
            "$SYS/broker/load",
            "$aws/rules/r1",
        ] {
            assert_eq!(
                classify_filter(Some("dev1"), name),
                Err(PolicyError::Forbidden),
                "{name}"
            );
        }
        assert_eq!(
            classify_topic(Some("dev1"), "$aws/things/dev2/jobs/get"),
            Err(PolicyError::Forbidden)
        );
    }

    #[test]
    fn a_session_for_no_thing_may_use_ordinary_topics_only() {
        assert_eq!(classify_topic(None, "fleet/a b"), Ok(Route::Broker));
        assert_eq!(classify_filter(None, "#"), Ok(Route::Broker));
        for name in [
            "$aws/things/a b/jobs/get",
            "$aws/things//jobs/get",
            "$SYS/x",
        ] {
            assert_eq!(
                classify_topic(None, name),
                Err(PolicyError::Forbidden),
                "{name}"
            );
        }
    }

    #[test]
    fn ordinary_topics_go_to_the_broker_and_wildcards_are_checked() {
        assert_eq!(classify_topic(Some("dev1"), "fleet/a/b"), Ok(Route::Broker));
        assert_eq!(classify_filter(Some("dev1"), "#"), Ok(Route::Broker));
        assert_eq!(
            classify_topic(Some("dev1"), "fleet/+"),
            Err(PolicyError::Malformed)
        );
        assert_eq!(
            classify_filter(Some("dev1"), "fleet/#/x"),
            Err(PolicyError::Malformed)
        );
    }

    #[test]
    fn filter_matching_handles_wildcards_and_dollar_topics() {
        let topic = "$aws/things/t/jobs/notify-next";
        assert!(filter_matches("$aws/things/t/jobs/#", topic));
        assert!(filter_matches("$aws/things/t/+/notify-next", topic));
        assert!(filter_matches(topic, topic));
        assert!(!filter_matches("$aws/things/t/jobs", topic));
        assert!(!filter_matches("$aws/things/t/jobs/notify-next/x", topic));
        assert!(filter_matches("$aws/things/t/jobs/#", "$aws/things/t/jobs"));
    }
}
