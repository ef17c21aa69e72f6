//! SigV4 verification for the rest-json services (iot, signer, acm, iot-jobs-data).
//!
//! S3 requests are verified by s3s itself; its SigV4 code is private and accepts only the
//! `s3`/`sts` scopes, so the other services are checked here. The signature is not computed by
//! hand: the request is rebuilt with exactly the headers the client listed in `SignedHeaders`, at
//! the client's `X-Amz-Date`, signed again with the `aws-sigv4` crate (double path encoding, as
//! botocore does for non-S3 services) and compared in constant time. The payload hash is the
//! SHA-256 of the body actually received, so a changed body fails the comparison.
//!
//! Sans-IO: [`verify`] takes the request head, the body bytes and `now`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;
use subtle::ConstantTimeEq;

/// How far the client's `X-Amz-Date` may be from the server clock (AWS allows 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// Access key id from the credential scope.
    pub access_key_id: String,
    /// `yyyymmdd` from the credential scope.
    pub date: String,
    /// Region from the credential scope.
    pub region: String,
    /// Service (signing name) from the credential scope, e.g. `iot`.
    pub service: String,
    /// Lower-case header names the client signed, in its order.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Why a request was refused. Each maps to one AWS error code in `error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    Missing,
    /// The header or `X-Amz-Date` cannot be parsed.
    #[error("{0}")]
    Malformed(String),
    /// The access key id is not the configured one.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// The credential scope names another region than the server's.
    #[error("Credential should be scoped to a valid region, not '{0}'.")]
    WrongRegion(String),
    /// `X-Amz-Date` is too far from the server clock.
    #[error("Signature expired: {0} is not within 15 minutes of the server time.")]
    Expired(String),
    /// The recomputed signature differs.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method."
    )]
    Mismatch,
}

/// The credential pair requests must be signed with.
#[derive(Clone)]
pub struct SigningKey {
    /// Access key id clients must present.
    pub access_key_id: String,
    /// The matching secret.
    pub secret_access_key: String,
    /// The region a credential scope must name (the server's `--region`).
    pub region: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Parses an `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` value.
pub fn parse_authorization(value: &str) -> Result<AuthHeader, SigError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| {
        SigError::Malformed("Authorization header is not AWS4-HMAC-SHA256".into())
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| {
        SigError::Malformed(format!("Authorization header requires '{what}' parameter"))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let scope = parse_credential_scope(credential)?;
    Ok(AuthHeader {
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.to_owned(),
        ..scope
    })
}

/// Parses `AKID/yyyymmdd/region/service/aws4_request` (header `Credential=` or query `X-Amz-Credential`).
fn parse_credential_scope(credential: &str) -> Result<AuthHeader, SigError> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, "aws4_request"] if !akid.is_empty() && date.len() == 8 => {
            Ok(AuthHeader {
                access_key_id: (*akid).to_owned(),
                date: (*date).to_owned(),
                region: (*region).to_owned(),
                service: (*service).to_owned(),
                signed_headers: Vec::new(),
                signature: String::new(),
            })
        }
        _ => Err(SigError::Malformed(format!(
            "Credential should be scoped correctly: '{credential}'"
        ))),
    }
}

/// The signing service named by a request: the `Authorization` credential scope, else the
/// presigned `X-Amz-Credential` query parameter. `None` for unsigned or SigV2 requests.
pub fn scope_service(parts: &Parts) -> Option<String> {
    request_scope(parts).map(|(scope, _)| scope.service)
}

/// The SigV4 credential scope of a request and whether it is presigned (query) rather than in
/// the `Authorization` header; a presigned request's `signed_headers` and `signature` stay
/// empty. `None` for unsigned or SigV2 requests.
pub fn request_scope(parts: &Parts) -> Option<(AuthHeader, bool)> {
    if let Some(auth) = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return parse_authorization(auth).ok().map(|a| (a, false));
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("X-Amz-Credential=")?;
        let decoded = percent_decode(value)?;
        parse_credential_scope(&decoded).ok().map(|a| (a, true))
    })
}

/// Decodes `%XX` escapes (and `+` is left alone, as SigV4 query values never use it for space).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses `yyyymmddThhmmssZ` into a time.
pub fn parse_amz_date(s: &str) -> Result<SystemTime, SigError> {
    let bad = || SigError::Malformed(format!("Invalid X-Amz-Date '{s}'"));
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(bad());
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<u32>().ok()).ok_or_else(bad);
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, min, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(bad());
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec);
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Verifies the header-form SigV4 signature of a non-S3 request; returns the parsed header.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    key: &SigningKey,
    now: SystemTime,
) -> Result<AuthHeader, SigError> {
    let auth_value = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SigError::Missing)?;
    let auth_value = auth_value
        .to_str()
        .map_err(|_| SigError::Malformed("Authorization header is not ASCII".into()))?;
    let auth = parse_authorization(auth_value)?;
    if auth.access_key_id != key.access_key_id {
        return Err(SigError::UnknownAccessKey);
    }
    if auth.region != key.region {
        return Err(SigError::WrongRegion(auth.region));
    }
    let amz_date = header_str(parts, "x-amz-date").ok_or_else(|| {
        SigError::Malformed(
            "Authorization header requires existence of the X-Amz-Date header".into(),
        )
    })?;
    let signed_at = parse_amz_date(amz_date)?;
    if !amz_date.starts_with(&auth.date) {
        return Err(SigError::Malformed(
            "Credential date does not match X-Amz-Date".into(),
        ));
    }
    let skew = now
        .duration_since(signed_at)
        .or_else(|e| Ok::<_, SigError>(e.duration()))?;
    if skew > MAX_CLOCK_SKEW {
        return Err(SigError::Expired(amz_date.to_owned()));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Malformed("'Host' must be a signed header".into()));
    }
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = header_str(parts, name).ok_or_else(|| {
            SigError::Malformed(format!(
                "Signed header '{name}' is missing from the request"
            ))
        })?;
        headers.push((name.as_str(), value));
    }
    let host = header_str(parts, "host").unwrap_or_default();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("http://{host}{path_and_query}");
    let expected = compute_signature(
        parts.method.as_str(),
        &uri,
        &headers,
        body,
        &auth,
        key,
        signed_at,
    )?;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(auth)
    } else {
        Err(SigError::Mismatch)
    }
}

fn header_str<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Signs the rebuilt request with `aws-sigv4` and returns the hex signature.
fn compute_signature(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    auth: &AuthHeader,
    key: &SigningKey,
    time: SystemTime,
) -> Result<String, SigError> {
    let identity: Identity = Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "otastream",
    )
    .into();
    let mut settings = SigningSettings::default();
    // Sign exactly the client's headers: nothing is excluded, none is added beyond host/x-amz-date.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| SigError::Malformed(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        method,
        uri,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| SigError::Malformed(format!("cannot canonicalise request: {e}")))?;
    let output = sign(request, &params)
        .map_err(|e| SigError::Malformed(format!("cannot canonicalise request: {e}")))?;
    Ok(output.signature().to_owned())
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
