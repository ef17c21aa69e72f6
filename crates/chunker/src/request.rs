//! GetStream and DescribeStream requests: decoding (server side) and encoding (device simulators).
//!
//! Both encodings go through one [`RawGet`] whose fields are checked against the AWS limits in
//! one place ([`RawGet::check`]), so CBOR and JSON reject the same way. Undecodable bytes are
//! `InvalidCbor` / `InvalidJson`; a document of the right encoding with a missing or mistyped
//! field is `InvalidRequest`; values outside the quotas get their specific code.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use minicbor::decode::Decoder;

use crate::block::{BlockSize, FileId};
use crate::cbor::{self, field_error as cbor_field_error};
use crate::error::{Reject, RejectCode};
use crate::json;
use crate::limits;
use crate::topic::Format;

/// A decoded GetStream request (`…/get/<fmt>`), all limits checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetStreamRequest<'a> {
    /// `c`: client token (≤ 64 bytes), echoed in every data message.
    pub client_token: Option<&'a str>,
    /// `s`: the stream version the device expects.
    pub stream_version: Option<u64>,
    /// `f`: the file inside the stream.
    pub file_id: FileId,
    /// `l`: the block size.
    pub block_size: BlockSize,
    /// `o`: the block offset the bitmap is relative to (0 when absent).
    pub offset: u32,
    /// `n`: without `b`, how many blocks from `o`; with `b`, a cap. `None` when absent or 0.
    pub count: Option<u32>,
    /// `b`: bitmap of wanted blocks relative to `o`, LSB first.
    pub bitmap: Option<Cow<'a, [u8]>>,
}

/// A decoded DescribeStream request (`…/describe/<fmt>`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DescribeStreamRequest<'a> {
    /// `c`: client token (≤ 64 bytes), echoed in the description.
    pub client_token: Option<&'a str>,
}

/// Request fields as they came off the wire, before the limits are applied.
#[derive(Default)]
pub(crate) struct RawGet<'a> {
    pub(crate) c: Option<&'a str>,
    pub(crate) s: Option<u64>,
    pub(crate) f: Option<u64>,
    pub(crate) l: Option<u64>,
    pub(crate) o: Option<u64>,
    pub(crate) n: Option<u64>,
    pub(crate) b: Option<Cow<'a, [u8]>>,
}

const fn invalid(message: &'static str) -> Reject {
    Reject::new(RejectCode::InvalidRequest, message)
}

pub(crate) fn check_token(c: Option<&str>) -> Result<Option<&str>, Reject> {
    match c {
        Some(t) if t.len() > limits::MAX_CLIENT_TOKEN => {
            Err(invalid("client token is longer than 64 bytes"))
        }
        other => Ok(other),
    }
}

impl<'a> RawGet<'a> {
    /// Applies the AWS quotas: the one place both encodings are judged.
    pub(crate) fn check(self) -> Result<GetStreamRequest<'a>, Reject> {
        let client_token = check_token(self.c)?;
        let f = self.f.ok_or(invalid("missing file id f"))?;
        let file_id = FileId::new(u32::try_from(f).unwrap_or(u32::MAX))?;
        let l = self.l.ok_or(invalid("missing block size l"))?;
        let block_size = BlockSize::new(u32::try_from(l).unwrap_or(u32::MAX))?;
        let offset = match self.o.unwrap_or(0) {
            o if o <= u64::from(limits::MAX_OFFSET) => o as u32,
            _ => {
                return Err(Reject::new(
                    RejectCode::OffsetOutOfBounds,
                    "offset o must be 0..=98304",
                ));
            }
        };
        let count = match self.n {
            None | Some(0) => None,
            Some(n) if n <= u64::from(limits::MAX_BLOCK_COUNT) => Some(n as u32),
            Some(_) => {
                return Err(Reject::new(
                    RejectCode::BlockCountLimitExceeded,
                    "block count n must be 0..=98304",
                ));
            }
        };
        if self
            .b
            .as_ref()
            .is_some_and(|b| b.len() > limits::MAX_BITMAP_BYTES)
        {
            return Err(Reject::new(
                RejectCode::BlockBitmapLimitExceeded,
                "bitmap b must be shorter than 12288 bytes",
            ));
        }
        Ok(GetStreamRequest {
            client_token,
            stream_version: self.s,
            file_id,
            block_size,
            offset,
            count,
            bitmap: self.b,
        })
    }
}

