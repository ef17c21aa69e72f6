//! The SVG chart of a run: throughput (blocks/s) on top, block latency (p50 solid, p99 dashed)
//! below, both over seconds since the start signal, one colour per target.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::report::{Report, Sample};

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// One line per report: which value of a sample, stroke width, opacity.
type Line = (fn(&Sample) -> f64, u32, f64);

/// Draws every report's timeline into an SVG file at `path`.
pub fn write_svg(path: &Path, reports: &[Report]) -> anyhow::Result<()> {
    let err = |e: DrawingAreaErrorKind<std::io::Error>| anyhow!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(350);
    let throughput: &[Line] = &[(|s| s.blocks_per_s, 2, 1.0)];
    panel(&top, "throughput", "blocks/s", reports, throughput).map_err(err)?;
    let latency: &[Line] = &[(|s| s.p50_ms, 2, 1.0), (|s| s.p99_ms, 1, 0.6)];
    let caption = "block latency: p50 (solid), p99 (thin)";
    panel(&bottom, caption, "ms", reports, latency).map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One chart over seconds since the start: `lines` for every report, one colour per report,
/// the legend naming the reports by their first line.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    reports: &[Report],
    lines: &[Line],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let samples = || reports.iter().flat_map(|r| r.timeline.iter());
    let t_max = samples().map(|s| s.t_s).fold(1.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|(value, ..)| samples().map(value))
        .fold(1e-3, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("s").y_desc(y_desc).draw()?;
    for (r, colour) in reports.iter().zip(COLOURS.iter().cycle()) {
        for (n, &(value, width, opacity)) in lines.iter().enumerate() {
            let points = r.timeline.iter().map(|s| (s.t_s, value(s)));
            let style = colour.mix(opacity).stroke_width(width);
            let series = chart.draw_series(LineSeries::new(points, style))?;
            if n == 0 {
                series
                    .label(r.target.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            }
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

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
