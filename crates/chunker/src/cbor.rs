//! CBOR plumbing shared by the request and response codecs: walking a text-keyed top-level map,
//! classifying decode errors into reject codes, and encoding into a `Vec`.

use alloc::vec::Vec;
use core::convert::Infallible;

use minicbor::data::Type;
use minicbor::decode::Decoder;
use minicbor::encode::{self, Encoder};

use crate::error::{Reject, RejectCode};

/// Encodes with `f` into `out`. Writing into a `Vec` cannot fail, so the result is dropped.
pub(crate) fn write_vec(
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut Encoder<&mut Vec<u8>>) -> Result<(), encode::Error<Infallible>>,
) {
    let mut e = Encoder::new(out);
    let _infallible = f(&mut e);
}

pub(crate) fn decode_error(_: minicbor::decode::Error) -> Reject {
    Reject::new(RejectCode::InvalidCbor, "not valid CBOR")
}

/// A well-formed item of the wrong type is a bad request; anything else is bad CBOR.
pub(crate) fn field_error(e: minicbor::decode::Error) -> Reject {
    if e.is_type_mismatch() {
        Reject::new(
            RejectCode::InvalidRequest,
            "a field has the wrong CBOR type",
        )
    } else {
        decode_error(e)
    }
}

/// Walks a top-level CBOR map (definite or indefinite) with text keys, calling `on_entry` with
/// the decoder positioned at each value; `on_entry` must consume the value. Trailing bytes after
/// the map are refused.
pub(crate) fn for_each_entry<'b>(
    payload: &'b [u8],
    mut on_entry: impl FnMut(&'b str, &mut Decoder<'b>) -> Result<(), Reject>,
) -> Result<(), Reject> {
    let mut d = Decoder::new(payload);
    if !matches!(
        d.datatype().map_err(decode_error)?,
        Type::Map | Type::MapIndef
    ) {
        return Err(Reject::new(RejectCode::InvalidCbor, "not a CBOR map"));
    }
    let len = d.map().map_err(decode_error)?;
    let mut seen = 0u64;
    loop {
        match len {
            Some(n) if seen == n => break,
            None if d.datatype().map_err(decode_error)? == Type::Break => {
                d.set_position(d.position() + 1);
                break;
            }
            _ => {}
        }
        let key = d.str().map_err(field_error)?;
        on_entry(key, &mut d)?;
        seen += 1;
    }
    if d.position() != payload.len() {
        return Err(Reject::new(
            RejectCode::InvalidCbor,
            "trailing bytes after the CBOR map",
        ));
    }
    Ok(())
}
