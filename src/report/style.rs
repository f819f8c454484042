//! What the page and its charts share: the colours, percentages and the names of surfaces
//! for people. Escaping is the templates' (askama), not ours.

pub(super) const BLOCKED: &str = "#c62828";
pub(super) const AT_RISK: &str = "#ef6c00";
pub(super) const READY: &str = "#2e7d32";
pub(super) const UNKNOWN: &str = "#9e9e9e";
pub(super) const READINESS_ONLY: &str = "#f9a825";
pub(super) const EXCEPTED: &str = "#78909c";
/// The share chart's line colours, by the surface's place in [`Report::surfaces`] (the
/// shipped policies' api, dashboard and delegated admin first), repeating past the end.
pub(super) const SURFACE_COLOURS: [&str; 8] = [
    "#1565c0", "#6a1b9a", "#00897b", "#d81b60", "#5d4037", "#0097a7", "#827717", "#3949ab",
];

pub(super) fn surface_colour(i: usize) -> &'static str {
    SURFACE_COLOURS
        .get(i % SURFACE_COLOURS.len())
        .copied()
        .unwrap_or(UNKNOWN)
}

pub(super) fn pct(v: Option<f64>) -> String {
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
