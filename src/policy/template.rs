//! A finding's `detail` as the policy file writes it: text with attributes filled in.

use super::attr::{Attr, Scope, Val};
use super::compile::{problem, suggestion};

/// A finding's `detail`, with `{attribute}` or `{attribute|text if absent or empty}` filled in
/// (`{{` and `}}` for braces).
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Attr(Attr, String),
}

impl Template {
    /// Parses a template written at `at`.
    pub fn parse(text: &str, at: &str, problems: &mut Vec<String>) -> Option<Template> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        let mut ok = true;
        while let Some(i) = rest.find(['{', '}']) {
            let (head, tail) = rest.split_at(i);
            lit.push_str(head);
            if let Some(t) = tail.strip_prefix("{{") {
                lit.push('{');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("}}") {
                lit.push('}');
                rest = t;
            } else if let Some(t) = tail.strip_prefix('{') {
                let Some(end) = t.find('}') else {
                    problem(problems, at, "a `{` is not closed (write `{{` for a brace)");
                    return None;
                };
                let (inside, after) = t.split_at(end);
                let (name, fallback) = inside.split_once('|').unwrap_or((inside, ""));
                match Attr::parse(name.trim()) {
                    Some(a) if a.def().scope == Scope::Event => {
                        if !lit.is_empty() {
                            parts.push(Part::Lit(std::mem::take(&mut lit)));
                        }
                        parts.push(Part::Attr(a, fallback.to_owned()));
                    }
                    _ => {
                        problem(
                            problems,
                            at,
                            format!("`{{{name}}}` is not an event attribute{}", suggestion(name)),
                        );
                        ok = false;
                    }
                }
                rest = after.get(1..).unwrap_or_default();
            } else {
                problem(problems, at, "a lone `}` (write `}}` for a brace)");
                return None;
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        ok.then_some(Template { parts })
    }

    /// The attributes it reads.
    pub fn attrs(&self, out: &mut Vec<Attr>) {
        for p in &self.parts {
            if let Part::Attr(a, _) = p {
                if !out.contains(a) {
                    out.push(*a);
                }
            }
        }
    }

    /// Fills it in.
    pub fn render<'v>(&self, get: &mut impl FnMut(Attr) -> Option<Val<'v>>) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Attr(a, fallback) => {
                    // The fallback stands for an absent value and for one that shows as
                    // nothing (an empty list).
                    let before = out.len();
                    if let Some(v) = get(*a) {
                        let _ = write!(out, "{v}");
                    }
                    if out.len() == before {
                        out.push_str(fallback);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_stands_for_an_absent_value_and_an_empty_list() {
        let mut problems = Vec::new();
        let t = Template::parse(
            "roles {user.directory_roles|none}; category {sign_in.category|unknown}",
            "t",
            &mut problems,
        )
        .expect("a valid template");
        assert!(problems.is_empty(), "{problems:?}");
        let held = ["62e90394-69f5-4237-9190-012177145e10".to_owned()];
        let empty: [String; 0] = [];
        let upn = |a: Attr| (a == Attr::SignInCategory).then_some(Val::Text("SignInLogs"));
        assert_eq!(
            t.render(&mut |a| match a {
                Attr::UserDirectoryRoles => Some(Val::Strings(&held)),
                other => upn(other),
            }),
            "roles 62e90394-69f5-4237-9190-012177145e10; category SignInLogs"
        );
        assert_eq!(
            t.render(&mut |a| match a {
                Attr::UserDirectoryRoles => Some(Val::Strings(&empty)),
                _ => None,
            }),
            "roles none; category unknown"
        );
    }
}
