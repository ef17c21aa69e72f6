//! Device settings. The defaults are the AWS embedded agent's library defaults
//! (`ota_config_defaults.h`, PROTOCOL.md §4); [`DeviceConfig::fast`] is the multi-block mode.

use otastream_chunker::{BlockSize, Format};

use crate::jobdoc::Protocol;
use crate::status::AppVersion;

/// How the simulated device behaves.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// Thing name: MQTT client id and the `<T>` of every topic.
    pub thing_name: String,
    /// Block size `l` (`1 << otaconfigLOG2_FILE_BLOCK_SIZE`; 4 KiB).
    pub block_size: BlockSize,
    /// `n`: blocks per request, and how many new blocks the agent waits for before it asks again
    /// (`otaconfigMAX_NUM_BLOCKS_REQUEST`; 1).
    pub blocks_per_request: u32,
    /// Streams encoding (the AWS agent speaks CBOR only).
    pub format: Format,
    /// The firmware version the device runs.
    pub firmware_version: AppVersion,
    /// The version a downloaded firmware image runs as once activated; `None` = the running
    /// version's next build. Set it equal to the running version to model a bad image.
    pub new_image_version: Option<AppVersion>,
    /// PEM of the code-signing certificate; `None` skips the signature check.
    pub code_signing_cert_pem: Option<String>,
    /// The file field carrying the signature (`OTA_JsonFileSignatureKey`).
    pub signature_key: String,
    /// Idle time before a request is sent again (`otaconfigFILE_REQUEST_WAIT_MS`; 10 s).
    pub request_wait_ms: u64,
    /// Requests without a new block before the transfer is aborted
    /// (`otaconfigMAX_NUM_REQUEST_MOMENTUM`; 32).
    pub max_request_momentum: u32,
    /// A `receive` progress update after the first block and every this many blocks
    /// (`otaconfigOTA_UPDATE_STATUS_FREQUENCY`; 64).
    pub status_frequency: u32,
    /// Bitmap size limit in bytes (`otaconfigMAX_BLOCK_BITMAP_SIZE`; 128 = 1 024 blocks); larger
    /// files fail at job parse.
    pub max_bitmap_bytes: u32,
    /// How long a freshly activated image waits for its self-test job document
    /// (`otaconfigSELF_TEST_RESPONSE_WAIT_MS`; 16 s) before rolling back.
    pub self_test_wait_ms: u64,
    /// The protocol used when a job offers both.
    pub preferred_protocol: Protocol,
    /// After a reboot, continue the same job from the blocks already received instead of
    /// starting the file again (the AWS agent starts again).
    pub resume_from_bitmap: bool,
    /// Keep a full copy of each downloaded image (tests compare it; fleets leave it off).
    pub keep_image: bool,
    /// Ask the Jobs API for work when connected (off for plain stream downloads).
    pub use_jobs: bool,
    /// How HTTP data-path URLs become connections (TLS root CA, the AWS agent's fixed port).
    pub http: HttpTarget,
    /// Injected faults (load tests).
    pub faults: Faults,
}

/// How the HTTP data path reaches a presigned URL (used by the driver's HTTP client).
#[derive(Clone, Debug, Default)]
pub struct HttpTarget {
    /// PEM root CA(s) an `https://` server certificate must chain to (the AWS agent verifies the
    /// server against its root CA, no client certificate); `None` refuses `https://` URLs.
    pub ca_pem: Option<String>,
    /// The AWS C agent's compile-time HTTPS port (`443` by default there). When set, everything
    /// between `://` and the first `/` is taken as the host name (a `host:port` authority then
    /// fails to resolve, as on the agent), this port is connected to and `Host` carries no port.
    /// `None`: the URL's own port (or the scheme's default).
    pub port: Option<u16>,
}

/// Faults a load test injects into one device.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Percentage (0–100) of incoming data messages dropped before the agent sees them.
    pub drop_data_percent: f64,
    /// Seed of the drop decisions (deterministic per device).
    pub seed: u64,
    /// Reboot once, right after this many blocks of a download have been received.
    pub reboot_at_block: Option<u32>,
}

impl DeviceConfig {
    /// The AWS agent's defaults for `thing_name`: 4 KiB blocks, one block per request, 10 s
    /// retry, momentum 32, progress every 64 blocks, CBOR, version 0.0.1.
    pub fn new(thing_name: impl Into<String>) -> Self {
        Self {
            thing_name: thing_name.into(),
            block_size: BlockSize::new(4096).expect("invariant: 4096 is a legal block size"),
            blocks_per_request: 1,
            format: Format::Cbor,
            firmware_version: AppVersion::new(0, 0, 1),
            new_image_version: None,
            code_signing_cert_pem: None,
            signature_key: "sig-sha256-ecdsa".to_owned(),
            request_wait_ms: 10_000,
            max_request_momentum: 32,
            status_frequency: 64,
            max_bitmap_bytes: 128,
            self_test_wait_ms: 16_000,
            preferred_protocol: Protocol::Mqtt,
            resume_from_bitmap: false,
            keep_image: false,
            use_jobs: true,
            http: HttpTarget::default(),
            faults: Faults::default(),
        }
    }

    /// Fast mode: `n` blocks per request (at most the 128 KiB-per-request cap) and a bitmap big
    /// enough for 24 MiB files.
    pub fn fast(mut self, n: u32) -> Self {
        self.blocks_per_request = n.clamp(1, self.block_size.blocks_per_request_cap());
        self.max_bitmap_bytes = 12_287;
        self
    }

    /// Largest number of blocks a file may have.
    pub fn max_blocks(&self) -> u64 {
        u64::from(self.max_bitmap_bytes) * 8
    }
}
