//! `target/bench/report.html`: every figure of `results.json` beside its baseline and its goal,
//! with charts as inline SVG (each figure against its goal; throughput beside its baseline, on
//! empty and preloaded databases; latency percentiles). The SVG is a few rectangles and labels,
//! written here: a charting crate would cost the build more than these bars do.

use std::fmt::Write as _;

use crate::bench_common::Figure;

/// What a figure's note says it must reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Goal {
    /// "goal: under N …": the value must stay below N.
    Under(f64),
    /// "goal: ratio ≥ N": value ÷ baseline must reach N.
    RatioAtLeast(f64),
}

impl Goal {
    pub fn of(note: &str) -> Option<Goal> {
        let rest = note.split("goal: ").nth(1)?;
        let number = |s: &str| {
            s.trim_start()
                .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
                .next()
                .and_then(|n| n.replace(',', "").parse::<f64>().ok())
        };
        if let Some(n) = rest.strip_prefix("under") {
            number(n).map(Goal::Under)
        } else if let Some(n) = rest.strip_prefix("ratio ≥") {
            number(n).map(Goal::RatioAtLeast)
        } else {
            None
        }
    }

    /// How far along the goal the figure is: 1.0 is the goal; below 1.0 is met.
    fn share(self, figure: &Figure) -> Option<f64> {
        match self {
            Goal::Under(limit) if limit > 0.0 => Some(figure.value / limit),
            Goal::RatioAtLeast(at_least) => figure.ratio.map(|r| at_least / r.max(1e-9)),
            Goal::Under(_) => None,
        }
    }

    fn describe(self) -> String {
        match self {
            Goal::Under(n) => format!("under {n}"),
            Goal::RatioAtLeast(n) => format!("ratio ≥ {n}"),
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars: one row per `(label, value, colour)`, scaled to the largest value, with an
/// optional marker line (the goal) at `marker`.
fn bars(rows: &[(String, f64, &str)], marker: Option<(f64, &str)>) -> String {
    const ROW: usize = 22;
    const LABEL: usize = 330;
    const WIDTH: usize = 420;
    let max = rows
        .iter()
        .map(|r| r.1)
        .chain(marker.map(|m| m.0))
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let height = rows.len() * ROW + 40;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\"><rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>",
        LABEL + WIDTH + 90
    );
    for (i, (label, value, colour)) in rows.iter().enumerate() {
        let y = 10 + i * ROW;
        let w = (value / max * WIDTH as f64).max(1.0);
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{}</text>",
            LABEL - 6,
            y + 14,
            escape(label),
            ROW - 6,
            LABEL as f64 + w + 4.0,
            y + 14,
            format_value(*value)
        );
    }
    if let Some((at, label)) = marker {
        let x = LABEL as f64 + at / max * WIDTH as f64;
        let bottom = 10 + rows.len() * ROW;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"4\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#333\" \
             stroke-dasharray=\"4 3\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            bottom + 16,
            escape(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One chart: its file name (`target/bench/<name>.svg`), its caption, the SVG.
pub(crate) struct Chart {
    pub name: &'static str,
    pub caption: &'static str,
    pub svg: String,
}

/// The charts (written beside the report as SVG files; `docs/benchmarks.md` shows a copy).
pub(crate) fn charts(figures: &[Figure]) -> Vec<Chart> {
    let mut out = Vec::new();
    let against_goal: Vec<(String, f64, &str)> = figures
        .iter()
        .filter_map(|f| {
            let share = Goal::of(&f.note)?.share(f)?;
            let colour = if share <= 1.0 { "#3a7d44" } else { "#c0392b" };
            Some((format!("{} ({})", f.name, f.backend), share, colour))
        })
        .collect();
    if !against_goal.is_empty() {
        out.push(Chart {
            name: "goals",
            caption: "Each figure as a share of its goal (left of the line: met)",
            svg: bars(&against_goal, Some((1.0, "goal"))),
        });
    }
    let mut throughput = Vec::new();
    for f in figures.iter().filter(|f| f.unit.ends_with("/s")) {
        if let Some(b) = f.baseline {
            throughput.push((format!("{} ({}) baseline", f.name, f.backend), b, "#9aa5b1"));
        }
        throughput.push((format!("{} ({})", f.name, f.backend), f.value, "#2c6fbb"));
    }
    if !throughput.is_empty() {
        out.push(Chart {
            name: "throughput",
            caption: "Throughput beside its baseline (scale.charges: on the preloaded database, \
                      its baseline on the empty one)",
            svg: bars(&throughput, None),
        });
    }
    let latency: Vec<(String, f64, &str)> = figures
        .iter()
        .filter(|f| f.unit == "ms")
        .map(|f| (format!("{} ({})", f.name, f.backend), f.value, "#8e5ea2"))
        .collect();
    if !latency.is_empty() {
        out.push(Chart {
            name: "latency",
            caption: "Latencies (ms)",
            svg: bars(&latency, None),
        });
    }
    out
}

/// The whole report page.
pub(crate) fn html(figures: &[Figure], machine: &str, date: &str, seconds: f64) -> String {
    let mut rows = String::new();
    for f in figures {
        let goal = Goal::of(&f.note);
        let met = goal.and_then(|g| g.share(f)).map(|s| s <= 1.0);
        let _ = writeln!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            match met {
                Some(true) => "met",
                Some(false) => "missed",
                None => "",
            },
            escape(&f.name),
            escape(&f.backend),
            format_value(f.value),
            escape(&f.unit),
            f.baseline.map(format_value).unwrap_or_default(),
            f.ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            goal.map(Goal::describe).unwrap_or_default(),
            match met {
                Some(true) => "met",
                Some(false) => "missed",
                None => "",
            },
            escape(&f.note)
        );
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Kalp Credits benchmarks</title><style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         tr.met td:nth-child(8){{color:#3a7d44}}tr.missed td:nth-child(8){{color:#c0392b;font-weight:bold}}\
         </style></head><body><h1>Kalp Credits benchmarks</h1>\
         <p>{} · {} · {seconds:.0} s</p>\n<table><tr><th>figure</th><th>backend</th>\
         <th>value</th><th>baseline</th><th>ratio</th><th>goal</th><th></th><th>note</th></tr>\n\
         {rows}</table>\n{}</body></html>\n",
        escape(machine),
        escape(date),
        charts(figures)
            .iter()
            .map(|c| format!(
                "<figure><figcaption>{}</figcaption>{}</figure>",
                escape(c.caption),
                c.svg
            ))
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_are_read_from_the_notes() {
        assert_eq!(Goal::of("goal: under 20 ms"), Some(Goal::Under(20.0)));
        assert_eq!(
            Goal::of("500,000 rows; goal: under 5 s"),
            Some(Goal::Under(5.0))
        );
        assert_eq!(
            Goal::of("same run; goal: ratio ≥ 0.8"),
            Some(Goal::RatioAtLeast(0.8))
        );
        assert_eq!(Goal::of("median of 5"), None);
    }
}
