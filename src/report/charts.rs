//! The report's charts as inline SVG: the MFA share per surface and day, findings per
//! rule, and the agents with most findings. This module only places things: it computes
//! coordinates (numbers) and picks the texts; `templates/share_chart.html` and
//! `templates/bars.html` write the SVG, escaping every text.

use super::style::{
    pct, surface_colour, surface_label, BLOCKED, EXCEPTED, READINESS_ONLY, READY, UNKNOWN,
};
use super::{AgentCount, RuleCount};
use crate::event::time::Day;
use crate::state::ShareCount;
use askama::Template;

/// The share chart, or why there is none.
#[derive(Debug)]
pub(super) enum ShareChart<'a> {
    /// No day has rows.
    NoDays,
    /// The rows have no `rollout_surfaces`.
    NoSurfaces,
    /// The chart.
    Chart(ShareSvg<'a>),
}

/// The share chart's geometry.
#[derive(Debug)]
pub(super) struct ShareSvg<'a> {
    pub w: f64,
    pub ht: f64,
    /// Horizontal rules at 0, 25, ..., 100 %.
    pub grid: Vec<GridLine>,
    /// Day labels under the plot.
    pub ticks: Vec<Tick>,
    /// Enforcement dates in range: a dashed rule each, with the surfaces enforced.
    pub marks: Vec<Mark>,
    /// One line per surface.
    pub lines: Vec<SurfaceLine<'a>>,
}

#[derive(Debug)]
pub(super) struct GridLine {
    pub x1: f64,
    pub x2: f64,
    pub y: f64,
    pub text_x: f64,
    pub text_y: f64,
    pub percent: u32,
}

#[derive(Debug)]
pub(super) struct Tick {
    pub x: f64,
    pub y: f64,
    pub label: String,
}

#[derive(Debug)]
pub(super) struct Mark {
    pub x: f64,
    pub y1: f64,
    pub y2: f64,
    pub text_x: f64,
    pub text_y: f64,
    pub names: String,
}

#[derive(Debug)]
pub(super) struct SurfaceLine<'a> {
    pub name: &'a str,
    pub colour: &'static str,
    /// Runs of days with a known share, each drawn as one polyline when longer than one.
    pub segments: Vec<Vec<(f64, f64)>>,
    pub points: Vec<Point>,
    /// Legend: the swatch's and the name's places.
    pub legend_x: f64,
    pub legend_y: f64,
}

#[derive(Debug)]
pub(super) struct Point {
    pub x: f64,
    pub y: f64,
    pub share: String,
    pub day: Day,
}

/// The share chart alone, as the page writes it (tests, and whoever wants one chart).
#[derive(Template)]
#[template(path = "share_chart.html")]
struct ShareChartPart<'a> {
    share: &'a ShareChart<'a>,
}

/// MFA share per surface and day, as lines (one per surface of `surfaces`, which index
/// each day's counts); enforcement dates in range as dashed rules.
pub fn share_chart(
    surfaces: &[String],
    daily: &[(Day, Vec<ShareCount>)],
    enforcement: &[(String, Day)],
) -> String {
    let share = share_layout(surfaces, daily, enforcement);
    ShareChartPart { share: &share }
        .render()
        .unwrap_or_default()
}

pub(super) fn share_layout<'a>(
    surfaces: &'a [String],
    daily: &[(Day, Vec<ShareCount>)],
    enforcement: &'a [(String, Day)],
) -> ShareChart<'a> {
    let (Some((first, _)), Some((last, _))) = (daily.first(), daily.last()) else {
        return ShareChart::NoDays;
    };
    if surfaces.is_empty() {
        return ShareChart::NoSurfaces;
    }
    let (w, ht, left, right, top, bottom) = (900.0, 280.0, 48.0, 150.0, 20.0, 36.0);
    // Room for the legend: a line per surface, its longest name (a policy's own may be long).
    let longest = surfaces
        .iter()
        .map(|s| surface_label(s).chars().count())
        .max()
        .unwrap_or(0);
    let right = f64::max(right, 40.0 + 6.5 * longest as f64);
    let ht = f64::max(ht, top + 14.0 + 18.0 * surfaces.len() as f64 + bottom);
    let plot_w = w - left - right;
    let plot_h = ht - top - bottom;
    let span = (last.0 - first.0).max(1) as f64;
    let x = |d: Day| left + (d.0 - first.0) as f64 / span * plot_w;
    let y = |v: f64| top + (1.0 - v) * plot_h;

    let grid = (0..=4u32)
        .map(|i| {
            let v = f64::from(i) / 4.0;
            GridLine {
                x1: left,
                x2: left + plot_w,
                y: y(v),
                text_x: left - 6.0,
                text_y: y(v) + 4.0,
                percent: i * 25,
            }
        })
        .collect();
    let days = (last.0 - first.0 + 1) as usize;
    let step = days.div_ceil(10).max(1);
    let ticks = (0..days)
        .step_by(step)
        .map(|k| {
            let d = first.plus(k as i64);
            let label = d.to_string();
            Tick {
                x: x(d),
                y: ht - bottom + 16.0,
                label: label.get(5..).unwrap_or(&label).to_owned(),
            }
        })
        .collect();
    let mut labels: Vec<(Day, Vec<&str>)> = Vec::new();
    for (surface, d) in enforcement {
        if *d < *first || *d > *last {
            continue;
        }
        match labels.iter_mut().find(|(day, _)| day == d) {
            Some((_, names)) => names.push(surface_label(surface)),
            None => labels.push((*d, vec![surface_label(surface)])),
        }
    }
    let marks = labels
        .iter()
        .map(|(d, names)| Mark {
            x: x(*d),
            y1: top,
            y2: top + plot_h,
            text_x: x(*d) + 4.0,
            text_y: top + plot_h - 8.0,
            names: names.join(", "),
        })
        .collect();
    let lines = surfaces
        .iter()
        .enumerate()
        .map(|(i, surface)| {
            let mut segments = vec![Vec::new()];
            let mut points = Vec::new();
            for (d, counts) in daily {
                match counts.get(i).and_then(ShareCount::share) {
                    Some(v) => {
                        if let Some(run) = segments.last_mut() {
                            run.push((x(*d), y(v)));
                        }
                        points.push(Point {
                            x: x(*d),
                            y: y(v),
                            share: pct(Some(v)),
                            day: *d,
                        });
                    }
                    None => segments.push(Vec::new()),
                }
            }
            segments.retain(|run| run.len() > 1);
            SurfaceLine {
                name: surface_label(surface),
                colour: surface_colour(i),
                segments,
                points,
                legend_x: left + plot_w + 16.0,
                legend_y: top + 14.0 + i as f64 * 18.0,
            }
        })
        .collect();
    ShareChart::Chart(ShareSvg {
        w,
        ht,
        grid,
        ticks,
        marks,
        lines,
    })
}

