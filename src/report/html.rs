//! The report page: one HTML file with its styles inline and its charts as inline SVG.
//! It fetches nothing (its Content-Security-Policy forbids every fetch) and runs no
//! script, so it opens the same from a mail attachment, a file share or a browser
//! without network.

use super::{Report, RuleCount, TenantLine};
use std::fmt::Write as _;

pub use super::charts::share_chart;
use super::charts::{agents_chart, rules_chart};
pub use super::style::{esc, surface_label};
use super::style::{pct, AT_RISK, BLOCKED, READY, UNKNOWN};

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
    use super::super::style::{surface_colour, SURFACE_COLOURS};
    use super::*;
    use crate::event::time::Day;
    use crate::report::Builder;
    use crate::state::ShareCount;

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
