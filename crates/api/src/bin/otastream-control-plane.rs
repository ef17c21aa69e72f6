//! The control plane alone on one port, for development and the kill -9 test:
//! `cargo run -p otastream-api --bin otastream-control-plane -- <data-dir> [127.0.0.1:8080]`.
//! Credentials come from `OTASTREAM_ACCESS_KEY_ID` / `OTASTREAM_SECRET_ACCESS_KEY`, else the
//! documented dev credentials (printed). Prints `listening on <addr>` once ready.

use std::io::Write;

use otastream_api::{ApiConfig, ApiState};
use otastream_store::Store;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().unwrap_or_else(|| "otastream-data".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let mut config = ApiConfig {
        public_base_url: format!("http://{local}"),
        ..ApiConfig::default()
    };
    match (
        std::env::var("OTASTREAM_ACCESS_KEY_ID"),
        std::env::var("OTASTREAM_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) => (config.access_key_id, config.secret_access_key) = (id, secret),
        _ => eprintln!(
            "using dev credentials {} / {}",
            config.access_key_id, config.secret_access_key
        ),
    }
    let data_dir = std::path::Path::new(&data_dir);
    let store = Store::open(data_dir)?;
    let state = ApiState::new(
        std::sync::Arc::new(store),
        &data_dir.join(otastream_store::PKI_DIR),
        config,
    )?;
    tokio::spawn(state.jobs.clone().run_timers(state.store.clone()));
    println!("listening on {local}");
    std::io::stdout().flush()?;
    axum::serve(listener, otastream_api::router(state)).await?;
    Ok(())
}
