//! `otastream-loadgen`: parses the command line, runs [`otastream_loadgen::fleet::run_all`],
//! prints the table and writes the JSON report and the SVG chart.

use anyhow::Context;
use clap::Parser;
use otastream_loadgen::config::Baseline;
use otastream_loadgen::{Config, chart, fleet, report, shard, sys};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    if cfg.shard_worker {
        return shard::serve().await;
    }
    cfg.validate()?;
    // Each device here holds one socket; the TCP baseline's responder, always in this process,
    // holds the other end of every device's. Shard processes raise their own limit.
    let devices = cfg.devices as u64;
    let here = if shard::processes(&cfg) > 1 {
        0
    } else {
        devices
    };
    let responder = if cfg.baseline.contains(&Baseline::Tcp) {
        devices
    } else {
        0
    };
    let want = here + responder + shard::RESERVED_FILES;
    let got = sys::raise_nofile_limit(want);
    if got < want {
        eprintln!("warning: open-files limit is {got}, {want} wanted; some devices may fail");
    }
    let reports = fleet::run_all(&cfg).await?;
    print!("{}", report::table(&reports));
    if let Some(path) = &cfg.report {
        let doc = report::to_json(&reports);
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let svg = path.with_extension("svg");
        chart::write_svg(&svg, &reports)?;
        eprintln!("report: {} chart: {}", path.display(), svg.display());
    }
    Ok(())
}
