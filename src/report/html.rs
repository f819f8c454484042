//! The report page: one HTML file with its styles inline and its charts as inline SVG.
//! It fetches nothing (its Content-Security-Policy forbids every fetch) and runs no
//! script, so it opens the same from a mail attachment, a file share or a browser
//! without network.

use super::charts::{agents_chart, rules_chart, share_layout, Bars, ShareChart};
use super::{Report, RuleCount};
use crate::sink::DayStats;
use askama::Template;

pub use super::charts::share_chart;
pub use super::style::surface_label;
use super::style::{pct, AT_RISK, BLOCKED, READY, UNKNOWN};

/// The page: `templates/report.html`, with the charts' templates included.
#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    r: &'a Report,
    title: String,
    span: String,
    generated_at: &'a str,
    version: &'static str,
    tiles: [Tile; 6],
    /// Each surface's label cut at its underscores (a line may break there).
    surface_heads: Vec<Vec<&'a str>>,
    tenants: Vec<TenantRow<'a>>,
    share: ShareChart<'a>,
    /// "Label from day; ..." (empty: the policy is not a shipped one).
    enforcement: String,
    rules: Option<Bars>,
    agents: Option<Bars>,
}

struct Tile {
    value: u64,
    label: &'static str,
    colour: &'static str,
}

struct Badge {
    colour: &'static str,
    text: String,
}

impl Badge {
    fn new(status: &str) -> Self {
        let colour = match status {
            "blocked" => BLOCKED,
            "at_risk" => AT_RISK,
            "ready" => READY,
            _ => UNKNOWN,
        };
        Self {
            colour,
            text: status.replace('_', " "),
        }
    }
}

/// A line of the readiness table.
struct TenantRow<'a> {
    tenant_id: &'a str,
    day: crate::event::time::Day,
    status: Badge,
    status_7d: Badge,
    shares: Vec<String>,
    w: &'a DayStats,
    next: String,
}

/// The whole page. `generated_at` is printed as given (the caller's clock).
pub fn render(r: &Report, generated_at: &str) -> String {
    let span = match (r.daily.first(), r.daily.last()) {
        (Some((a, _)), Some((b, _))) => format!("{a} to {b}"),
        _ => "no days".into(),
    };
    let count = |s: &str| r.tenants.iter().filter(|t| t.status_7d == s).count() as u64;
    let critical: u64 = r
        .tenants
        .iter()
        .map(|t| t.window.findings_uncovered_critical)
        .sum();
    let tile = |value, label, colour| Tile {
        value,
        label,
        colour,
    };
    let tiles = [
        tile(count("blocked"), "tenants blocked (7 days)", BLOCKED),
        tile(count("at_risk"), "tenants at risk", AT_RISK),
        tile(count("ready"), "tenants ready", READY),
        tile(
            r.rules.iter().map(RuleCount::total).sum(),
            "findings",
            "#1d2329",
        ),
        tile(critical, "uncovered critical (7 days)", BLOCKED),
        tile(
            r.dead_letters.iter().map(|(_, n)| n).sum(),
            "dead letters",
            "#1d2329",
        ),
    ];
    let tenants = r
        .tenants
        .iter()
        .map(|t| TenantRow {
            tenant_id: &t.tenant_id,
            day: t.day,
            status: Badge::new(&t.status),
            status_7d: Badge::new(&t.status_7d),
            shares: t.shares.iter().map(|s| pct(s.share())).collect(),
            w: &t.window,
            next: match &t.next_enforcement {
                Some((s, days)) => format!("{} in {days} d", surface_label(s)),
                None => "none ahead".into(),
            },
        })
        .collect();
    let enforcement = r
        .enforcement
        .iter()
        .map(|(s, d)| format!("{} from {d}", surface_label(s)))
        .collect::<Vec<_>>()
        .join("; ");
    let page = Page {
        r,
        title: format!("Partner MFA readiness: {}", r.policy_version),
        span,
        generated_at,
        version: env!("CARGO_PKG_VERSION"),
        tiles,
        surface_heads: r
            .surfaces
            .iter()
            .map(|s| surface_label(s).split('_').collect())
            .collect(),
        tenants,
        share: share_layout(&r.surfaces, &r.daily, &r.enforcement),
        enforcement,
        rules: rules_chart(&r.rules),
        agents: agents_chart(&r.agents),
    };
    // Rendering into a String fails only if a value's Display fails, which none of these do.
    page.render().unwrap_or_default()
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
        let r = Builder::default().finish("<b>".into(), "<i>'&\"".into(), None);
        let page = render(&r, "<script>");
        assert!(page.contains("Rows from &#60;b&#62;") && !page.contains("Rows from <b>"));
        assert!(page.contains("<title>Partner MFA readiness: &#60;i&#62;&#39;&#38;&#34;</title>"));
        assert!(page.contains("generated &#60;script&#62; by"));
        assert!(!page.contains("<i>") && !page.contains("<script"));
    }

    #[test]
    fn a_findings_context_is_listed_escaped() {
        let mut b = Builder::default();
        let row = |t: &str, ua: &str| crate::report::FindingCount {
            rule_id: "HIGH_RISK".into(),
            severity: "high".into(),
            enforced: false,
            excepted: false,
            policy_version: "v".into(),
            n: 1,
            context: Some(
                serde_json::json!({"sign_in.ip": "203.0.113.7", "sign_in.user_agent": ua}),
            ),
            event_time: t.into(),
            upn: "agent@partner.example".into(),
            user_id: "u1".into(),
        };
        b.findings(&row("2026-03-02 10:00:00", "<script>alert(1)</script>"));
        b.findings(&row("2026-03-02 11:00:00", "curl/8"));
        let r = b.finish("x".into(), "v".into(), None);
        assert_eq!(r.contexts.len(), 2);
        assert_eq!(
            r.contexts[0].event_time, "2026-03-02 11:00:00",
            "newest first"
        );
        let page = render(&r, "now");
        assert!(page.contains("Findings with context"));
        assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("agent@partner.example"));
        // Without findings with context, no section.
        let r = Builder::default().finish("x".into(), "v".into(), None);
        assert!(!render(&r, "now").contains("Findings with context"));
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
        for (i, label) in ["API (App+User)", "azure_admin_portals", "&#60;x&#62;"]
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
