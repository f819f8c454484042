//! The report page: one HTML file with its styles inline and its charts as inline SVG.
//! It fetches nothing (its Content-Security-Policy forbids every fetch) and runs no
//! script, so it opens the same from a mail attachment, a file share or a browser
//! without network.

use super::{AgentCount, Report, RuleCount, TenantLine};
use crate::event::time::Day;
use crate::state::ShareCount;
use std::fmt::Write as _;

const BLOCKED: &str = "#c62828";
const AT_RISK: &str = "#ef6c00";
const READY: &str = "#2e7d32";
const UNKNOWN: &str = "#9e9e9e";
const READINESS_ONLY: &str = "#f9a825";
const EXCEPTED: &str = "#78909c";
/// The share chart's line colours, by the surface's place in [`Report::surfaces`] (the
/// shipped policies' api, dashboard and delegated admin first), repeating past the end.
const SURFACE_COLOURS: [&str; 8] = [
    "#1565c0", "#6a1b9a", "#00897b", "#d81b60", "#5d4037", "#0097a7", "#827717", "#3949ab",
];

fn surface_colour(i: usize) -> &'static str {
    SURFACE_COLOURS[i % SURFACE_COLOURS.len()]
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |s| format!("{:.1}%", s * 100.0))
}

/// A surface's name for people: the shipped surfaces by their usual names, any other
/// (a policy's own) as written.
pub fn surface_label(s: &str) -> &str {
    match s {
        "api" => "API (App+User)",
        "dashboard" => "Dashboard",
        "delegated_admin" => "Delegated admin",
        "sign_in" => "Sign-in",
        "registration" => "Registration",
        other => other,
    }
}

fn status_colour(s: &str) -> &'static str {
    match s {
        "blocked" => BLOCKED,
        "at_risk" => AT_RISK,
        "ready" => READY,
        _ => UNKNOWN,
    }
}

fn badge(s: &str) -> String {
    format!(
        "<span class=\"badge\" style=\"background:{}\">{}</span>",
        status_colour(s),
        esc(&s.replace('_', " "))
    )
}

