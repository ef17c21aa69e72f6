//! `otastream`: the command line. Parses arguments and calls into [`otastream::server`]; no logic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use otastream::server::{self, ServerConfig};
use otastream_api::ApiConfig;
use otastream_pki::DevPki;

/// Self-hosted, AWS-IoT-compatible firmware OTA service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Control-plane identity: the credentials every request must be signed with, and the region
/// and account that appear in ARNs.
#[derive(clap::Args)]
struct ApiArgs {
    /// Access key id clients sign with (default: the documented dev key, printed at start-up).
    #[arg(long, env = "OTASTREAM_ACCESS_KEY_ID")]
    access_key_id: Option<String>,
    /// Secret access key clients sign with (default: the documented dev secret).
    #[arg(long, env = "OTASTREAM_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// Region in ARNs and signatures.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id in ARNs.
    #[arg(long, default_value = "123456789012")]
    account_id: String,
}

impl ApiArgs {
    /// The control-plane configuration; says on stderr when the dev credentials are in use.
    fn into_config(self) -> anyhow::Result<ApiConfig> {
        let (access_key_id, secret_access_key) = match (self.access_key_id, self.secret_access_key)
        {
            (Some(id), Some(secret)) => (id, secret),
            (None, None) => {
                eprintln!(
                    "otastream: using the dev credentials AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}",
                    otastream_api::DEV_ACCESS_KEY_ID,
                    otastream_api::DEV_SECRET_ACCESS_KEY
                );
                (
                    otastream_api::DEV_ACCESS_KEY_ID.to_owned(),
                    otastream_api::DEV_SECRET_ACCESS_KEY.to_owned(),
                )
            }
            _ => anyhow::bail!("give both --access-key-id and --secret-access-key, or neither"),
        };
        Ok(ApiConfig {
            region: self.region,
            account_id: self.account_id,
            access_key_id,
            secret_access_key,
            public_base_url: String::new(),
            public_host: String::new(),
        })
    }
}

/// The production storage backend: PostgreSQL for metadata, an S3 bucket for object bytes.
/// Without these flags the data directory holds everything (SQLite + files).
#[derive(clap::Args)]
struct StorageArgs {
    /// PostgreSQL for metadata: postgres://USER:PASSWORD@HOST:PORT/DATABASE (with --object-store).
    #[arg(
        long,
        env = "OTASTREAM_DATABASE_URL",
        hide_env_values = true,
        requires = "object_store"
    )]
    database_url: Option<String>,
    /// Bucket for object bytes, s3://BUCKET (with --database-url); credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, region from AWS_REGION.
    #[arg(long, requires = "database_url")]
    object_store: Option<String>,
    /// Endpoint of an S3-compatible service, e.g. http://127.0.0.1:8333 (default: AWS S3).
    #[arg(long, requires = "object_store")]
    s3_endpoint: Option<String>,
}

impl StorageArgs {
    /// The backend; the PostgreSQL one keeps its local image cache under `data_dir/pg-cache`.
    fn into_storage(self, data_dir: &std::path::Path) -> anyhow::Result<server::Storage> {
        let (Some(database_url), Some(object_store)) = (self.database_url, self.object_store)
        else {
            return Ok(server::Storage::Embedded);
        };
        let config = otastream_store_pg::PgConfig::from_flags(
            &database_url,
            &object_store,
            self.s3_endpoint.as_deref(),
            data_dir.join("pg-cache"),
        )
        .map_err(anyhow::Error::msg)?;
        Ok(server::Storage::Postgres(config))
    }
}

