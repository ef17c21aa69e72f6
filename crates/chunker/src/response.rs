//! What the service sends back: data messages, stream descriptions, rejections — and the
//! device-side decoder for data messages.
//!
//! A CBOR data message is a definite map `{c?, f, i, l, p}` (keys in that order: byte-identical to
//! the vectors the AWS agent accepts). [`encode_data_header`] writes everything up to and
//! including the byte-string header of `p` into a fixed stack buffer, so a server can send that
//! header followed by a borrowed slice of the image — one vectored write, no copy.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use crate::block::FileLayout;
use crate::cbor;
use crate::error::{Reject, RejectCode};
use crate::json;
use crate::limits;
use crate::topic::Format;

/// Room for the largest CBOR data header: map, a 64-byte token, `f`, `i`, `l` and the `p` header.
pub const MAX_DATA_HEADER: usize = 96;

/// Writes the CBOR data-message header for a block of `payload_len` bytes into `out` and returns
/// its length; the payload bytes must follow it verbatim. `l` is set to `payload_len`, which is
/// what the AWS agent validates. A token longer than 64 bytes (never accepted by
/// [`crate::request::decode_get`]) is left out rather than overflowing the buffer.
///
/// This is the one hot-path encoder, so it writes the CBOR heads directly (about 5 ns instead of
/// about 60 ns through minicbor's general encoder); `header_matches_minicbor` in the tests
/// checks it byte for byte against [`encode_data_header_minicbor`].
pub fn encode_data_header(
    client_token: Option<&str>,
    file_id: u8,
    index: u32,
    payload_len: u32,
    out: &mut [u8; MAX_DATA_HEADER],
) -> usize {
    let token = client_token.filter(|t| t.len() <= limits::MAX_CLIENT_TOKEN);
    let mut w = HeadWriter { out, at: 0 };
    w.head(MAJOR_MAP, 4 + u32::from(token.is_some()));
    if let Some(t) = token {
        w.key(b'c');
        w.head(MAJOR_TEXT, t.len() as u32);
        w.raw(t.as_bytes());
    }
    w.key(b'f');
    w.head(MAJOR_UINT, u32::from(file_id));
    w.key(b'i');
    w.head(MAJOR_UINT, index);
    w.key(b'l');
    w.head(MAJOR_UINT, payload_len);
    w.key(b'p');
    w.head(MAJOR_BYTES, payload_len);
    w.at
}

const MAJOR_UINT: u8 = 0 << 5;
const MAJOR_BYTES: u8 = 2 << 5;
const MAJOR_TEXT: u8 = 3 << 5;
const MAJOR_MAP: u8 = 5 << 5;

/// Writes CBOR heads (major type + shortest argument) into the fixed header buffer. The buffer
/// holds the largest header [`encode_data_header`] can produce, so indexing never goes out of
/// bounds.
struct HeadWriter<'a> {
    out: &'a mut [u8; MAX_DATA_HEADER],
    at: usize,
}

impl HeadWriter<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    fn head(&mut self, major: u8, arg: u32) {
        match arg {
            0..=23 => self.raw(&[major | arg as u8]),
            24..=0xff => self.raw(&[major | 24, arg as u8]),
            0x100..=0xffff => {
                let [a, b] = (arg as u16).to_be_bytes();
                self.raw(&[major | 25, a, b]);
            }
            _ => {
                let [a, b, c, d] = arg.to_be_bytes();
                self.raw(&[major | 26, a, b, c, d]);
            }
        }
    }

    /// A one-letter text key.
    fn key(&mut self, k: u8) {
        self.raw(&[MAJOR_TEXT | 1, k]);
    }
}

/// The same header as [`encode_data_header`], written through minicbor's general encoder: the
/// reference the fast path is tested against.
pub fn encode_data_header_minicbor(
    client_token: Option<&str>,
    file_id: u8,
    index: u32,
    payload_len: u32,
    out: &mut Vec<u8>,
) {
    let token = client_token.filter(|t| t.len() <= limits::MAX_CLIENT_TOKEN);
    cbor::write_vec(out, |e| {
        e.map(4 + u64::from(token.is_some()))?;
        if let Some(t) = token {
            e.str("c")?.str(t)?;
        }
        e.str("f")?.u8(file_id)?;
        e.str("i")?.u32(index)?;
        e.str("l")?.u32(payload_len)?;
        e.str("p")?.bytes_len(u64::from(payload_len))?;
        Ok(())
    });
}

