//! `otastream-loadgen`: parses the command line, runs [`otastream_loadgen::fleet::run_all`],
//! prints the table and writes the JSON report and the SVG chart.

use anyhow::Context;
use clap::Parser;
use otastream_loadgen::{Config, chart, fleet, report, shard, sys};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    if cfg.shard_worker {
        return shard::serve().await;
    }
    cfg.validate()?;
    // Each device holds one socket (two while a baseline runs in this process).
    let want = 2 * cfg.devices as u64 + 1024;
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
