//! The report's charts, as inline SVG: the MFA share per surface and day, findings per
//! rule, and the agents with most findings.

use super::style::{
    esc, pct, surface_colour, surface_label, BLOCKED, EXCEPTED, READINESS_ONLY, READY, UNKNOWN,
};
use super::{AgentCount, RuleCount};
use crate::event::time::Day;
use crate::state::ShareCount;
use std::fmt::Write as _;

/// MFA share per surface and day, as lines (one per surface of `surfaces`, which index
/// each day's counts); enforcement dates in range as dashed rules.
pub fn share_chart(
    surfaces: &[String],
    daily: &[(Day, Vec<ShareCount>)],
    enforcement: &[(String, Day)],
) -> String {
    let (Some((first, _)), Some((last, _))) = (daily.first(), daily.last()) else {
        return "<p>No days.</p>".into();
    };
    if surfaces.is_empty() {
        return "<p>No MFA shares: the rows have no <code>rollout_surfaces</code>.</p>".into();
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
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"share-chart\" viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\" \
         aria-label=\"MFA share per surface per day\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for i in 0..=4 {
        let v = f64::from(i) / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e6e9ec\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>",
            left + plot_w,
            left - 6.0,
            y(v) + 4.0,
            i * 25,
            yy = y(v)
        );
    }
    let days = (last.0 - first.0 + 1) as usize;
    let step = days.div_ceil(10).max(1);
    for k in (0..days).step_by(step) {
        let d = first.plus(k as i64);
        let label = d.to_string();
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(d),
            ht - bottom + 16.0,
            esc(label.get(5..).unwrap_or(&label))
        );
    }
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
    for (d, names) in &labels {
        let xx = x(*d);
        let _ = write!(
            s,
            "<line class=\"enforcement\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"#37414b\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{:.1}\" y=\"{}\">{} enforced</text>",
            top + plot_h,
            xx + 4.0,
            top + plot_h - 8.0,
            esc(&names.join(", ")),
        );
    }
    for (i, surface) in surfaces.iter().enumerate() {
        let name = surface_label(surface);
        let colour = surface_colour(i);
        let mut segment: Vec<String> = Vec::new();
        let mut points = String::new();
        let flush = |segment: &mut Vec<String>, s: &mut String| {
            if segment.len() > 1 {
                let _ = write!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                    segment.join(" ")
                );
            }
            segment.clear();
        };
        for (d, counts) in daily {
            match counts.get(i).and_then(ShareCount::share) {
                Some(v) => {
                    segment.push(format!("{:.1},{:.1}", x(*d), y(v)));
                    let _ = write!(
                        points,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: {} on {d}</title></circle>",
                        x(*d),
                        y(v),
                        esc(name),
                        pct(Some(v))
                    );
                }
                None => flush(&mut segment, &mut s),
            }
        }
        flush(&mut segment, &mut s);
        s.push_str(&points);
        let ly = top + 14.0 + i as f64 * 18.0;
        let lx = left + plot_w + 16.0;
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{colour}\"/><text x=\"{}\" y=\"{ly}\">{}</text>",
            ly - 5.0,
            lx + 18.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// One bar: its label, the text shown on hovering, and its parts (count, name, colour).
struct Bar {
    label: String,
    hover: String,
    parts: [(u64, &'static str, &'static str); 3],
}

/// Horizontal stacked bars: one per row, parts in the given colours, a count at the end.
fn bars(id: &str, label: &str, rows: &[Bar]) -> String {
    let max = rows
        .iter()
        .map(|b| b.parts.iter().map(|p| p.0).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (w, left, bar_w, row_h, top) = (900.0, 290.0, 520.0, 22.0, 26.0);
    let ht = top + row_h * rows.len() as f64 + 8.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"{id}\" viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(label)
    );
    // Legend: every part name once, in order.
    let mut legend: Vec<(&str, &str)> = Vec::new();
    for b in rows {
        for (_, name, colour) in &b.parts {
            if !legend.iter().any(|(n, _)| n == name) {
                legend.push((name, colour));
            }
        }
    }
    let mut lx = left;
    for (name, colour) in legend {
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"6\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"15\">{}</text>",
            lx + 14.0,
            esc(name)
        );
        lx += 24.0 + 7.0 * name.len() as f64;
    }
    for (
        i,
        Bar {
            label,
            hover,
            parts,
        },
    ) in rows.iter().enumerate()
    {
        let y = top + i as f64 * row_h;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}<title>{}</title></text>",
            left - 8.0,
            y + 14.0,
            esc(label),
            esc(hover)
        );
        let mut x = left;
        let mut total = 0;
        for (n, part, colour) in parts {
            if *n == 0 {
                continue;
            }
            let pw = *n as f64 / max * bar_w;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{pw:.1}\" height=\"{}\" fill=\"{colour}\"><title>{}: {n} {}</title></rect>",
                y + 3.0,
                row_h - 6.0,
                esc(hover),
                esc(part)
            );
            x += pw;
            total += n;
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{total}</text>",
            x + 6.0,
            y + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

pub(super) fn rules_chart(rules: &[RuleCount]) -> String {
    if rules.is_empty() {
        return "<p>No findings.</p>".into();
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
    bars("rules-chart", "Findings by rule", &rows)
}

const MAX_AGENT_ROWS: usize = 40;

pub(super) fn agents_chart(agents: &[AgentCount]) -> String {
    if agents.is_empty() {
        return "<p>No partner-role users seen.</p>".into();
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
    let mut s = bars(
        "agents-chart",
        "Partner-role users by MFA registration",
        &rows,
    );
    if shown < sorted.len() {
        let _ = write!(
            s,
            "<p class=\"note\">The {shown} tenants with the most unregistered users of {}.</p>",
            sorted.len()
        );
    }
    s
}
