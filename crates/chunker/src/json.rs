//! The JSON forms of the Streams messages, through `serde_json` (works without std).
//!
//! Keys are the same one-letter keys as in CBOR; binary fields are Base64 text. The request
//! bitmap `b` has no pinned-down JSON syntax (PROTOCOL.md §1.2), so a hex string (with or
//! without `0x`), a Base64 string and an array of byte values are all accepted: a string that is
//! an even number of hex digits is read as hex, any other string as Base64.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::error::Category;

use crate::error::{Reject, RejectCode};
use crate::request::{GetStreamRequest, RawGet};
use crate::response::DataMessage;

/// Standard alphabet, padding optional: what the file-streams library's decoder accepts.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn json_error(e: &serde_json::Error) -> Reject {
    match e.classify() {
        Category::Data => Reject::new(
            RejectCode::InvalidRequest,
            "a JSON field is missing or has the wrong type",
        ),
        Category::Io | Category::Syntax | Category::Eof => {
            Reject::new(RejectCode::InvalidJson, "not valid JSON")
        }
    }
}

#[derive(Deserialize)]
struct GetIn<'a> {
    #[serde(borrow)]
    c: Option<&'a str>,
    s: Option<u64>,
    f: Option<u64>,
    l: Option<u64>,
    o: Option<u64>,
    n: Option<u64>,
    b: Option<Value>,
}

pub(crate) fn decode_get(payload: &[u8]) -> Result<RawGet<'_>, Reject> {
    let g: GetIn<'_> = serde_json::from_slice(payload).map_err(|e| json_error(&e))?;
    let b = match g.b {
        None | Some(Value::Null) => None,
        Some(v) => Some(Cow::Owned(bitmap_from_json(&v)?)),
    };
    Ok(RawGet {
        c: g.c,
        s: g.s,
        f: g.f,
        l: g.l,
        o: g.o,
        n: g.n,
        b,
    })
}

fn bitmap_from_json(v: &Value) -> Result<Vec<u8>, Reject> {
    let bad = Reject::new(
        RejectCode::InvalidRequest,
        "bitmap b must be a hex or Base64 string or an array of bytes",
    );
    match v {
        Value::String(s) => {
            let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
            let hex = digits.unwrap_or(s);
            if digits.is_some()
                || (hex.len().is_multiple_of(2) && hex.bytes().all(|c| c.is_ascii_hexdigit()))
            {
                decode_hex(hex).ok_or(bad)
            } else {
                LENIENT_BASE64.decode(s).map_err(|_| bad)
            }
        }
        Value::Array(items) => items
            .iter()
            .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()).ok_or(bad))
            .collect(),
        _ => Err(bad),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[derive(Deserialize)]
struct DescribeIn<'a> {
    #[serde(borrow)]
    c: Option<&'a str>,
}

pub(crate) fn decode_describe(payload: &[u8]) -> Result<Option<&str>, Reject> {
    let d: DescribeIn<'_> = serde_json::from_slice(payload).map_err(|e| json_error(&e))?;
    Ok(d.c)
}

#[derive(Serialize)]
struct GetOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<u64>,
    f: u8,
    l: u32,
    o: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
}

pub(crate) fn encode_get(req: &GetStreamRequest<'_>, out: &mut Vec<u8>) {
    let b = req.bitmap.as_ref().map(|b| {
        let mut s = String::from("0x");
        for byte in b.iter() {
            s.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(byte & 15), 16).unwrap_or('0'));
        }
        s
    });
    let g = GetOut {
        c: req.client_token,
        s: req.stream_version,
        f: req.file_id.get(),
        l: req.block_size.get(),
        o: req.offset,
        b,
        n: req.count,
    };
    write(out, &g);
}

#[derive(Serialize)]
struct DataOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a str>,
    f: u8,
    i: u32,
    l: u32,
    p: String,
}

pub(crate) fn encode_data(
    client_token: Option<&str>,
    file_id: u8,
    index: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let d = DataOut {
        c: client_token,
        f: file_id,
        i: index,
        l: payload.len() as u32,
        p: STANDARD.encode(payload),
    };
    write(out, &d);
}

#[derive(Serialize)]
struct FileOut {
    f: u8,
    z: u64,
}

#[derive(Serialize)]
struct DescriptionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a str>,
    s: u64,
    d: &'a str,
    r: Vec<FileOut>,
}

pub(crate) fn encode_description(
    c: Option<&str>,
    version: u64,
    description: &str,
    files: &[(u8, u64)],
    out: &mut Vec<u8>,
) {
    let r = files.iter().map(|&(f, z)| FileOut { f, z }).collect();
    write(
        out,
        &DescriptionOut {
            c,
            s: version,
            d: description,
            r,
        },
    );
}

#[derive(Serialize)]
struct RejectionOut<'a> {
    o: &'a str,
    m: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<&'a str>,
}

pub(crate) fn encode_rejection(
    code: RejectCode,
    message: &str,
    c: Option<&str>,
    out: &mut Vec<u8>,
) {
    write(
        out,
        &RejectionOut {
            o: code.as_str(),
            m: message,
            c,
        },
    );
}

/// Serialising these plain structs cannot fail; a failure would leave `out` unchanged.
fn write(out: &mut Vec<u8>, value: &impl Serialize) {
    if let Ok(bytes) = serde_json::to_vec(value) {
        out.extend_from_slice(&bytes);
    }
}

/// A number written as a number or as a string of digits (the file-streams decoder accepts both).
#[derive(Deserialize)]
#[serde(untagged)]
enum Num<'a> {
    Int(u64),
    Text(&'a str),
}

impl Num<'_> {
    fn get(&self) -> Option<u64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Text(t) => t.parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct DataIn<'a> {
    #[serde(borrow)]
    c: Option<Cow<'a, str>>,
    #[serde(borrow)]
    f: Num<'a>,
    #[serde(borrow)]
    i: Num<'a>,
    #[serde(borrow)]
    l: Num<'a>,
    #[serde(borrow)]
    p: Cow<'a, str>,
}

pub(crate) fn decode_data(payload: &[u8]) -> Result<DataMessage<'_>, Reject> {
    let d: DataIn<'_> = serde_json::from_slice(payload).map_err(|e| json_error(&e))?;
    let num = |n: &Num<'_>| {
        n.get()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(Reject::new(
                RejectCode::InvalidRequest,
                "f, i and l must be unsigned integers",
            ))
    };
    let payload = LENIENT_BASE64
        .decode(d.p.as_bytes())
        .map_err(|_| Reject::new(RejectCode::InvalidRequest, "p is not standard Base64"))?;
    Ok(DataMessage {
        client_token: d.c,
        file_id: num(&d.f)?,
        index: num(&d.i)?,
        len: num(&d.l)?,
        payload: Cow::Owned(payload),
    })
}
