//! The AWS device-code test vectors in `fixtures/streams/` (see its README): one generated test
//! per file. Requests must decode to the recorded fields and select exactly the recorded blocks;
//! data messages we encode must be byte-identical to the vectors the AWS agent accepts, and our
//! decoder plus block validation must fail every message the agent fails.

use std::path::Path;

use otastream_chunker::request::{decode_describe, decode_get, encode_get};
use otastream_chunker::response::{decode_data, encode_data, encode_description};
use otastream_chunker::select::select_blocks;
use otastream_chunker::{BlockSize, FileLayout, Format};
use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/fixture_tests.rs"));

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/streams")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("no {key}"))).expect("hex")
}

fn format_of(v: &Value) -> Format {
    match v["encoding"].as_str() {
        Some("cbor") => Format::Cbor,
        Some("json") => Format::Json,
        other => panic!("unknown encoding {other:?}"),
    }
}

/// The deterministic test image of the README: byte[i] = (i*31 + 7) mod 251.
fn test_image(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn check_fixture(name: &str) {
    let v = load(name);
    assert_eq!(
        v["name"].as_str().map(|n| format!("{n}.json")).as_deref(),
        Some(name)
    );
    match v["kind"].as_str() {
        Some("get_request") => check_get_request(&v),
        Some("data_response") => check_data_response(&v),
        Some("data_session") => check_data_session(&v),
        Some("describe_request") => check_describe_request(&v),
        Some("describe_response") => check_describe_response(&v),
        other => panic!("unknown kind {other:?}"),
    }
}

fn check_get_request(v: &Value) {
    let payload = hex_field(v, "hex");
    let format = format_of(v);
    let req = decode_get(format, &payload).expect("a real client's request decodes");
    let d = &v["decoded"];
    assert_eq!(req.client_token, d["c"].as_str());
    assert_eq!(req.stream_version, d["s"].as_u64());
    assert_eq!(u64::from(req.file_id.get()), u(&d["f"]));
    assert_eq!(u64::from(req.block_size.get()), u(&d["l"]));
    assert_eq!(u64::from(req.offset), d["o"].as_u64().unwrap_or(0));
    assert_eq!(req.count.map(u64::from), d["n"].as_u64().filter(|&n| n > 0));
    let bitmap = d["b_hex"].as_str().map(|h| hex::decode(h).expect("hex"));
    assert_eq!(req.bitmap.as_deref(), bitmap.as_deref());

    let layout = FileLayout::new(u(&v["file_size"]), req.block_size);
    assert_eq!(u64::from(layout.block_count()), u(&v["blocks_in_file"]));
    let selected: Vec<u64> = select_blocks(&req, &layout)
        .expect("selects")
        .map(u64::from)
        .collect();
    let expected: Vec<u64> = v["expected_blocks"]
        .as_array()
        .expect("list")
        .iter()
        .map(u)
        .collect();
    assert_eq!(selected, expected);

    // Our device-side encoder writes the AWS agent's key order, so CBOR requests round-trip.
    if format == Format::Cbor {
        let mut again = Vec::new();
        encode_get(format, &req, &mut again);
        assert_eq!(
            hex::encode(&again),
            hex::encode(&payload),
            "re-encoded request"
        );
    }
}

/// What our device side makes of a data message: decoded and validated against the 10-block
/// test file, or an error.
fn device_verdict(
    format: Format,
    payload: &[u8],
    layout: &FileLayout,
) -> Result<(u32, Vec<u8>), String> {
    let msg = decode_data(format, payload).map_err(|e| e.to_string())?;
    msg.validate(layout).map_err(|e| format!("{e:?}"))?;
    Ok((msg.index, msg.payload.into_owned()))
}

fn image_layout(v: &Value) -> (Vec<u8>, FileLayout) {
    let img = &v["image"];
    let size = u(&img["file_size"]) as usize;
    let block = BlockSize::new(u(&img["block_size"]) as u32).expect("block size");
    (test_image(size), FileLayout::new(size as u64, block))
}

fn check_data_response(v: &Value) {
    let format = format_of(v);
    let payload = match format {
        Format::Cbor => hex_field(v, "hex"),
        Format::Json => v["text"].as_str().expect("text").as_bytes().to_vec(),
    };
    let (image, layout) = image_layout(v);
    let verdict = device_verdict(format, &payload, &layout);
    let accepted_by_device_code = match format {
        Format::Cbor => {
            let outcome = v["agent_ingest"]["outcome"].as_str().expect("outcome");
            outcome != "job_failed"
        }
        Format::Json => v["file_streams_accepts"].as_bool().expect("verdict"),
    };
    // The agent validates `l` but never `len(p)`, so it swallows two corrupting forms that our
    // stricter device side refuses (README rule 5); everything else must agree.
    let agent_blind_spot = v["name"].as_str().is_some_and(|n| {
        n == "data_neg_l_gt_payload_nonlast" || n == "data_neg_last_block_payload_longer_than_l"
    });
    if agent_blind_spot {
        assert!(accepted_by_device_code && verdict.is_err(), "{verdict:?}");
    } else {
        assert_eq!(
            verdict.is_ok(),
            accepted_by_device_code,
            "our verdict {verdict:?}"
        );
    }

    // The server side: what we would send for this block, if it is one of the file.
    let Some(index) = v["image"]["block_index"].as_u64().map(|i| i as u32) else {
        return;
    };
    if !layout.contains(index) {
        return;
    }
    let token = token_of(format, &payload);
    let block = &image[layout.block_range(index)];
    let mut ours = Vec::new();
    encode_data(format, token.as_deref(), 0, index, block, &mut ours);
    let canonical = v["form"].as_str() == Some("definite-length map")
        && accepted_by_device_code
        && !agent_blind_spot
        || name_is(v, "fs_data_json_block0")
        || name_is(v, "fs_data_json_block9_last");
    if canonical
        && !name_is(v, "data_cbor_extra_key")
        && !name_is(v, "data_cbor_keys_reordered")
        && !name_is(v, "data_cbor_fileid_mismatch")
    {
        assert_eq!(
            ours, payload,
            "our encoding must be byte-identical to the accepted vector"
        );
    }
    if !accepted_by_device_code {
        assert_ne!(
            ours, payload,
            "we must never produce a form the device rejects"
        );
    }
    assert!(
        device_verdict(format, &ours, &layout).is_ok(),
        "our own message validates"
    );
}

fn name_is(v: &Value, name: &str) -> bool {
    v["name"].as_str() == Some(name)
}

fn token_of(format: Format, payload: &[u8]) -> Option<String> {
    decode_data(format, payload)
        .ok()?
        .client_token
        .map(|c| c.into_owned())
}

fn check_data_session(v: &Value) {
    let (image, layout) = image_layout(v);
    let mut rebuilt = vec![None; layout.block_count() as usize];
    let mut refused = 0;
    for m in v["messages"].as_array().expect("messages") {
        let bytes = hex_field(m, "hex");
        match device_verdict(Format::Cbor, &bytes, &layout) {
            Ok((i, p)) => rebuilt[i as usize] = Some(p),
            Err(_) => refused += 1,
        }
    }
    let agent_ok = v["final_state"].as_str() == Some("WaitingForJob")
        && v["agent_trace"]
            .as_array()
            .expect("trace")
            .iter()
            .any(|t| t["event"]["image_matches_test_image"].as_bool() == Some(true));
    if agent_ok {
        assert_eq!(refused, 0);
        let whole: Vec<u8> = rebuilt
            .into_iter()
            .flat_map(|b| b.expect("every block"))
            .collect();
        assert_eq!(whole, image, "reassembled image");
    } else {
        // The agent only noticed at the signature check; our device side refuses the bad block.
        assert!(refused > 0, "the corrupting message must be refused");
    }
}

fn check_describe_request(v: &Value) {
    let payload = hex_field(v, "hex");
    let req = decode_describe(format_of(v), &payload).expect("decodes");
    assert_eq!(req.client_token, v["decoded"]["c"].as_str());
}

fn check_describe_response(v: &Value) {
    let payload = hex_field(v, "hex");
    let diag = &v["diag"];
    let parsed: Value = diag
        .as_str()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| v["decoded"].clone());
    let c = parsed["c"].as_str();
    let d = parsed["d"].as_str().expect("d");
    let files: Vec<(u8, u64)> = parsed
        .get("r")
        .or_else(|| parsed.get("files"))
        .and_then(Value::as_array)
        .expect("files")
        .iter()
        .map(|f| (u(&f["f"]) as u8, u(&f["z"])))
        .collect();
    let mut ours = Vec::new();
    encode_description(Format::Cbor, c, u(&parsed["s"]), d, &files, &mut ours);
    assert_eq!(
        hex::encode(&ours),
        hex::encode(&payload),
        "same inputs, same bytes"
    );
    // The only decoder that ever existed needs the token echoed and a non-empty description:
    // the server echoes every token it gets, and its descriptions are never empty.
    let accepted = v["decoder_accepts"].as_bool().expect("verdict");
    assert_eq!(accepted, c.is_some() && !d.is_empty());
}

#[test]
fn every_vector_is_a_test() {
    let files = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/streams"))
        .expect("fixtures folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count();
    assert_eq!(files, FIXTURE_COUNT);
    assert_eq!(FIXTURE_COUNT, 60);
}