// Parsed once per process: the size of `Serve` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the control plane and the device gateway until Ctrl-C or SIGTERM.
    Serve {
        /// Data directory (metadata, objects, dev PKI).
        #[arg(long, default_value = "./otastream-data")]
        data_dir: PathBuf,
        /// HTTP control plane and /metrics (port 0: pick one).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// The same control plane and S3 over TLS with the dev CA's server certificate
        /// (`aws --endpoint-url https://... --ca-bundle <data-dir>/pki/ca.pem`; port 0: pick one).
        #[arg(long, default_value = "127.0.0.1:8443")]
        https: SocketAddr,
        /// Base URL devices reach S3 at, put into presigned URLs (`https://HOST[:PORT]`; the
        /// default is the bound HTTP address). See the README for a public port 443 without root.
        #[arg(long)]
        public_url: Option<String>,
        /// Host name `aws iot describe-endpoint` answers for iot:Data-ATS, iot:Data, iot:Jobs and
        /// iot:CredentialProvider (default: the bound MQTTS address).
        #[arg(long)]
        public_host: Option<String>,
        /// Plain MQTT, an unauthenticated development port: the client id is the thing name
        /// (port 0: pick one). Off loopback only with --unauthenticated-mqtt-on-network.
        #[arg(long, default_value = "127.0.0.1:1883")]
        mqtt: SocketAddr,
        /// Allow --mqtt on a non-loopback address (anyone who reaches it may act as any thing).
        #[arg(long)]
        unauthenticated_mqtt_on_network: bool,
        /// MQTT over TLS with client certificates; the CN is the thing name (port 0: pick one).
        #[arg(long, default_value = "127.0.0.1:8883")]
        mqtts: SocketAddr,
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Write a device certificate and key signed by the data directory's dev CA, and register it
    /// ACTIVE, attached to the thing (created if missing) and to the built-in dev policy.
    DevCert {
        /// Data directory whose CA signs the certificate.
        #[arg(long, default_value = "./otastream-data")]
        data_dir: PathBuf,
        /// Thing name (the certificate CN).
        #[arg(long)]
        thing: String,
        /// Directory for NAME.cert.pem and NAME.key.pem.
        #[arg(long)]
        out: PathBuf,
        /// Region in the certificate's ARN (as `serve --region`).
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Account id in the certificate's ARN (as `serve --account-id`).
        #[arg(long, default_value = "123456789012")]
        account_id: String,
    },
}

/// How long the runtime waits, once the server has stopped, for blocking work still running (a
/// store write in flight) before the process exits anyway. Acknowledged writes are already
/// durable; a stuck blocking task must not keep a stopped server alive.
const BLOCKING_GRACE: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,otastream=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(run(command));
    runtime.shutdown_timeout(BLOCKING_GRACE);
    result
}

/// The plain MQTT port authenticates nobody: off loopback it needs the explicit flag, and then
/// says so at start-up.
fn check_plain_mqtt(addr: SocketAddr, allowed: bool) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if !allowed {
        anyhow::bail!(
            "--mqtt {addr} is not a loopback address: the plain MQTT port is unauthenticated \
             (any client may act as any thing); use the mTLS port (--mqtts), or pass \
             --unauthenticated-mqtt-on-network to serve it anyway"
        );
    }
    eprintln!(
        "otastream: WARNING: unauthenticated plain MQTT on {addr}: any client that reaches it may act as any thing"
    );
    Ok(())
}

/// Runs one command to completion.
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            data_dir,
            http,
            https,
            public_url,
            public_host,
            mqtt,
            unauthenticated_mqtt_on_network,
            mqtts,
            api,
            storage,
        } => {
            check_plain_mqtt(mqtt, unauthenticated_mqtt_on_network)?;
            let mut api = api.into_config()?;
            if let Some(url) = public_url {
                api.public_base_url =
                    otastream_api::public_base_url(&url).map_err(anyhow::Error::msg)?;
            }
            if let Some(host) = public_host {
                api.public_host = host;
            }
            let cfg = ServerConfig {
                http,
                https,
                mqtt,
                mqtts,
                api,
                storage: storage.into_storage(&data_dir)?,
                ..ServerConfig::new(data_dir)
            };
            let running = server::start(cfg).await?;
            println!("{}", running.ready_line());
            shutdown_signal().await?;
            running.shutdown().await;
            Ok(())
        }
        Command::DevCert {
            data_dir,
            thing,
            out,
            region,
            account_id,
        } => {
            let pki = DevPki::load_or_create(&data_dir.join(otastream_store::PKI_DIR))
                .context("loading the dev PKI")?;
            let (cert, key) = pki
                .issue_device_cert(&thing)
                .context("issuing the device certificate")?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let cert_path = out.join(format!("{thing}.cert.pem"));
            let key_path = out.join(format!("{thing}.key.pem"));
            std::fs::write(&cert_path, &cert)
                .with_context(|| format!("writing {}", cert_path.display()))?;
            std::fs::write(&key_path, key)
                .with_context(|| format!("writing {}", key_path.display()))?;
            let store =
                otastream_store::Store::open(&data_dir).context("opening the data directory")?;
            let config = ApiConfig {
                region,
                account_id,
                ..ApiConfig::default()
            };
            let arn = otastream_api::register_dev_certificate(&store, &config, &thing, &cert)
                .map_err(|e| {
                    anyhow::anyhow!("registering the certificate: {}: {}", e.code, e.message)
                })?;
            eprintln!("otastream: registered {arn} (ACTIVE) for thing {thing}");
            println!("{} {}", cert_path.display(), key_path.display());
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
