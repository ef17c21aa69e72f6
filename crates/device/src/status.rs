//! What the agent publishes on the Jobs side, byte for byte as the AWS embedded agent
//! (`ota_mqtt.c`, PROTOCOL.md §2.7 and §3.5): the `$next/get` request with its mangled client
//! token, and the job status updates (`receive`, `self_test`, `accepted`, `rejected`, `aborted`,
//! and the two-code "failed with value" form).

use core::fmt;

/// Longest thing-name prefix the agent puts into its client token (`OTA_CLIENT_TOKEN_MAX_THINGNAME_LEN`).
const TOKEN_THING_NAME_MAX: usize = 53;

/// An `AppVersion32_t`: `(major << 24) | (minor << 16) | build`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppVersion(pub u32);

impl AppVersion {
    /// The version `major.minor.build`.
    pub const fn new(major: u8, minor: u8, build: u16) -> Self {
        Self(((major as u32) << 24) | ((minor as u32) << 16) | build as u32)
    }

    /// The major part.
    pub const fn major(self) -> u32 {
        self.0 >> 24
    }

    /// The minor part.
    pub const fn minor(self) -> u32 {
        (self.0 >> 16) & 0xff
    }

    /// The build part.
    pub const fn build(self) -> u32 {
        self.0 & 0xffff
    }

    /// The next build number (wrapping into the minor part like the 32-bit value does).
    pub const fn next_build(self) -> Self {
        Self(self.0.wrapping_add(1))
    }
}

/// `v<major>.<minor>.<build>`, as the agent prints versions in its SUCCEEDED message.
impl fmt::Display for AppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major(), self.minor(), self.build())
    }
}

/// Main error codes the agent reports (`OtaErr_t` and the PAL's `OtaPalMainStatus_t`).
pub mod code {
    /// `OtaErrJobParserError`: the job document could not be used (sub code says why).
    pub const JOB_PARSER_ERROR: u32 = 0x0c;
    /// `OtaErrInvalidDataProtocol`: no usable data protocol in the document.
    pub const INVALID_DATA_PROTOCOL: u32 = 0x0d;
    /// `OtaErrDowngradeNotAllowed`: the updater version is newer than the running one.
    pub const DOWNGRADE_NOT_ALLOWED: u32 = 0x0f;
    /// `OtaErrSameFirmwareVersion`: the new image runs the same version as the updater.
    pub const SAME_FIRMWARE_VERSION: u32 = 0x10;
    /// `OtaErrImageStateMismatch`: a self-test document while no image is pending commit.
    pub const IMAGE_STATE_MISMATCH: u32 = 0x11;
    /// `OtaPalUninitialized`: what the agent reports for an undecodable or invalid block.
    pub const PAL_UNINITIALIZED: u32 = 0xe0;
    /// `OtaPalSignatureCheckFailed`.
    pub const PAL_SIGNATURE_CHECK_FAILED: u32 = 0xe3;
    /// `OtaJobParseErrZeroFileSize`.
    pub const PARSE_ZERO_FILE_SIZE: u32 = 3;
    /// `OtaJobParseErrNonConformingJobDoc`: a required field is missing or mistyped.
    pub const PARSE_NON_CONFORMING: u32 = 4;
    /// `OtaJobParseErrBadModelInitParams`: e.g. more blocks than the bitmap can track.
    pub const PARSE_BAD_MODEL_PARAMS: u32 = 5;
}

/// The `$next/get` payload: `{"clientToken":"<counter without its last digit>:<thing>"}` — the
/// agent's off-by-one overwrites the counter's last digit with the colon, so the first ten
/// requests carry `":thing"`. The thing name is cut to 53 bytes.
pub fn next_get_payload(counter: u32, thing: &str) -> Vec<u8> {
    let digits = counter.to_string();
    let kept = &digits[..digits.len() - 1];
    let thing = truncate(thing, TOKEN_THING_NAME_MAX);
    format!("{{\"clientToken\":\"{kept}:{thing}\"}}").into_bytes()
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `{"status":"IN_PROGRESS","statusDetails":{"receive":"k/N"}}`, published (QoS 0) after the first
/// block and every `frequency` blocks; `None` for the other counts.
pub fn receive_progress(received: u32, total: u32, frequency: u32) -> Option<Vec<u8>> {
    let due = received == 1 || (frequency != 0 && received.is_multiple_of(frequency));
    due.then(|| {
        format!("{{\"status\":\"IN_PROGRESS\",\"statusDetails\":{{\"receive\":\"{received}/{total}\"}}}}")
            .into_bytes()
    })
}

/// The self-test phase a status update announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTestPhase {
    /// The image is downloaded and verified; the device will activate it.
    Ready,
    /// The device runs the new image and tests it.
    Active,
}

