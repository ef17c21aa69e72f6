//! A fleet: 1,000 devices connected at once, each downloading its own copy of a 64 KiB image.

mod gateway_support;

use std::sync::Arc;

use gateway_support::{Device, TestServer, image, sha256};
use otastream_chunker::Format;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const DEVICES: usize = 1_000;
const IMAGE: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_devices_each_download_64kib() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let data = image(IMAGE, 9);
    let digest = sha256(&data);
    t.create_stream("fleet-fw", 0, data).await?;

    // Ramp the connects: at most 100 handshakes in flight at a time.
    let connecting = Arc::new(Semaphore::new(100));
    let addr = t.server.mqtt_addr;
    let mut devices = JoinSet::new();
    for i in 0..DEVICES {
        let connecting = Arc::clone(&connecting);
        devices.spawn(async move {
            let mut dev = {
                let _permit = connecting.acquire().await?;
                Device::tcp(addr, &format!("fleet-{i:04}")).await?
            };
            // Half the fleet asks like the default AWS agent (n = 1 would take 16 round trips;
            // n = 4 keeps the test short), half asks for everything at once.
            let n = if i % 2 == 0 { Some(4) } else { None };
            let format = if i % 10 == 0 {
                Format::Json
            } else {
                Format::Cbor
            };
            let (got, _) = dev.download("fleet-fw", format, IMAGE, 4096, n).await?;
            anyhow::Ok((sha256(&got), dev))
        });
    }
    let mut connected = Vec::with_capacity(DEVICES);
    while let Some(done) = devices.join_next().await {
        let (got, dev) = done??;
        assert_eq!(got, digest, "{} rebuilt a different image", dev.thing);
        connected.push(dev);
    }
    assert_eq!(connected.len(), DEVICES);
    assert_eq!(
        t.server.gateway.connected_things(),
        DEVICES,
        "every device stayed connected"
    );
    assert_eq!(
        t.server.gateway.metrics().blocks_served(),
        (DEVICES * IMAGE / 4096) as u64
    );
    Ok(())
}
