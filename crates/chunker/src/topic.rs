//! Streams topics: `$aws/things/{thing}/streams/{stream}/{get|data|describe|description|rejected}/{cbor|json}`.
//!
//! [`parse_stream_topic`] borrows the thing and stream names from the topic; [`StreamTopic`]
//! formats itself back (`Display`, [`StreamTopic::write_to`]). Names are validated with the AWS
//! patterns: thing `[a-zA-Z0-9:_-]{1,128}`, stream `[a-zA-Z0-9_-]{1,128}`.

use core::fmt;

/// The prefix every AWS reserved per-thing topic starts with.
pub const THINGS_PREFIX: &str = "$aws/things/";

/// The payload encoding named by the last topic level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `…/cbor`
    Cbor,
    /// `…/json`
    Json,
}

impl Format {
    /// The topic level text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cbor => "cbor",
            Self::Json => "json",
        }
    }
}

/// The operation level of a streams topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamOp {
    /// Device → service: GetStream request.
    Get,
    /// Service → device: one data message per block.
    Data,
    /// Device → service: DescribeStream request.
    Describe,
    /// Service → device: DescribeStream response.
    Description,
    /// Service → device: the error for either request.
    Rejected,
}

impl StreamOp {
    /// The topic level text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Data => "data",
            Self::Describe => "describe",
            Self::Description => "description",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "get" => Self::Get,
            "data" => Self::Data,
            "describe" => Self::Describe,
            "description" => Self::Description,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }

    /// Whether a device sends on this operation (`get`, `describe`).
    pub const fn is_request(self) -> bool {
        matches!(self, Self::Get | Self::Describe)
    }
}

/// Why a topic is not a streams topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic does not start with `$aws/things/`.
    NotThingTopic,
    /// The topic is a thing topic but not `…/streams/{stream}/{op}/{fmt}`.
    NotStreamsTopic,
    /// The thing name is empty, too long or has a character outside `[a-zA-Z0-9:_-]`.
    InvalidThingName,
    /// The stream id is empty, too long or has a character outside `[a-zA-Z0-9_-]`.
    InvalidStreamId,
    /// The operation level is not one of get, data, describe, description, rejected.
    UnknownOperation,
    /// The last level is neither `cbor` nor `json`.
    UnknownFormat,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotThingTopic => "topic does not start with $aws/things/",
            Self::NotStreamsTopic => {
                "not a $aws/things/<thing>/streams/<stream>/<op>/<format> topic"
            }
            Self::InvalidThingName => "invalid thing name",
            Self::InvalidStreamId => "invalid stream id",
            Self::UnknownOperation => "unknown streams operation",
            Self::UnknownFormat => "format must be cbor or json",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TopicError {}

/// A parsed streams topic; borrows the names from the topic string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamTopic<'a> {
    /// The thing name.
    pub thing: &'a str,
    /// The stream id.
    pub stream: &'a str,
    /// The operation.
    pub op: StreamOp,
    /// The payload encoding.
    pub format: Format,
}

impl<'a> StreamTopic<'a> {
    /// The topic of the answer `op` to this request (same thing, stream and format).
    pub const fn reply(&self, op: StreamOp) -> Self {
        Self {
            thing: self.thing,
            stream: self.stream,
            op,
            format: self.format,
        }
    }

    /// The topic's length in bytes once formatted.
    pub const fn len(&self) -> usize {
        THINGS_PREFIX.len()
            + self.thing.len()
            + "/streams/".len()
            + self.stream.len()
            + 1
            + self.op.as_str().len()
            + 1
            + self.format.as_str().len()
    }

    /// Never true: a formatted topic always has its fixed levels.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Appends the formatted topic to `out`.
    pub fn write_to(&self, out: &mut alloc::string::String) {
        out.reserve(self.len());
        for part in [
            THINGS_PREFIX,
            self.thing,
            "/streams/",
            self.stream,
            "/",
            self.op.as_str(),
            "/",
            self.format.as_str(),
        ] {
            out.push_str(part);
        }
    }
}

impl fmt::Display for StreamTopic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{THINGS_PREFIX}{}/streams/{}/{}/{}",
            self.thing,
            self.stream,
            self.op.as_str(),
            self.format.as_str()
        )
    }
}

