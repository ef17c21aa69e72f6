//! SigV4 presigned S3 GET URLs (query form), signed with `aws-sigv4` for the configured key.
//! The jobs engine calls [`S3Presigner`] when a device fetches a job document whose
//! `update_data_url` (or any other string) is `${aws:iot:s3-presigned-url:<url>}`; s3s verifies
//! the result (expiry included) when the device downloads.
//!
//! `<url>` may name the object the way AWS does — `https://s3.amazonaws.com/BUCKET/KEY`,
//! `https://BUCKET.s3.amazonaws.com/KEY`, `https://s3.REGION.amazonaws.com/BUCKET/KEY`,
//! `https://BUCKET.s3.REGION.amazonaws.com/KEY` — or path style on this server's own host; either
//! way the presigned URL points at the local bucket under the public base URL (`--public-url`),
//! signed for that URL's host, so job documents written for AWS work unchanged and a document
//! stored before a restart on another port is still signed for the address in use.

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

/// Presigns S3 object URLs (see the module doc) as `<public base>/bucket/key?...` for service `s3`.
pub struct S3Presigner {
    identity: Identity,
    region: String,
    /// `scheme://host[:port]` devices download from (default port left out).
    public_base: String,
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
            public_base: config.public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The presigned form of `url` (an S3 object URL, see the module doc) on the public base URL,
    /// valid for `expires` from `now`; `None` when `url` names no S3 object of this server.
    pub fn presign_at(&self, url: &str, expires: Duration, now: SystemTime) -> Option<String> {
        let public: http::Uri = self.public_base.parse().ok()?;
        let location = S3Location::parse(url, public.host()?)?;
        let url = &location.url_on(&self.public_base);
        let host = public.authority()?.as_str().to_owned();
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

/// An S3 object named by a URL: bucket, key (as percent-encoded in the URL) and query.
#[derive(Debug, PartialEq, Eq)]
struct S3Location<'a> {
    bucket: &'a str,
    key: &'a str,
    query: Option<&'a str>,
}

impl<'a> S3Location<'a> {
    /// Reads AWS S3 URLs (path style on `s3[.-REGION].amazonaws.com`, virtual-hosted style on
    /// `BUCKET.s3[.-REGION].amazonaws.com`) and path-style URLs on `own_host` or loopback.
    fn parse(url: &'a str, own_host: &str) -> Option<Self> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        let (authority, path_and_query) = rest.split_once('/').unwrap_or((rest, ""));
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q).filter(|q| !q.is_empty())),
            None => (path_and_query, None),
        };
        let uri: http::Uri = format!("http://{authority}/").parse().ok()?;
        let host = uri.host()?.to_ascii_lowercase();
        let path_style = |path: &'a str| {
            let (bucket, key) = path.split_once('/')?;
            (!bucket.is_empty() && !key.is_empty()).then_some(Self { bucket, key, query })
        };
        if let Some(name) = host.strip_suffix(".amazonaws.com") {
            let labels: Vec<&str> = name.split('.').collect();
            let s3 = labels
                .iter()
                .rposition(|l| *l == "s3" || l.starts_with("s3-"))?;
            if s3 == 0 {
                return path_style(path);
            }
            // Virtual-hosted style: the bucket is the authority's first labels, as written.
            let bucket_len = labels[..s3].iter().map(|l| l.len() + 1).sum::<usize>() - 1;
            let bucket = authority.get(..bucket_len)?;
            return (!path.is_empty()).then_some(Self {
                bucket,
                key: path,
                query,
            });
        }
        let own = host == own_host.to_ascii_lowercase()
            || matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]");
        if own { path_style(path) } else { None }
    }

    /// `<base>/bucket/key[?query]`.
    fn url_on(&self, base: &str) -> String {
        let mut url = format!("{base}/{}/{}", self.bucket, self.key);
        if let Some(q) = self.query {
            url.push('?');
            url.push_str(q);
        }
        url
    }
}

