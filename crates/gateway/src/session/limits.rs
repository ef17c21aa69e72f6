//! [`Limits`]: what one session may hold, with AWS IoT Core's message-broker limits as defaults.

use std::time::Duration;

/// Per-session limits (AWS IoT Core's defaults; configurable in `GatewayConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Subscriptions one session may hold (AWS: 50); more are refused in the SUBACK.
    pub max_subscriptions: u32,
    /// Filters one SUBSCRIBE may carry (AWS: 8); the ones past it are refused in the SUBACK.
    pub max_filters_per_subscribe: u32,
    /// Longest ordinary topic name or filter in bytes (AWS: 256). A longer PUBLISH topic closes
    /// the connection, a longer filter is refused. Reserved topics are checked by their own
    /// parsers (their `$aws/things/<thing>/` prefix is not counted on AWS either).
    pub max_topic_bytes: u32,
    /// Shortest keep-alive honoured (AWS: 30 s); a shorter one is raised to it.
    pub min_keep_alive_secs: u16,
    /// Longest keep-alive honoured (AWS: 1200 s); a longer one, and 0 (none), become this.
    pub max_keep_alive_secs: u16,
    /// Bytes of replies waiting for a slow reader beyond which ordinary-topic messages are no
    /// longer queued for it: QoS 0 ones are dropped, a QoS 1 one disconnects the slow consumer
    /// (its persistent session, if any, resends it on resume).
    pub max_unwritten_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_subscriptions: 50,
            max_filters_per_subscribe: 8,
            max_topic_bytes: 256,
            min_keep_alive_secs: 30,
            max_keep_alive_secs: 1200,
            max_unwritten_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// The keep-alive the session uses for the one a client asked for: clamped to
    /// `min_keep_alive_secs..=max_keep_alive_secs`, and 0 (which MQTT means as "none") taken as the
    /// maximum, as AWS does, so that no session lives forever without a packet.
    pub fn keep_alive(&self, requested_secs: u16) -> Duration {
        let secs = match requested_secs {
            0 => self.max_keep_alive_secs,
            s => s.clamp(
                self.min_keep_alive_secs,
                self.max_keep_alive_secs.max(self.min_keep_alive_secs),
            ),
        };
        Duration::from_secs(secs.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_is_clamped_to_aws_range_and_zero_means_the_maximum() {
        let limits = Limits::default();
        for (asked, used) in [
            (0, 1200),
            (1, 30),
            (29, 30),
            (30, 30),
            (600, 600),
            (1200, 1200),
        ] {
            assert_eq!(
                limits.keep_alive(asked),
                Duration::from_secs(used),
                "{asked}"
            );
        }
        assert_eq!(limits.keep_alive(u16::MAX), Duration::from_secs(1200));
    }
}