/// Horizontal stacked bars: one per row, parts in the given colours, a count at the end.
#[derive(Debug)]
pub(super) struct Bars {
    pub id: &'static str,
    pub label: &'static str,
    pub w: f64,
    pub ht: f64,
    /// Every part name once, in order: the swatch's x, the name, the colour.
    pub legend: Vec<(f64, &'static str, &'static str)>,
    pub rows: Vec<BarRow>,
    /// What is left out: (shown, of).
    pub cut: Option<(usize, usize)>,
}

#[derive(Debug)]
pub(super) struct BarRow {
    pub label: String,
    pub hover: String,
    pub label_x: f64,
    pub text_y: f64,
    pub parts: Vec<BarPart>,
    pub total_x: f64,
    pub total: u64,
}

#[derive(Debug)]
pub(super) struct BarPart {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub n: u64,
    pub name: &'static str,
    pub colour: &'static str,
}

/// One bar: its label, the text shown on hovering, and its parts (count, name, colour).
struct Bar {
    label: String,
    hover: String,
    parts: [(u64, &'static str, &'static str); 3],
}

fn bars(id: &'static str, label: &'static str, rows: &[Bar]) -> Bars {
    let max = rows
        .iter()
        .map(|b| b.parts.iter().map(|p| p.0).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, left, bar_w, row_h, top) = (900.0, 290.0, 520.0, 22.0, 26.0);
    let ht = top + row_h * rows.len() as f64 + 8.0;
    let mut legend: Vec<(f64, &'static str, &'static str)> = Vec::new();
    let mut lx = left;
    for b in rows {
        for (_, name, colour) in &b.parts {
            if !legend.iter().any(|(_, n, _)| n == name) {
                legend.push((lx, name, colour));
                lx += 24.0 + 7.0 * name.len() as f64;
            }
        }
    }
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let y = top + i as f64 * row_h;
            let mut x = left;
            let mut total = 0;
            let mut parts = Vec::new();
            for &(n, name, colour) in &b.parts {
                if n == 0 {
                    continue;
                }
                let pw = n as f64 / max * bar_w;
                parts.push(BarPart {
                    x,
                    y: y + 3.0,
                    w: pw,
                    h: row_h - 6.0,
                    n,
                    name,
                    colour,
                });
                x += pw;
                total += n;
            }
            BarRow {
                label: b.label.clone(),
                hover: b.hover.clone(),
                label_x: left - 8.0,
                text_y: y + 14.0,
                parts,
                total_x: x + 6.0,
                total,
            }
        })
        .collect();
    Bars {
        id,
        label,
        w,
        ht,
        legend,
        rows,
        cut: None,
    }
}

/// Findings per rule (`None`: there are none).
pub(super) fn rules_chart(rules: &[RuleCount]) -> Option<Bars> {
    if rules.is_empty() {
        return None;
    }
    let rows: Vec<_> = rules
        .iter()
        .map(|r| Bar {
            label: format!("{} ({})", r.rule_id, r.severity),
            hover: r.rule_id.clone(),
            parts: [
                (r.enforced, "enforced", BLOCKED),
                (r.readiness, "before enforcement", READINESS_ONLY),
                (r.excepted, "excepted", EXCEPTED),
            ],
        })
        .collect();
    Some(bars("rules-chart", "Findings by rule", &rows))
}

const MAX_AGENT_ROWS: usize = 40;

/// Partner-role users per tenant by registration, the tenants with most unregistered
/// users first (`None`: no partner-role user was seen).
pub(super) fn agents_chart(agents: &[AgentCount]) -> Option<Bars> {
    if agents.is_empty() {
        return None;
    }
    let mut sorted: Vec<&AgentCount> = agents.iter().collect();
    sorted.sort_by(|a, b| {
        b.unregistered
            .cmp(&a.unregistered)
            .then_with(|| a.tenant_id.cmp(&b.tenant_id))
    });
    let shown = sorted.len().min(MAX_AGENT_ROWS);
    let rows: Vec<_> = sorted
        .iter()
        .take(shown)
        .map(|a| Bar {
            label: a.tenant_id.clone(),
            hover: a.tenant_id.clone(),
            parts: [
                (a.registered, "registered", READY),
                (a.unregistered, "not registered", BLOCKED),
                (a.unknown, "unknown", UNKNOWN),
            ],
        })
        .collect();
    let mut b = bars(
        "agents-chart",
        "Partner-role users by MFA registration",
        &rows,
    );
    if shown < sorted.len() {
        b.cut = Some((shown, sorted.len()));
    }
    Some(b)
}