/// Parses a streams topic. Anything else is an error, never a panic.
pub fn parse_stream_topic(topic: &str) -> Result<StreamTopic<'_>, TopicError> {
    let rest = topic
        .strip_prefix(THINGS_PREFIX)
        .ok_or(TopicError::NotThingTopic)?;
    let mut levels = rest.split('/');
    let thing = levels.next().unwrap_or_default();
    if !valid_thing_name(thing) {
        return Err(TopicError::InvalidThingName);
    }
    if levels.next() != Some("streams") {
        return Err(TopicError::NotStreamsTopic);
    }
    let (Some(stream), Some(op), Some(format), None) =
        (levels.next(), levels.next(), levels.next(), levels.next())
    else {
        return Err(TopicError::NotStreamsTopic);
    };
    if !valid_stream_id(stream) {
        return Err(TopicError::InvalidStreamId);
    }
    let op = StreamOp::parse(op).ok_or(TopicError::UnknownOperation)?;
    let format = match format {
        "cbor" => Format::Cbor,
        "json" => Format::Json,
        _ => return Err(TopicError::UnknownFormat),
    };
    Ok(StreamTopic {
        thing,
        stream,
        op,
        format,
    })
}

/// The thing of a `$aws/things/{thing}/…` topic (or filter), when the name is valid.
pub fn thing_of_reserved_topic(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix(THINGS_PREFIX)?;
    let thing = rest.split('/').next()?;
    valid_thing_name(thing).then_some(thing)
}

/// AWS thing name: 1–128 characters of `[a-zA-Z0-9:_-]`.
pub fn valid_thing_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// AWS stream id: 1–128 characters of `[a-zA-Z0-9_-]`.
pub fn valid_stream_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};

    #[test]
    fn parses_and_formats_every_op_and_format() {
        for op in ["get", "data", "describe", "description", "rejected"] {
            for fmt in ["cbor", "json"] {
                let t = alloc::format!("$aws/things/dev:1_a-b/streams/AFR_OTA-x/{op}/{fmt}");
                let parsed = parse_stream_topic(&t).unwrap();
                assert_eq!(parsed.thing, "dev:1_a-b");
                assert_eq!(parsed.stream, "AFR_OTA-x");
                assert_eq!(parsed.to_string(), t);
                assert_eq!(parsed.len(), t.len());
                let mut s = String::new();
                parsed.write_to(&mut s);
                assert_eq!(s, t);
            }
        }
    }

    #[test]
    fn reply_keeps_names_and_format() {
        let t = parse_stream_topic("$aws/things/d/streams/s/get/json").unwrap();
        assert_eq!(
            t.reply(StreamOp::Data).to_string(),
            "$aws/things/d/streams/s/data/json"
        );
    }

    #[test]
    fn rejects_malformed_topics() {
        use TopicError::*;
        let cases = [
            ("aws/things/d/streams/s/get/cbor", NotThingTopic),
            ("$aws/things//streams/s/get/cbor", InvalidThingName),
            ("$aws/things/d/jobs/s/get/cbor", NotStreamsTopic),
            ("$aws/things/d/streams/s/get", NotStreamsTopic),
            ("$aws/things/d/streams/s/get/cbor/x", NotStreamsTopic),
            ("$aws/things/d/streams/s:x/get/cbor", InvalidStreamId),
            ("$aws/things/d/streams/s/put/cbor", UnknownOperation),
            ("$aws/things/d/streams/s/get/xml", UnknownFormat),
            ("$aws/things/d+/streams/s/get/cbor", InvalidThingName),
        ];
        for (t, e) in cases {
            assert_eq!(parse_stream_topic(t), Err(e), "{t}");
        }
    }

    #[test]
    fn thing_of_topic() {
        assert_eq!(
            thing_of_reserved_topic("$aws/things/abc/jobs/notify-next"),
            Some("abc")
        );
        assert_eq!(thing_of_reserved_topic("$aws/things/+/jobs/#"), None);
        assert_eq!(thing_of_reserved_topic("$aws/rules/x"), None);
        let long = "a".repeat(129);
        assert!(!valid_thing_name(&long));
        assert!(valid_thing_name(&long[..128]));
    }
}