/// Appends a whole data message (header and payload) in `format` to `out`. For CBOR this copies
/// the payload; servers on the hot path use [`encode_data_header`] instead. JSON carries `p` as
/// standard padded Base64.
pub fn encode_data(
    format: Format,
    client_token: Option<&str>,
    file_id: u8,
    index: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    match format {
        Format::Cbor => {
            let mut header = [0u8; MAX_DATA_HEADER];
            let n = encode_data_header(
                client_token,
                file_id,
                index,
                payload.len() as u32,
                &mut header,
            );
            out.extend_from_slice(&header[..n]);
            out.extend_from_slice(payload);
        }
        Format::Json => json::encode_data(client_token, file_id, index, payload, out),
    }
}

/// Appends a DescribeStream response `{c?, s, d, r: [{f, z}…]}` to `out`. An empty description is
/// written as `""` (the key is always present).
pub fn encode_description(
    format: Format,
    client_token: Option<&str>,
    version: u64,
    description: &str,
    files: &[(u8, u64)],
    out: &mut Vec<u8>,
) {
    match format {
        Format::Cbor => cbor::write_vec(out, |e| {
            e.map(3 + u64::from(client_token.is_some()))?;
            if let Some(c) = client_token {
                e.str("c")?.str(c)?;
            }
            e.str("s")?.u64(version)?;
            e.str("d")?.str(description)?;
            e.str("r")?.array(files.len() as u64)?;
            for &(f, z) in files {
                e.map(2)?.str("f")?.u8(f)?.str("z")?.u64(z)?;
            }
            Ok(())
        }),
        Format::Json => json::encode_description(client_token, version, description, files, out),
    }
}

/// Appends a rejection `{o: code, m: message, c?}` to `out`.
pub fn encode_rejection(
    format: Format,
    code: RejectCode,
    message: &str,
    client_token: Option<&str>,
    out: &mut Vec<u8>,
) {
    match format {
        Format::Cbor => cbor::write_vec(out, |e| {
            e.map(2 + u64::from(client_token.is_some()))?;
            e.str("o")?.str(code.as_str())?.str("m")?.str(message)?;
            if let Some(c) = client_token {
                e.str("c")?.str(c)?;
            }
            Ok(())
        }),
        Format::Json => json::encode_rejection(code, message, client_token, out),
    }
}

/// A decoded data message, as a device sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataMessage<'a> {
    /// `c`, when the service echoed one.
    pub client_token: Option<Cow<'a, str>>,
    /// `f`: the file id.
    pub file_id: u32,
    /// `i`: the absolute block index.
    pub index: u32,
    /// `l`: the block length the service claims.
    pub len: u32,
    /// `p`: the block bytes (borrowed from CBOR, decoded from JSON Base64).
    pub payload: Cow<'a, [u8]>,
}

/// Why a decoded data message does not fit the file being downloaded (the AWS agent fails the
/// job on each of these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// `i` is past the last block.
    IndexPastEnd,
    /// `l` is not the block size (or, for the last block, the remaining file length).
    WrongLength,
    /// `len(p)` differs from `l`.
    PayloadLengthMismatch,
}

impl DataMessage<'_> {
    /// Checks the message against the file the way the AWS agent does, plus `len(p) == l` (which
    /// the agent does not check and so would silently corrupt its image).
    pub fn validate(&self, layout: &FileLayout) -> Result<(), BlockError> {
        if !layout.contains(self.index) {
            return Err(BlockError::IndexPastEnd);
        }
        if self.len != layout.block_len(self.index) {
            return Err(BlockError::WrongLength);
        }
        if self.payload.len() != self.len as usize {
            return Err(BlockError::PayloadLengthMismatch);
        }
        Ok(())
    }
}