/// The whole page. `generated_at` is printed as given (the caller's clock).
pub fn render(r: &Report, generated_at: &str) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("Partner MFA readiness: {}", r.policy_version);
    let span = match (r.daily.first(), r.daily.last()) {
        (Some((a, _)), Some((b, _))) => format!("{a} to {b}"),
        _ => "no days".into(),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{}</style>\n</head>\n<body>\n",
        esc(&title),
        STYLE
    );
    let _ = writeln!(
        h,
        "<header><h1>{}</h1><p>Rows from {} · events from {} · generated {} by mfa-audit {}</p></header>",
        esc(&title),
        esc(&r.source),
        esc(&span),
        esc(generated_at),
        env!("CARGO_PKG_VERSION")
    );
    tiles(&mut h, r);
    readiness_table(&mut h, r);
    let _ = writeln!(
        h,
        "<section><h2>MFA share per surface, all tenants</h2>{}{}</section>",
        share_chart(&r.surfaces, &r.daily, &r.enforcement),
        enforcement_note(r)
    );
    let _ = writeln!(
        h,
        "<section><h2>Findings by rule</h2>{}</section>",
        rules_chart(&r.rules)
    );
    let _ = writeln!(
        h,
        "<section><h2>Partner-role users registered for MFA</h2>{}</section>",
        agents_chart(&r.agents)
    );
    dead_letters(&mut h, r);
    h.push_str("</body>\n</html>\n");
    h
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1260px;padding:0 12px;color:#1d2329;background:#fff}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}header p{color:#56606b;margin:0}\
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin-top:18px}.tile{border:1px solid #dde2e7;border-radius:6px;padding:10px 14px;min-width:130px}\
.tile b{display:block;font-size:24px}.tile span{color:#56606b}\
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}th,td{padding:4px 6px;border-bottom:1px solid #e6e9ec;text-align:right;white-space:nowrap}\
th{background:#f4f6f8;white-space:normal;vertical-align:bottom}.wrap{overflow-x:auto}td.l,th.l{text-align:left}td.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}\
.badge{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px}.note{color:#56606b;font-size:12px}\
svg{display:block;max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#37414b}\
";

fn tiles(h: &mut String, r: &Report) {
    let count = |s: &str| r.tenants.iter().filter(|t| t.status_7d == s).count();
    let findings: u64 = r.rules.iter().map(RuleCount::total).sum();
    let critical: u64 = r
        .tenants
        .iter()
        .map(|t| t.window.findings_uncovered_critical)
        .sum();
    let dead: u64 = r.dead_letters.iter().map(|(_, n)| n).sum();
    h.push_str("<section class=\"tiles\">");
    for (value, label, colour) in [
        (count("blocked") as u64, "tenants blocked (7 days)", BLOCKED),
        (count("at_risk") as u64, "tenants at risk", AT_RISK),
        (count("ready") as u64, "tenants ready", READY),
        (findings, "findings", "#1d2329"),
        (critical, "uncovered critical (7 days)", BLOCKED),
        (dead, "dead letters", "#1d2329"),
    ] {
        let _ = write!(
            h,
            "<div class=\"tile\"><b style=\"color:{colour}\">{value}</b><span>{label}</span></div>"
        );
    }
    h.push_str("</section>\n");
}

fn readiness_table(h: &mut String, r: &Report) {
    h.push_str(
        "<section><h2>Readiness per tenant</h2>\
         <div class=\"wrap\"><table id=\"readiness\"><thead><tr><th class=\"l\">Tenant</th><th class=\"l\">Newest day</th>\
         <th class=\"l\">Status</th><th class=\"l\">7 days</th>",
    );
    for s in &r.surfaces {
        // A policy's own names are often snake_case: let them wrap at the underscores.
        let label = esc(surface_label(s)).replace('_', "_<wbr>");
        let _ = write!(h, "<th>{label} MFA</th>");
    }
    h.push_str(
        "<th>Agents registered</th><th>Exceptions open (overdue)</th>\
         <th>Critical</th><th>High</th><th class=\"l\">Next enforcement</th></tr></thead><tbody>\n",
    );
    for t in &r.tenants {
        tenant_row(h, t);
    }
    if r.tenants.is_empty() {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\" colspan=\"{}\">No tenants.</td></tr>",
            9 + r.surfaces.len()
        );
    }
    h.push_str(
        "</tbody></table></div><p class=\"note\">Shares, findings and exceptions over the 7 days ending on \
         each tenant's newest day; MFA shares count only requests whose MFA is known. \
         <b>blocked</b>: an uncovered critical finding, or an enforced surface below 100% MFA; \
         <b>at risk</b>: an uncovered high finding or a partner-role user not registered; \
         <b>ready</b>: neither.</p></section>\n",
    );
}

fn tenant_row(h: &mut String, t: &TenantLine) {
    let w = &t.window;
    let next = match &t.next_enforcement {
        Some((s, days)) => format!("{} in {days} d", surface_label(s)),
        None => "none ahead".into(),
    };
    let _ = write!(
        h,
        "<tr><td class=\"l id\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
        esc(&t.tenant_id),
        t.day,
        badge(&t.status),
        badge(&t.status_7d),
    );
    for s in &t.shares {
        let _ = write!(h, "<td>{}</td>", pct(s.share()));
    }
    let _ = writeln!(
        h,
        "<td>{}/{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
        w.partner_role_users_registered,
        w.partner_role_users,
        w.exceptions_open,
        w.exceptions_overdue,
        w.findings_uncovered_critical,
        w.findings_uncovered_high,
        esc(&next)
    );
}

fn enforcement_note(r: &Report) -> String {
    if r.enforcement.is_empty() {
        return "<p class=\"note\">The policy version is not a shipped one: no enforcement dates.</p>"
            .into();
    }
    let dates: Vec<String> = r
        .enforcement
        .iter()
        .map(|(s, d)| format!("{} from {d}", surface_label(s)))
        .collect();
    format!(
        "<p class=\"note\">Enforced: {}. Share of requests with MFA among those whose MFA is known, per UTC day.</p>",
        esc(&dates.join("; "))
    )
}

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

fn rules_chart(rules: &[RuleCount]) -> String {
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

fn agents_chart(agents: &[AgentCount]) -> String {
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
    let rows: Vec<_> = sorted[..shown]
        .iter()
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

fn dead_letters(h: &mut String, r: &Report) {
    h.push_str("<section><h2>Dead letters</h2>");
    if r.dead_letters.is_empty() {
        h.push_str("<p>None: every input document was read.</p></section>\n");
        return;
    }
    h.push_str("<table id=\"dead-letters\"><thead><tr><th class=\"l\">Reason</th><th>Documents</th></tr></thead><tbody>");
    for (reason, n) in &r.dead_letters {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{n}</td></tr>",
            esc(reason)
        );
    }
    h.push_str(
        "</tbody></table><p class=\"note\">Each is a row of <code>dead_letters</code> with its position and an excerpt.</p></section>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Builder;

    #[test]
    fn text_from_rows_is_escaped() {
        assert_eq!(
            esc("<script>'x'&\"y\"</script>"),
            "&lt;script&gt;&#39;x&#39;&amp;&quot;y&quot;&lt;/script&gt;"
        );
        let r = Builder::default().finish("<b>".into(), "<i>".into(), None);
        let page = render(&r, "now");
        assert!(page.contains("Rows from &lt;b&gt;") && !page.contains("Rows from <b>"));
        assert!(!page.contains("<i>"));
    }

    #[test]
    fn the_page_names_no_remote_resource() {
        let r = Builder::default().finish("x".into(), "v".into(), None);
        let page = render(&r, "now");
        for needle in ["src=", "href=", "@import", "url("] {
            assert!(!page.contains(needle), "{needle}");
        }
        assert!(page.contains("Content-Security-Policy"));
    }

    #[test]
    fn a_missing_share_breaks_the_line() {
        let api = vec!["api".to_owned()];
        let mut known = ShareCount {
            total: 4,
            mfa: 2,
            ..ShareCount::default()
        };
        let unknown = ShareCount {
            total: 3,
            mfa_unknown: 3,
            ..ShareCount::default()
        };
        let daily = vec![
            (Day(10), vec![known]),
            (Day(11), vec![unknown]),
            (Day(12), vec![known]),
        ];
        let svg = share_chart(&api, &daily, &[]);
        // No line joins day 10 to day 12 across the unknown day; two points remain.
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert_eq!(svg.matches("<circle").count(), 2);
        known.mfa = 4;
        let daily = vec![(Day(10), vec![known]), (Day(11), vec![known])];
        let svg = share_chart(&api, &daily, &[("api".to_owned(), Day(11))]);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("API (App+User) enforced"));
    }

    #[test]
    fn one_line_per_surface_in_its_own_colour_whatever_its_name() {
        let surfaces: Vec<String> = ["api", "azure_admin_portals", "<x>"]
            .map(String::from)
            .to_vec();
        let c = |mfa| ShareCount {
            total: 4,
            mfa,
            ..ShareCount::default()
        };
        let daily = vec![
            (Day(10), vec![c(1), c(2), c(3)]),
            (Day(11), vec![c(4), c(3), c(2)]),
        ];
        let svg = share_chart(&surfaces, &daily, &[]);
        assert_eq!(svg.matches("<polyline").count(), 3);
        for (i, label) in ["API (App+User)", "azure_admin_portals", "&lt;x&gt;"]
            .iter()
            .enumerate()
        {
            let colour = surface_colour(i);
            assert_eq!(
                svg.matches(&format!("fill=\"{colour}\"")).count(),
                3,
                "{label}"
            );
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(svg.contains("<title>azure_admin_portals: 75.0% on "));
        assert!(!svg.contains("<x>"));
        assert_ne!(surface_colour(0), surface_colour(1));
        assert_eq!(surface_colour(SURFACE_COLOURS.len()), surface_colour(0));
    }
}
