//! The streams service: answers `$aws/things/<T>/streams/<S>/{get,describe}/{cbor,json}` in-process.
//!
//! [`handle_stream_request`] is sans-IO: it takes the request topic and payload and a
//! [`StreamSource`], and appends the reply frames (complete MQTT PUBLISH packets) to an
//! [`Outbound`]. Exactly one answer per request: the selected blocks as data messages, a
//! description, or one `rejected` message with the AWS error code. Every error becomes a wire
//! rejection here and nowhere else (the private `reject` function).
//!
//! CBOR data messages are written as two chunks each: MQTT fixed header + topic + CBOR data header
//! in one small buffer (one allocation per request for all blocks), then a [`Bytes`] slice of the
//! image; the image bytes are never copied. JSON carries Base64, so it is encoded into one buffer.

use bytes::{Bytes, BytesMut};
use otastream_chunker::request::{self, GetStreamRequest};
use otastream_chunker::response::{self, MAX_DATA_HEADER};
use otastream_chunker::topic::{self, Format, StreamOp, StreamTopic, TopicError};
use otastream_chunker::{FileLayout, Reject, RejectCode, select};

use crate::wire::{Outbound, put_publish_header};

/// One file of a stream as the service sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileLookup {
    /// No stream with this id.
    StreamNotFound,
    /// The stream exists (at `version`) but has no such file.
    FileNotFound {
        /// Current stream version.
        version: u64,
    },
    /// The stream has the file, but the object bytes it pinned changed (an overwrite in an
    /// unversioned bucket): answered `ETagMismatch`, never blocks of other bytes.
    Changed {
        /// Current stream version.
        version: u64,
    },
    /// The stream has the file, but the object version it pinned was deleted: `ResourceNotFound`.
    Gone {
        /// Current stream version.
        version: u64,
    },
    /// The file's bytes (cheap to clone: a reference-counted view of the image).
    Found {
        /// Current stream version.
        version: u64,
        /// The whole file.
        data: Bytes,
    },
}

/// What DescribeStream reports about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDescription {
    /// Current stream version.
    pub version: u64,
    /// Stream description ("" when none).
    pub description: String,
    /// `(file id, size in bytes)`, ascending by file id.
    pub files: Vec<(u8, u64)>,
}

/// Failure of the storage behind a [`StreamSource`]; answered with `InternalError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream storage failed: {0}")]
pub struct SourceError(pub String);

/// Where the service finds streams: the store in production, a map in tests.
pub trait StreamSource: Send + Sync {
    /// File `file_id` of stream `stream_id`, with the stream's current version.
    fn file(&self, stream_id: &str, file_id: u8) -> Result<FileLookup, SourceError>;
    /// Version, description and file sizes of stream `stream_id`.
    fn describe(&self, stream_id: &str) -> Result<Option<StreamDescription>, SourceError>;
}

/// What one request produced, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Data messages were sent (possibly none, for an all-zero bitmap).
    Served {
        /// Number of data messages.
        blocks: u32,
        /// Payload bytes in them.
        bytes: u64,
    },
    /// A description was sent.
    Described,
    /// One `rejected` message with this code was sent.
    Rejected(RejectCode),
    /// Nothing could be answered (no reply topic can be formed from the request topic).
    Unanswerable,
}

/// Answers one streams request published on `topic` (already checked to be the requester's own
/// reserved topic), appending complete PUBLISH frames to `out`. `scratch` is reused between calls.
pub fn handle_stream_request(
    topic: &str,
    payload: &[u8],
    source: &dyn StreamSource,
    scratch: &mut BytesMut,
    out: &mut Outbound,
) -> Outcome {
    let t = match topic::parse_stream_topic(topic) {
        Ok(t) if t.op.is_request() => t,
        Ok(t) => {
            return reject(
                &t,
                Reject::new(RejectCode::InvalidTopic, "not a request topic"),
                None,
                scratch,
                out,
            );
        }
        Err(e) => return reject_bad_topic(topic, e, scratch, out),
    };
    let result = match t.op {
        StreamOp::Get => request::decode_get(t.format, payload).map(|req| {
            let answer = serve_get(&t, &req, source, scratch, out);
            (answer, req.client_token)
        }),
        _ => request::decode_describe(t.format, payload).map(|req| {
            (
                describe(&t, req.client_token, source, scratch, out),
                req.client_token,
            )
        }),
    };
    match result {
        Ok((Ok(outcome), _)) => outcome,
        Ok((Err(rej), token)) => reject(&t, rej, token, scratch, out),
        Err(rej) => {
            let token = request::refused_client_token(t.format, payload);
            reject(&t, rej, token, scratch, out)
        }
    }
}

