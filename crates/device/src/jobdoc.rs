//! Reading `$next/get/accepted` and `notify-next` messages the way the AWS agent does
//! (PROTOCOL.md §2.7, §3.2): the `execution` with its `jobId`, the self-test markers in
//! `statusDetails`, and the one file of `jobDocument.afr_ota`.

use serde_json::{Map, Value};

use crate::status::{AppVersion, code};

/// The data protocol a job offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// MQTT streams (`streamname`).
    Mqtt,
    /// HTTP range requests against `update_data_url`.
    Http,
}

/// The file an `afr_ota` document asks the device to fetch (the agent handles only `files[0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaFile {
    /// `filepath`.
    pub path: Option<String>,
    /// `filesize` in bytes.
    pub size: u64,
    /// `fileid`: the stream file id.
    pub file_id: u8,
    /// `certfile`.
    pub cert_file: Option<String>,
    /// `fileType` (0 = firmware, the default).
    pub file_type: u32,
    /// The decoded signature under the configured key (`sig-sha256-ecdsa`).
    pub signature: Option<Vec<u8>>,
    /// `update_data_url` (HTTP).
    pub update_data_url: Option<String>,
    /// `auth_scheme` (HTTP; stored, not interpreted — like the agent).
    pub auth_scheme: Option<String>,
}

/// A usable OTA job execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaJob {
    /// `execution.jobId`.
    pub job_id: String,
    /// Protocols listed in `afr_ota.protocols`.
    pub protocols: Vec<Protocol>,
    /// `afr_ota.streamname`.
    pub stream: Option<String>,
    /// `afr_ota.files[0]`.
    pub file: OtaFile,
    /// `statusDetails.self_test` is present (any value).
    pub self_test: bool,
    /// `statusDetails.updatedBy`, parsed like `strtoul(…, 0)`.
    pub updated_by: Option<AppVersion>,
}

/// What one Jobs message tells the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobMessage {
    /// No pending job (`{"clientToken":…,"timestamp":…}` or `{"timestamp":…}`).
    NoJob,
    /// An OTA job the agent can run.
    Job(OtaJob),
    /// An execution whose document the agent cannot use; `job_id` gets a FAILED update.
    Unusable {
        /// The job id.
        job_id: String,
        /// The `OtaJobParseErr_t` sub code.
        parse_error: u32,
    },
    /// Not JSON, no job id, or not an `afr_ota` job: ignored (the agent hands such jobs to a
    /// custom-job callback).
    Ignored,
}

/// Parses a Jobs message. `signature_key` is the platform's signature field name.
pub fn parse(payload: &[u8], signature_key: &str, max_blocks: u64, block_size: u32) -> JobMessage {
    let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(payload) else {
        return JobMessage::Ignored;
    };
    let Some(execution) = top.get("execution").and_then(Value::as_object) else {
        let empty = top.keys().all(|k| k == "clientToken" || k == "timestamp");
        return if empty {
            JobMessage::NoJob
        } else {
            JobMessage::Ignored
        };
    };
    let Some(job_id) = execution.get("jobId").and_then(Value::as_str) else {
        return JobMessage::Ignored;
    };
    let Some(afr_ota) = execution
        .get("jobDocument")
        .and_then(|d| d.get("afr_ota"))
        .and_then(Value::as_object)
    else {
        return JobMessage::Ignored;
    };
    let unusable = |parse_error| JobMessage::Unusable {
        job_id: job_id.to_owned(),
        parse_error,
    };
    let Some(file) = afr_ota
        .get("files")
        .and_then(Value::as_array)
        .and_then(|f| f.first())
        .and_then(Value::as_object)
        .and_then(|f| parse_file(f, signature_key))
    else {
        return unusable(code::PARSE_NON_CONFORMING);
    };
    let Some(protocols) = afr_ota.get("protocols").and_then(Value::as_array) else {
        return unusable(code::PARSE_NON_CONFORMING);
    };
    if file.size == 0 {
        return unusable(code::PARSE_ZERO_FILE_SIZE);
    }
    if file.size.div_ceil(u64::from(block_size)) > max_blocks {
        return unusable(code::PARSE_BAD_MODEL_PARAMS);
    }
    let protocols = protocols
        .iter()
        .filter_map(|p| match p.as_str()? {
            "MQTT" => Some(Protocol::Mqtt),
            "HTTP" => Some(Protocol::Http),
            _ => None,
        })
        .collect();
    let details = execution.get("statusDetails").and_then(Value::as_object);
    JobMessage::Job(OtaJob {
        job_id: job_id.to_owned(),
        protocols,
        stream: text(afr_ota, "streamname"),
        file,
        self_test: details.is_some_and(|d| d.contains_key("self_test")),
        updated_by: details
            .and_then(|d| d.get("updatedBy"))
            .and_then(number)
            .and_then(|v| u32::try_from(v).ok())
            .map(AppVersion),
    })
}