/// Checks and normalises a `--public-url`: `http(s)://HOST[:PORT]` without path or query, the
/// scheme's default port left out (devices such as the AWS C agent send `Host` without it).
pub fn public_base_url(url: &str) -> Result<String, String> {
    let bad = |why: &str| format!("--public-url {url:?}: {why} (expected https://HOST[:PORT])");
    let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => return Err(bad("the scheme must be https or http")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    if uri
        .path_and_query()
        .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
    {
        return Err(bad("no path or query allowed"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("no user info allowed"));
    }
    let scheme = uri.scheme_str().unwrap_or_default();
    let host = host.to_ascii_lowercase();
    Ok(match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
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

    #[test]
    fn aws_form_urls_name_the_local_bucket() {
        let own = "ota.example";
        let loc = |url| S3Location::parse(url, own);
        let obj = |bucket, key, query| Some(S3Location { bucket, key, query });
        assert_eq!(
            loc("https://s3.amazonaws.com/fw/app.bin"),
            obj("fw", "app.bin", None)
        );
        assert_eq!(
            loc("https://fw.s3.amazonaws.com/dir/app.bin?versionId=v1"),
            obj("fw", "dir/app.bin", Some("versionId=v1"))
        );
        assert_eq!(
            loc("https://s3.eu-west-1.amazonaws.com/fw/a%20b.bin"),
            obj("fw", "a%20b.bin", None)
        );
        assert_eq!(
            loc("https://my.fw.s3.us-west-2.amazonaws.com/app.bin"),
            obj("my.fw", "app.bin", None)
        );
        assert_eq!(
            loc("https://s3-us-west-2.amazonaws.com/fw/app.bin"),
            obj("fw", "app.bin", None)
        );
        assert_eq!(
            loc("http://127.0.0.1:8080/fw/app.bin"),
            obj("fw", "app.bin", None)
        );
        assert_eq!(
            loc("https://OTA.example/fw/app.bin"),
            obj("fw", "app.bin", None)
        );
        for not_an_object in [
            "https://example.com/fw/app.bin",
            "https://dynamodb.us-east-1.amazonaws.com/fw/app.bin",
            "https://s3.amazonaws.com/fw",
            "https://fw.s3.amazonaws.com/",
            "ftp://s3.amazonaws.com/fw/app.bin",
        ] {
            assert_eq!(loc(not_an_object), None, "{not_an_object}");
        }
    }

    #[test]
    fn presigned_urls_point_at_the_public_url_without_its_default_port() {
        let config = ApiConfig {
            public_base_url: public_base_url("https://OTA.example:443/").expect("valid"),
            ..ApiConfig::default()
        };
        assert_eq!(config.public_base_url, "https://ota.example");
        let presigner = S3Presigner::new(&config);
        let now = UNIX_EPOCH + Duration::from_secs(1_795_953_600);
        let url = presigner
            .presign_at(
                "https://fw.s3.amazonaws.com/app.bin",
                Duration::from_secs(60),
                now,
            )
            .expect("presigned");
        assert!(
            url.starts_with("https://ota.example/fw/app.bin?X-Amz-"),
            "{url}"
        );
        let path_style = presigner
            .presign_at(
                "https://s3.amazonaws.com/fw/app.bin",
                Duration::from_secs(60),
                now,
            )
            .expect("presigned");
        assert_eq!(url, path_style, "both forms name the same object");
    }

    #[test]
    fn public_urls_are_checked_and_normalised() {
        assert_eq!(
            public_base_url("https://localhost:8443").as_deref(),
            Ok("https://localhost:8443")
        );
        assert_eq!(
            public_base_url("http://10.0.0.5:80").as_deref(),
            Ok("http://10.0.0.5")
        );
        for bad in [
            "localhost:8443",
            "ftp://h",
            "https://h/path",
            "https://h/?q=1",
            "https://u@h",
        ] {
            assert!(public_base_url(bad).is_err(), "{bad}");
        }
    }
}