/// Decodes a data message in `format` (device side). CBOR: a definite or indefinite map, any key
/// order, extra keys ignored; `f`, `i`, `l` must be unsigned integers and `p` a byte string.
pub fn decode_data(format: Format, payload: &[u8]) -> Result<DataMessage<'_>, Reject> {
    match format {
        Format::Cbor => decode_data_cbor(payload),
        Format::Json => json::decode_data(payload),
    }
}

fn decode_data_cbor(payload: &[u8]) -> Result<DataMessage<'_>, Reject> {
    let (mut c, mut f, mut i, mut l, mut p) = (None, None, None, None, None);
    cbor::for_each_entry(payload, |key, d| {
        let int = |d: &mut minicbor::Decoder<'_>| d.u32().map_err(cbor::field_error);
        match key {
            "c" => c = Some(Cow::Borrowed(d.str().map_err(cbor::field_error)?)),
            "f" => f = Some(int(d)?),
            "i" => i = Some(int(d)?),
            "l" => l = Some(int(d)?),
            "p" => p = Some(Cow::Borrowed(d.bytes().map_err(cbor::field_error)?)),
            _ => d.skip().map_err(cbor::decode_error)?,
        }
        Ok(())
    })?;
    let missing = Reject::new(
        RejectCode::InvalidRequest,
        "data message lacks f, i, l or p",
    );
    Ok(DataMessage {
        client_token: c,
        file_id: f.ok_or(missing)?,
        index: i.ok_or(missing)?,
        len: l.ok_or(missing)?,
        payload: p.ok_or(missing)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockSize;

    #[test]
    fn header_plus_payload_is_the_documented_tiny_example() {
        // PROTOCOL.md §1.10: 256-byte blocks, last block of 8 bytes, i = 2.
        let payload = [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
        let mut out = Vec::new();
        encode_data(Format::Cbor, Some("rdy"), 0, 2, &payload, &mut out);
        let expected = "a5616363726479616600616902616c08617048deadbeef01020304";
        let hex: alloc::string::String = out.iter().map(|b| alloc::format!("{b:02x}")).collect();
        // Our key order is c,f,i,l,p (the order of the vectors the agent accepted).
        assert_eq!(hex, expected);
    }

    #[test]
    fn longest_header_fits() {
        let token = "t".repeat(64);
        let mut h = [0u8; MAX_DATA_HEADER];
        let n = encode_data_header(Some(&token), 255, u32::MAX, u32::MAX, &mut h);
        assert_eq!(n, 1 + 2 + 2 + 64 + 2 + 2 + 2 + 5 + 2 + 5 + 2 + 5);
        let too_long = "t".repeat(65);
        let n2 = encode_data_header(Some(&too_long), 0, 0, 1, &mut h);
        assert_eq!(h[0], 0xa4, "over-long token is left out");
        assert!(n2 < n);
    }

    #[test]
    fn validate_like_the_agent() {
        let layout = FileLayout::new(10_000, BlockSize::new(4096).unwrap());
        let msg = |index, len, plen: usize| DataMessage {
            client_token: None,
            file_id: 0,
            index,
            len,
            payload: Cow::Owned(alloc::vec![0; plen]),
        };
        assert_eq!(msg(0, 4096, 4096).validate(&layout), Ok(()));
        assert_eq!(msg(2, 1808, 1808).validate(&layout), Ok(()));
        assert_eq!(
            msg(2, 4096, 4096).validate(&layout),
            Err(BlockError::WrongLength)
        );
        assert_eq!(
            msg(3, 4096, 4096).validate(&layout),
            Err(BlockError::IndexPastEnd)
        );
        assert_eq!(
            msg(0, 4096, 1000).validate(&layout),
            Err(BlockError::PayloadLengthMismatch)
        );
    }

    #[test]
    fn rejection_and_description_shapes() {
        let mut out = Vec::new();
        encode_rejection(
            Format::Json,
            RejectCode::VersionMismatch,
            "stream version is 2",
            Some("t"),
            &mut out,
        );
        assert_eq!(
            out,
            br#"{"o":"VersionMismatch","m":"stream version is 2","c":"t"}"#
        );
        out.clear();
        encode_description(Format::Json, None, 1, "fw", &[(0, 10_000)], &mut out);
        assert_eq!(out, br#"{"s":1,"d":"fw","r":[{"f":0,"z":10000}]}"#);
    }
}
