//! The `afr_ota` job document (PROTOCOL §3) that the AWS embedded OTA agent parses.
//!
//! [`OtaDocument::to_json`] writes compact JSON with the captured key order —
//! `protocols, streamname, files` and per file `filepath, filesize, fileid, certfile,
//! [fileType], [attr], [update_data_url, auth_scheme], sig-<hash>-<alg>` — never escapes `/`,
//! and refuses strings that would need escaping at all (the agent copies raw string bytes
//! without unescaping, so an escape would corrupt the value on the device).

use serde::Serialize;
use serde::ser::SerializeMap;
use thiserror::Error;

/// `auth_scheme` of a presigned S3 URL.
pub const AUTH_SCHEME_PRESIGNED: &str = "aws.s3.presigned";
/// Signature key of the default platform (SHA-256 + ECDSA P-256).
pub const SIG_SHA256_ECDSA: &str = "sig-sha256-ecdsa";
/// Most files the OTA agent's job parser reads.
pub const MAX_FILES: usize = 10;

/// A data protocol offered in `protocols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Protocol {
    /// MQTT streams (needs `streamname`).
    #[serde(rename = "MQTT")]
    Mqtt,
    /// HTTP range GETs (needs `update_data_url` per file).
    #[serde(rename = "HTTP")]
    Http,
}

/// One file of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaFile {
    /// `filepath`: where the device stores it (OTAUpdateFile `fileName`).
    pub file_path: String,
    /// `filesize` in bytes (> 0).
    pub file_size: u64,
    /// `fileid`: the stream file id.
    pub file_id: u32,
    /// `certfile`: the code-signing certificate path on the device.
    pub cert_file: String,
    /// `fileType` (0 = firmware), when given.
    pub file_type: Option<u32>,
    /// `attr`, only ever numeric (an object would fail the agent's `strtoul`).
    pub attr: Option<u32>,
    /// `update_data_url` for HTTP (usually a `${aws:iot:s3-presigned-url:…}` placeholder);
    /// `auth_scheme` [`AUTH_SCHEME_PRESIGNED`] is written with it.
    pub update_data_url: Option<String>,
    /// `sig-<hash>-<alg>`, e.g. [`SIG_SHA256_ECDSA`].
    pub signature_key: String,
    /// Base64 of the DER signature.
    pub signature: String,
}

/// The whole `afr_ota` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtaDocument {
    /// Offered protocols, in order (1 or 2, no repeats).
    pub protocols: Vec<Protocol>,
    /// `streamname` (required when MQTT is offered).
    pub stream_name: Option<String>,
    /// 1..=[`MAX_FILES`] files; the OTA agent uses the first.
    pub files: Vec<OtaFile>,
}

/// Why a document cannot be built.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentError {
    /// A field is missing or out of range.
    #[error("afr_ota document: {0}")]
    Invalid(String),
    /// A string would need JSON escaping, which the device would not undo.
    #[error("afr_ota document: {field} contains a character that would need escaping")]
    NeedsEscaping {
        /// Which field.
        field: &'static str,
    },
}

fn plain(field: &'static str, value: &str) -> Result<(), DocumentError> {
    if value.contains(['"', '\\']) || value.contains(char::is_control) {
        return Err(DocumentError::NeedsEscaping { field });
    }
    Ok(())
}

fn is_signature_key(key: &str) -> bool {
    let mut parts = key.split('-');
    parts.next() == Some("sig")
        && parts
            .by_ref()
            .take(2)
            .filter(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            .count()
            == 2
        && parts.next().is_none()
}

impl OtaDocument {
    /// Checks the document against what the agent can parse.
    pub fn validate(&self) -> Result<(), DocumentError> {
        let invalid = |m: &str| Err(DocumentError::Invalid(m.to_owned()));
        let has = |p| self.protocols.contains(&p);
        if self.protocols.is_empty() || self.protocols.len() > 2 {
            return invalid("protocols must list MQTT and/or HTTP");
        }
        if self.protocols.len() == 2 && self.protocols[0] == self.protocols[1] {
            return invalid("protocols must not repeat");
        }
        if self.files.is_empty() || self.files.len() > MAX_FILES {
            return invalid("files must hold 1-10 files");
        }
        match &self.stream_name {
            Some(name) => plain("streamname", name)?,
            None if has(Protocol::Mqtt) => return invalid("MQTT needs a stream name"),
            None => {}
        }
        for file in &self.files {
            if file.file_size == 0 {
                return invalid("filesize must be > 0");
            }
            if !is_signature_key(&file.signature_key) {
                return invalid("signature key must look like sig-<hash>-<algorithm>");
            }
            if file.update_data_url.is_none() && has(Protocol::Http) {
                return invalid("HTTP needs update_data_url for every file");
            }
            plain("filepath", &file.file_path)?;
            plain("certfile", &file.cert_file)?;
            plain("signature", &file.signature)?;
            if let Some(url) = &file.update_data_url {
                plain("update_data_url", url)?;
            }
        }
        Ok(())
    }

    /// The document as compact JSON text, ready to be a job's `document`.
    pub fn to_json(&self) -> Result<String, DocumentError> {
        self.validate()?;
        serde_json::to_string(&Wrapper {
            afr_ota: Body(self),
        })
        .map_err(|e| DocumentError::Invalid(e.to_string()))
    }
}

#[derive(Serialize)]
struct Wrapper<'a> {
    afr_ota: Body<'a>,
}

struct Body<'a>(&'a OtaDocument);

impl Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("protocols", &doc.protocols)?;
        if let Some(name) = &doc.stream_name {
            map.serialize_entry("streamname", name)?;
        }
        map.serialize_entry("files", &doc.files)?;
        map.end()
    }
}

impl Serialize for OtaFile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("filepath", &self.file_path)?;
        map.serialize_entry("filesize", &self.file_size)?;
        map.serialize_entry("fileid", &self.file_id)?;
        map.serialize_entry("certfile", &self.cert_file)?;
        if let Some(file_type) = self.file_type {
            map.serialize_entry("fileType", &file_type)?;
        }
        if let Some(attr) = self.attr {
            map.serialize_entry("attr", &attr)?;
        }
        if let Some(url) = &self.update_data_url {
            map.serialize_entry("update_data_url", url)?;
            map.serialize_entry("auth_scheme", AUTH_SCHEME_PRESIGNED)?;
        }
        map.serialize_entry(&self.signature_key, &self.signature)?;
        map.end()
    }
}