fn parse_file(f: &Map<String, Value>, signature_key: &str) -> Option<OtaFile> {
    let size = f.get("filesize").and_then(number)?;
    let file_id = u8::try_from(f.get("fileid").and_then(number)?).ok()?;
    let file_type = match f.get("fileType") {
        None => 0,
        Some(v) => u32::try_from(number(v)?).ok()?,
    };
    let signature = match f.get(signature_key) {
        None => None,
        Some(v) => Some(base64_decode(v.as_str()?)?),
    };
    Some(OtaFile {
        path: text(f, "filepath"),
        size,
        file_id,
        cert_file: text(f, "certfile"),
        file_type,
        signature,
        update_data_url: text(f, "update_data_url"),
        auth_scheme: text(f, "auth_scheme"),
    })
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A JSON number, or a string read like `strtoul(s, NULL, 0)` consuming the whole token
/// (`"0x1f"` hex, `"017"` octal, `"12"` decimal).
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                u64::from_str_radix(hex, 16).ok()
            } else if s.len() > 1 && s.starts_with('0') {
                u64::from_str_radix(&s[1..], 8).ok()
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sig-sha256-ecdsa";

    fn parse_str(s: &str) -> JobMessage {
        parse(s.as_bytes(), KEY, 1024, 4096)
    }

    #[test]
    fn empty_replies_mean_no_job() {
        assert_eq!(
            parse_str(r#"{"clientToken":":t","timestamp":1629735402}"#),
            JobMessage::NoJob
        );
        assert_eq!(parse_str(r#"{"timestamp":1605788182}"#), JobMessage::NoJob);
        assert_eq!(parse_str("not json"), JobMessage::Ignored);
        assert_eq!(
            parse_str(r#"{"code":"InvalidRequest"}"#),
            JobMessage::Ignored
        );
    }

    #[test]
    fn reads_the_captured_mqtt_document() {
        let m = parse_str(
            r#"{"clientToken":":t","timestamp":1,"execution":{"jobId":"AFR_OTA-1","status":"IN_PROGRESS",
            "statusDetails":{"self_test":"ready","updatedBy":"0x0000000a"},"queuedAt":1,"lastUpdatedAt":1,
            "versionNumber":2,"executionNumber":1,"jobDocument":{"afr_ota":{"protocols":["MQTT"],
            "streamname":"AFR_OTA-d38ac95e","files":[{"filepath":"/device/updates","filesize":309929,
            "fileid":0,"certfile":"/certs/signer.pem","fileType":0,"sig-sha256-ecdsa":"MEQCIA=="}]}}}}"#,
        );
        let JobMessage::Job(job) = m else {
            panic!("{m:?}")
        };
        assert_eq!(job.job_id, "AFR_OTA-1");
        assert_eq!(job.protocols, [Protocol::Mqtt]);
        assert_eq!(job.stream.as_deref(), Some("AFR_OTA-d38ac95e"));
        assert_eq!(job.file.size, 309_929);
        assert_eq!(
            job.file.signature.as_deref(),
            Some(&[0x30, 0x44, 0x02, 0x20][..])
        );
        assert!(job.self_test);
        assert_eq!(job.updated_by, Some(AppVersion(10)));
    }

    #[test]
    fn unusable_documents_name_the_parse_error() {
        let doc = |file: &str| {
            format!(
                r#"{{"execution":{{"jobId":"j","jobDocument":{{"afr_ota":{{"protocols":["HTTP"],"files":[{file}]}}}}}}}}"#
            )
        };
        let code_of = |m| match m {
            JobMessage::Unusable { parse_error, .. } => parse_error,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code_of(parse_str(&doc(r#"{"filesize":0,"fileid":0}"#))),
            code::PARSE_ZERO_FILE_SIZE
        );
        assert_eq!(
            code_of(parse_str(&doc(r#"{"fileid":0}"#))),
            code::PARSE_NON_CONFORMING
        );
        assert_eq!(
            code_of(parse_str(&doc(r#"{"filesize":1,"fileid":"x"}"#))),
            code::PARSE_NON_CONFORMING
        );
        assert_eq!(
            code_of(parse_str(&doc(r#"{"filesize":4194305,"fileid":0}"#))),
            code::PARSE_BAD_MODEL_PARAMS
        );
        let ok = parse_str(&doc(
            r#"{"filesize":"0x10","fileid":"0","update_data_url":"http://h/k?a=b","auth_scheme":"aws.s3.presigned"}"#,
        ));
        let JobMessage::Job(job) = ok else { panic!() };
        assert_eq!(job.file.size, 16);
        assert_eq!(job.protocols, [Protocol::Http]);
        assert_eq!(job.file.update_data_url.as_deref(), Some("http://h/k?a=b"));
        let custom = r#"{"execution":{"jobId":"j","jobDocument":{"operation":"reboot"}}}"#;
        assert_eq!(parse_str(custom), JobMessage::Ignored);
    }
}