/// `{"status":"IN_PROGRESS","statusDetails":{"self_test":"ready|active","updatedBy":"0x%08x"}}` with
/// the running version.
pub fn self_test(phase: SelfTestPhase, running: AppVersion) -> Vec<u8> {
    let phase = match phase {
        SelfTestPhase::Ready => "ready",
        SelfTestPhase::Active => "active",
    };
    format!(
        "{{\"status\":\"IN_PROGRESS\",\"statusDetails\":{{\"self_test\":\"{phase}\",\"updatedBy\":\"0x{:08x}\"}}}}",
        running.0
    )
    .into_bytes()
}

/// `{"status":"SUCCEEDED","statusDetails":{"reason":"accepted  v…","updatedBy":"  v…"}}` (two spaces
/// before each `v`, exactly as the agent writes it).
pub fn succeeded(accepted: AppVersion, updated_by: AppVersion) -> Vec<u8> {
    format!(
        "{{\"status\":\"SUCCEEDED\",\"statusDetails\":{{\"reason\":\"accepted  {accepted}\",\"updatedBy\":\"  {updated_by}\"}}}}"
    )
    .into_bytes()
}

/// Why a job ended FAILED, as the agent words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// `"0x%08x: 0x%08x"`: a main and a sub code (bad data, bad signature, parse errors).
    WithValue {
        /// Main code (see [`code`]).
        main: u32,
        /// Sub code.
        sub: u32,
    },
    /// `"rejected: 0x%08x"`: the new image failed its version check.
    Rejected(u32),
    /// `"aborted: 0x%08x"`: the transfer was abandoned (request momentum exhausted).
    Aborted(u32),
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WithValue { main, sub } => write!(f, "0x{main:08x}: 0x{sub:08x}"),
            Self::Rejected(c) => write!(f, "rejected: 0x{c:08x}"),
            Self::Aborted(c) => write!(f, "aborted: 0x{c:08x}"),
        }
    }
}

/// `{"status":"FAILED","statusDetails":{"reason":"…"}}`.
pub fn failed(reason: FailReason) -> Vec<u8> {
    format!("{{\"status\":\"FAILED\",\"statusDetails\":{{\"reason\":\"{reason}\"}}}}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn client_token_quirk() {
        assert_eq!(
            text(next_get_payload(0, "thing-vec")),
            r#"{"clientToken":":thing-vec"}"#
        );
        assert_eq!(text(next_get_payload(9, "t")), r#"{"clientToken":":t"}"#);
        assert_eq!(text(next_get_payload(10, "t")), r#"{"clientToken":"1:t"}"#);
        assert_eq!(
            text(next_get_payload(123, "t")),
            r#"{"clientToken":"12:t"}"#
        );
        let long = "x".repeat(80);
        let p = text(next_get_payload(0, &long));
        assert_eq!(p.len(), r#"{"clientToken":":"}"#.len() + 53);
    }

    #[test]
    fn status_bytes_match_protocol_section_3_5() {
        assert_eq!(
            receive_progress(1, 76, 64).map(text).as_deref(),
            Some(r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"1/76"}}"#)
        );
        assert_eq!(receive_progress(2, 76, 64), None);
        assert!(receive_progress(64, 76, 64).is_some());
        assert_eq!(
            text(self_test(SelfTestPhase::Ready, AppVersion::new(0, 0, 10))),
            r#"{"status":"IN_PROGRESS","statusDetails":{"self_test":"ready","updatedBy":"0x0000000a"}}"#
        );
        assert_eq!(
            text(self_test(SelfTestPhase::Active, AppVersion::new(0, 0, 20))),
            r#"{"status":"IN_PROGRESS","statusDetails":{"self_test":"active","updatedBy":"0x00000014"}}"#
        );
        assert_eq!(
            text(succeeded(
                AppVersion::new(0, 0, 20),
                AppVersion::new(0, 0, 10)
            )),
            r#"{"status":"SUCCEEDED","statusDetails":{"reason":"accepted  v0.0.20","updatedBy":"  v0.0.10"}}"#
        );
        assert_eq!(
            text(failed(FailReason::Rejected(code::SAME_FIRMWARE_VERSION))),
            r#"{"status":"FAILED","statusDetails":{"reason":"rejected: 0x00000010"}}"#
        );
        assert_eq!(
            text(failed(FailReason::WithValue { main: 0x0c, sub: 7 })),
            r#"{"status":"FAILED","statusDetails":{"reason":"0x0000000c: 0x00000007"}}"#
        );
    }

    #[test]
    fn version_parts() {
        let v = AppVersion::new(1, 2, 300);
        assert_eq!((v.major(), v.minor(), v.build()), (1, 2, 300));
        assert_eq!(v.to_string(), "v1.2.300");
        assert_eq!(AppVersion::new(1, 0, 0).0, 0x0100_0000);
    }
}