/// Decodes a GetStream request in `format`.
pub fn decode_get(format: Format, payload: &[u8]) -> Result<GetStreamRequest<'_>, Reject> {
    match format {
        Format::Cbor => decode_get_cbor(payload)?.check(),
        Format::Json => json::decode_get(payload)?.check(),
    }
}

/// Decodes a DescribeStream request in `format`. An empty payload is a request without token.
pub fn decode_describe(
    format: Format,
    payload: &[u8],
) -> Result<DescribeStreamRequest<'_>, Reject> {
    if payload.is_empty() {
        return Ok(DescribeStreamRequest::default());
    }
    let c = match format {
        Format::Cbor => {
            let mut c = None;
            cbor::for_each_entry(payload, |key, d| {
                if key == "c" {
                    c = Some(d.str().map_err(cbor_field_error)?);
                } else {
                    d.skip().map_err(cbor::decode_error)?;
                }
                Ok(())
            })?;
            c
        }
        Format::Json => json::decode_describe(payload)?,
    };
    Ok(DescribeStreamRequest {
        client_token: check_token(c)?,
    })
}

/// The client token `c` of a request that [`decode_get`] refused, when the document still carries
/// a readable one (a well-formed map whose `c` is a text of at most 64 bytes): AWS echoes it in the
/// `rejected` message, so a device can match the refusal to its request. `None` for undecodable
/// documents and over-long tokens.
pub fn refused_client_token(format: Format, payload: &[u8]) -> Option<&str> {
    decode_describe(format, payload).ok()?.client_token
}

fn decode_get_cbor(payload: &[u8]) -> Result<RawGet<'_>, Reject> {
    let mut raw = RawGet::default();
    cbor::for_each_entry(payload, |key, d| {
        let int = |d: &mut Decoder<'_>| d.u64().map_err(cbor_field_error);
        match key {
            "c" => raw.c = Some(d.str().map_err(cbor_field_error)?),
            "s" => raw.s = Some(int(d)?),
            "f" => raw.f = Some(int(d)?),
            "l" => raw.l = Some(int(d)?),
            "o" => raw.o = Some(int(d)?),
            "n" => raw.n = Some(int(d)?),
            "b" => raw.b = Some(Cow::Borrowed(d.bytes().map_err(cbor_field_error)?)),
            _ => d.skip().map_err(cbor::decode_error)?,
        }
        Ok(())
    })?;
    Ok(raw)
}

/// Encodes a GetStream request the way the AWS OTA agent does: a definite map with the keys
/// `c`, `s`, `f`, `l`, `o`, `b`, `n` (absent ones left out; `o` always written). For device
/// simulators and tests.
pub fn encode_get(format: Format, req: &GetStreamRequest<'_>, out: &mut Vec<u8>) {
    match format {
        Format::Cbor => encode_get_cbor(req, out),
        Format::Json => json::encode_get(req, out),
    }
}

