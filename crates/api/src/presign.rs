//! SigV4 presigned S3 GET URLs (query form), signed with `aws-sigv4` for the configured key.
//! The jobs engine calls [`S3Presigner`] when a device fetches a job document whose
//! `update_data_url` is `${aws:iot:s3-presigned-url:<url>}`; s3s verifies the result (expiry
//! included) when the device downloads.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use otastream_jobs::engine::Presigner;

use crate::ApiConfig;

/// Presigns plain `http(s)://host/bucket/key?versionId=...` URLs for service `s3`.
pub struct S3Presigner {
    identity: Identity,
    region: String,
}

impl S3Presigner {
    /// A presigner for the configured credentials and region.
    pub fn new(config: &ApiConfig) -> Self {
        let identity = Credentials::new(
            &config.access_key_id,
            &config.secret_access_key,
            None,
            None,
            "otastream",
        )
        .into();
        Self {
            identity,
            region: config.region.clone(),
        }
    }

    /// The presigned form of `url`, valid for `expires` from `now`.
    pub fn presign_at(&self, url: &str, expires: Duration, now: SystemTime) -> Option<String> {
        let uri: http::Uri = url.parse().ok()?;
        let host = uri.authority()?.as_str().to_owned();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .ok()?
            .into();
        let headers = [("host", host.as_str())];
        let request = SignableRequest::new(
            "GET",
            url,
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .ok()?;
        let (instructions, _) = sign(request, &params).ok()?.into_parts();
        let mut request = http::Request::get(url).body(()).ok()?;
        instructions.apply_to_request_http1x(&mut request);
        Some(request.uri().to_string())
    }
}

impl Presigner for S3Presigner {
    fn presign(&self, url: &str, expires_in_sec: u64, now: u64) -> Option<String> {
        self.presign_at(
            url,
            Duration::from_secs(expires_in_sec),
            UNIX_EPOCH + Duration::from_millis(now),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_url_carries_the_v4_query_parameters() {
        let presigner = S3Presigner::new(&ApiConfig::default());
        let now = UNIX_EPOCH + Duration::from_secs(1_795_953_600);
        let url = presigner
            .presign_at(
                "http://127.0.0.1:8080/fw/app.bin?versionId=abc",
                Duration::from_secs(1800),
                now,
            )
            .expect("presigned");
        assert!(
            url.starts_with("http://127.0.0.1:8080/fw/app.bin?"),
            "{url}"
        );
        for part in [
            "versionId=abc",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Expires=1800",
            "X-Amz-Date=20261129T120000Z",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
        assert!(url.contains("%2Fus-east-1%2Fs3%2Faws4_request"), "{url}");
        assert!(
            presigner
                .presign_at("not a url", Duration::from_secs(1), now)
                .is_none()
        );
    }
}
