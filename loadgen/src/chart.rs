//! The SVG chart of a run: throughput (blocks/s) on top, block latency (p50 solid, p99 dashed)
//! below, both over seconds since the start signal, one colour per target.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::report::Report;

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Draws every report's timeline into an SVG file at `path`.
pub fn write_svg(path: &Path, reports: &[Report]) -> anyhow::Result<()> {
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(350);
    let t_max = reports
        .iter()
        .flat_map(|r| r.timeline.iter().map(|s| s.t_s))
        .fold(1.0, f64::max);
    let max_of = |f: fn(&crate::report::Sample) -> f64| {
        reports
            .iter()
            .flat_map(|r| r.timeline.iter().map(f))
            .fold(0.0, f64::max)
            .max(1e-3)
            * 1.1
    };

    let mut chart = ChartBuilder::on(&top)
        .caption("throughput", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..max_of(|s| s.blocks_per_s))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("s")
        .y_desc("blocks/s")
        .draw()
        .map_err(err)?;
    for (r, colour) in reports.iter().zip(COLOURS.iter().cycle()) {
        let points = r.timeline.iter().map(|s| (s.t_s, s.blocks_per_s));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(err)?
            .label(r.target.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption("block latency: p50 (solid), p99 (thin)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..max_of(|s| s.p99_ms))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("s")
        .y_desc("ms")
        .draw()
        .map_err(err)?;
    for (r, colour) in reports.iter().zip(COLOURS.iter().cycle()) {
        let p50 = r.timeline.iter().map(|s| (s.t_s, s.p50_ms));
        let p99 = r.timeline.iter().map(|s| (s.t_s, s.p99_ms));
        chart
            .draw_series(LineSeries::new(p50, colour.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(p99, colour.mix(0.6).stroke_width(1)))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Sample;

    #[test]
    fn writes_an_svg_with_one_line_per_target() {
        let sample = |t: f64| Sample {
            t_s: t,
            blocks_per_s: 1000.0 * t,
            p50_ms: 0.2,
            p99_ms: 1.5,
            ..Sample::default()
        };
        let reports = ["otastream", "tcp"].map(|name| Report {
            target: name.into(),
            timeline: (1..5).map(|t| sample(f64::from(t))).collect(),
            ..Report::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        write_svg(&path, &reports).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("otastream") && svg.contains("tcp"));
        assert!(svg.matches("<polyline").count() >= 6, "3 lines per target");
    }
}