fn encode_get_cbor(req: &GetStreamRequest<'_>, out: &mut Vec<u8>) {
    let entries = 3
        + u64::from(req.client_token.is_some())
        + u64::from(req.stream_version.is_some())
        + u64::from(req.bitmap.is_some())
        + u64::from(req.count.is_some());
    cbor::write_vec(out, |e| {
        e.map(entries)?;
        if let Some(c) = req.client_token {
            e.str("c")?.str(c)?;
        }
        if let Some(s) = req.stream_version {
            e.str("s")?.u64(s)?;
        }
        e.str("f")?.u8(req.file_id.get())?;
        e.str("l")?.u32(req.block_size.get())?;
        e.str("o")?.u32(req.offset)?;
        if let Some(b) = &req.bitmap {
            e.str("b")?.bytes(b)?;
        }
        if let Some(n) = req.count {
            e.str("n")?.u32(n)?;
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_the_agent_request_case_c() {
        let p = hex("a6616363726479616600616c191000616f00616242d803616e04");
        let r = decode_get(Format::Cbor, &p).unwrap();
        assert_eq!(r.client_token, Some("rdy"));
        assert_eq!(r.block_size.get(), 4096);
        assert_eq!(r.count, Some(4));
        assert_eq!(r.bitmap.as_deref(), Some(&[0xd8, 0x03][..]));
        let mut again = Vec::new();
        encode_get(Format::Cbor, &r, &mut again);
        assert_eq!(again, p);
    }

    #[test]
    fn limit_codes() {
        let code = |p: &str| decode_get(Format::Cbor, &hex(p)).unwrap_err().code;
        // {"f":0,"l":100}
        assert_eq!(code("a2616600616c1864"), RejectCode::BlockSizeOutOfBounds);
        // {"f":0,"l":4096,"o":98305}
        assert_eq!(
            code("a3616600616c191000616f1a00018001"),
            RejectCode::OffsetOutOfBounds
        );
        // {"f":0,"l":4096,"n":98305}
        assert_eq!(
            code("a3616600616c191000616e1a00018001"),
            RejectCode::BlockCountLimitExceeded
        );
        // {"l":4096}
        assert_eq!(code("a1616c191000"), RejectCode::InvalidRequest);
        // {"f":"x","l":4096}
        assert_eq!(code("a261666178616c191000"), RejectCode::InvalidRequest);
        // truncated map, a non-map, trailing bytes
        assert_eq!(code("a2616600"), RejectCode::InvalidCbor);
        assert_eq!(code("8100"), RejectCode::InvalidCbor);
        assert_eq!(code("a2616600616c19100000"), RejectCode::InvalidCbor);
        assert_eq!(code(""), RejectCode::InvalidCbor);
    }

    #[test]
    fn refused_requests_keep_their_readable_token() {
        // {"c":"rdy","f":0,"l":100}: refused for its block size, the token still readable.
        let p = hex("a3616363726479616600616c1864");
        assert_eq!(
            decode_get(Format::Cbor, &p).unwrap_err().code,
            RejectCode::BlockSizeOutOfBounds
        );
        assert_eq!(refused_client_token(Format::Cbor, &p), Some("rdy"));
        // {"c":"rdy","f":"x","l":4096}: a mistyped field after the token.
        let p = hex("a361636372647961666178616c191000");
        assert_eq!(refused_client_token(Format::Cbor, &p), Some("rdy"));
        // Truncated CBOR and broken JSON carry no token AWS could echo.
        assert_eq!(
            refused_client_token(Format::Cbor, &hex("a2616363726479")),
            None
        );
        assert_eq!(
            refused_client_token(Format::Json, br#"{"c":"t","f":"#),
            None
        );
        let long = alloc::format!(r#"{{"c":"{}","f":0,"l":4096}}"#, "t".repeat(65));
        assert_eq!(refused_client_token(Format::Json, long.as_bytes()), None);
        assert_eq!(
            refused_client_token(Format::Json, br#"{"c":"t","f":0,"l":1}"#),
            Some("t")
        );
    }

    #[test]
    fn bitmap_limit_and_token_limit() {
        let mut big = Vec::new();
        let req = GetStreamRequest {
            client_token: None,
            stream_version: None,
            file_id: FileId::new(0).unwrap(),
            block_size: BlockSize::new(256).unwrap(),
            offset: 0,
            count: None,
            bitmap: Some(Cow::Owned(alloc::vec![0xff; 12_288])),
        };
        encode_get(Format::Cbor, &req, &mut big);
        assert_eq!(
            decode_get(Format::Cbor, &big).unwrap_err().code,
            RejectCode::BlockBitmapLimitExceeded
        );
        let token = "t".repeat(65);
        let req = GetStreamRequest {
            client_token: Some(&token),
            bitmap: None,
            ..req
        };
        let mut p = Vec::new();
        encode_get(Format::Cbor, &req, &mut p);
        assert_eq!(
            decode_get(Format::Cbor, &p).unwrap_err().code,
            RejectCode::InvalidRequest
        );
    }

    #[test]
    fn describe_requests() {
        assert_eq!(
            decode_describe(Format::Cbor, &hex("a1616363726479"))
                .unwrap()
                .client_token,
            Some("rdy")
        );
        assert_eq!(
            decode_describe(Format::Cbor, &hex("a0"))
                .unwrap()
                .client_token,
            None
        );
        assert_eq!(
            decode_describe(Format::Json, b"{}").unwrap().client_token,
            None
        );
        assert_eq!(
            decode_describe(Format::Json, b"{\"c\":\"x\"}")
                .unwrap()
                .client_token,
            Some("x")
        );
        assert_eq!(
            decode_describe(Format::Json, b"{").unwrap_err().code,
            RejectCode::InvalidJson
        );
        assert_eq!(
            decode_describe(Format::Cbor, &hex("ff")).unwrap_err().code,
            RejectCode::InvalidCbor
        );
    }
}