fn serve_get(
    t: &StreamTopic<'_>,
    req: &GetStreamRequest<'_>,
    source: &dyn StreamSource,
    scratch: &mut BytesMut,
    out: &mut Outbound,
) -> Result<Outcome, Reject> {
    let lookup = source.file(t.stream, req.file_id.get()).map_err(internal)?;
    let (version, data) = match lookup {
        FileLookup::StreamNotFound => {
            return Err(Reject::new(
                RejectCode::ResourceNotFound,
                "stream not found",
            ));
        }
        FileLookup::FileNotFound { version } => (version, Err("file not found in stream")),
        FileLookup::Gone { version } => (version, Err("the file's object version was deleted")),
        FileLookup::Changed { version } => (version, Ok(None)),
        FileLookup::Found { version, data } => (version, Ok(Some(data))),
    };
    if req.stream_version.is_some_and(|s| s != version) {
        return Err(Reject::new(
            RejectCode::VersionMismatch,
            "stream version does not match",
        ));
    }
    let data = data
        .map_err(|message| Reject::new(RejectCode::ResourceNotFound, message))?
        .ok_or(Reject::new(
            RejectCode::ETagMismatch,
            "the file's object changed since the stream pinned it",
        ))?;
    let layout = FileLayout::new(data.len() as u64, req.block_size);
    let blocks = select::select_blocks(req, &layout)?;

    let reply = topic_string(&t.reply(StreamOp::Data));
    let (mut count, mut bytes) = (0u32, 0u64);
    match t.format {
        Format::Cbor => {
            let per_block = 5 + 2 + reply.len() + MAX_DATA_HEADER;
            scratch.reserve(per_block * blocks.clone().count());
            let mut header = [0u8; MAX_DATA_HEADER];
            for i in blocks {
                let payload = data.slice(layout.block_range(i));
                let n = response::encode_data_header(
                    req.client_token,
                    req.file_id.get(),
                    i,
                    payload.len() as u32,
                    &mut header,
                );
                put_publish_header(&reply, n + payload.len(), scratch);
                scratch.extend_from_slice(&header[..n]);
                out.push(scratch.split().freeze());
                (count, bytes) = (count + 1, bytes + payload.len() as u64);
                out.push(payload);
            }
        }
        Format::Json => {
            let mut body = Vec::new();
            for i in blocks {
                let payload = &data[layout.block_range(i)];
                body.clear();
                response::encode_data(
                    Format::Json,
                    req.client_token,
                    req.file_id.get(),
                    i,
                    payload,
                    &mut body,
                );
                push_publish(&reply, &body, scratch, out);
                (count, bytes) = (count + 1, bytes + payload.len() as u64);
            }
        }
    }
    Ok(Outcome::Served {
        blocks: count,
        bytes,
    })
}

fn describe(
    t: &StreamTopic<'_>,
    client_token: Option<&str>,
    source: &dyn StreamSource,
    scratch: &mut BytesMut,
    out: &mut Outbound,
) -> Result<Outcome, Reject> {
    let d = source
        .describe(t.stream)
        .map_err(internal)?
        .ok_or(Reject::new(
            RejectCode::ResourceNotFound,
            "stream not found",
        ))?;
    let mut body = Vec::new();
    response::encode_description(
        t.format,
        client_token,
        d.version,
        &d.description,
        &d.files,
        &mut body,
    );
    push_publish(
        &topic_string(&t.reply(StreamOp::Description)),
        &body,
        scratch,
        out,
    );
    Ok(Outcome::Described)
}

fn internal(e: SourceError) -> Reject {
    tracing::error!(error = %e, "streams service: storage failure");
    Reject::new(RejectCode::InternalError, "internal error")
}

/// The one place where a refused request becomes a wire message: `…/rejected/<fmt>`.
fn reject(
    t: &StreamTopic<'_>,
    rej: Reject,
    client_token: Option<&str>,
    scratch: &mut BytesMut,
    out: &mut Outbound,
) -> Outcome {
    let mut body = Vec::new();
    response::encode_rejection(t.format, rej.code, rej.message, client_token, &mut body);
    push_publish(
        &topic_string(&t.reply(StreamOp::Rejected)),
        &body,
        scratch,
        out,
    );
    Outcome::Rejected(rej.code)
}

/// A request topic the chunker cannot parse still gets `InvalidTopic` when the stream and format
/// levels are recognisable: `$aws/things/<T>/streams/<S>/<op>/<fmt>` with an odd `<S>` or `<op>`.
fn reject_bad_topic(
    topic: &str,
    err: TopicError,
    scratch: &mut BytesMut,
    out: &mut Outbound,
) -> Outcome {
    let levels: Vec<&str> = topic.split('/').collect();
    let format = match levels.as_slice() {
        ["$aws", "things", _, "streams", _, _, "cbor"] => Format::Cbor,
        ["$aws", "things", _, "streams", _, _, "json"] => Format::Json,
        _ => return Outcome::Unanswerable,
    };
    if !matches!(
        err,
        TopicError::InvalidStreamId | TopicError::UnknownOperation
    ) {
        return Outcome::Unanswerable;
    }
    let reply = format!(
        "$aws/things/{}/streams/{}/rejected/{}",
        levels[2],
        levels[4],
        format.as_str()
    );
    let mut body = Vec::new();
    response::encode_rejection(
        format,
        RejectCode::InvalidTopic,
        "invalid streams topic",
        None,
        &mut body,
    );
    push_publish(&reply, &body, scratch, out);
    Outcome::Rejected(RejectCode::InvalidTopic)
}

fn topic_string(t: &StreamTopic<'_>) -> String {
    let mut s = String::new();
    t.write_to(&mut s);
    s
}

fn push_publish(topic: &str, body: &[u8], scratch: &mut BytesMut, out: &mut Outbound) {
    put_publish_header(topic, body.len(), scratch);
    scratch.extend_from_slice(body);
    out.push(scratch.split().freeze());
}

#[cfg(test)]
mod tests;
