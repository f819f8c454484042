//! The comparisons a test may make (`eq`, `in`, `glob`, `contains`, `regex`, ...): each
//! checked against the attribute's type and compiled to an [`Op`].

use super::attr::Type;
use super::compile::{names, problem, Env, List, MAX_GLOB_NESTING};
use super::cond::Op;
use globset::{GlobBuilder, GlobSetBuilder};
use std::sync::Arc;
use toml::Value;

/// Every comparison a test may name.
pub(super) const OPS: [&str; 14] = [
    "eq",
    "ne",
    "in",
    "not_in",
    "glob",
    "prefix",
    "lt",
    "le",
    "gt",
    "ge",
    "present",
    "contains",
    "regex",
    "if_absent",
];

/// The largest compiled form a `regex` may take (the `regex` crate's size limit): a
/// pattern past it is refused at load, so a policy cannot make matching costly.
pub(super) const MAX_REGEX_BYTES: usize = 1 << 20;

/// A text operand that is not a `[lists]` name but nearly one (a misspelling): then the
/// value is refused with the list's name instead of being compared as it is.
fn near_list_name(one: &str, at: &str, env: &Env<'_>, problems: &mut Vec<String>) -> bool {
    let one = one.trim();
    let near: Vec<&str> = env
        .lists
        .keys()
        .filter(|k| k.as_str() != one && strsim::jaro_winkler(one, k) > 0.9)
        .map(String::as_str)
        .collect();
    if near.is_empty() {
        return false;
    }
    problem(
        problems,
        at,
        format!(
            "`{one}` is not a list of `[lists]`: did you mean {}? (to compare with the text itself, write it inline: [\"{one}\"])",
            near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ")
        ),
    );
    true
}

/// A text comparison's operands: a `[lists]` name (its texts), texts inline, or one text.
fn one_or_many(
    v: &Value,
    at: &str,
    env: &Env<'_>,
    problems: &mut Vec<String>,
) -> Option<Arc<[String]>> {
    match v {
        Value::String(one) if !env.lists.contains_key(one) => {
            if near_list_name(one, at, env, problems) {
                return None;
            }
            Some(Arc::from(vec![one.trim().to_owned()]))
        }
        _ => texts(v, at, env, problems),
    }
}

fn wrong_type(problems: &mut Vec<String>, at: &str, attr: &str, ty: Type, want: &str, got: &Value) {
    problem(
        problems,
        at,
        format!(
            "`{attr}` is {} {}: compare it with {want}, not {}",
            if ty == Type::Int { "an" } else { "a" },
            ty.name(),
            got.type_str()
        ),
    );
}

pub(super) fn op(
    key: &str,
    v: &Value,
    ty: Type,
    attr: &str,
    at: &str,
    env: &Env<'_>,
    problems: &mut Vec<String>,
) -> Option<Op> {
    let bad = |problems: &mut Vec<String>, want: &str| {
        wrong_type(problems, at, attr, ty, want, v);
        None
    };
    match (key, ty) {
        ("present", _) => match v {
            Value::Boolean(b) => Some(Op::Present(*b)),
            _ => bad(problems, "`true` or `false`"),
        },
        ("eq" | "ne", Type::Text) => match v {
            Value::String(s) => Some(if key == "eq" {
                Op::EqText(s.trim().to_owned())
            } else {
                Op::NeText(s.trim().to_owned())
            }),
            _ => bad(problems, "text"),
        },
        ("eq" | "ne", Type::Int) => match v {
            Value::Integer(i) => Some(if key == "eq" {
                Op::EqInt(*i)
            } else {
                Op::NeInt(*i)
            }),
            _ => bad(problems, "a whole number"),
        },
        ("eq" | "ne", Type::Bool) => match v {
            Value::Boolean(b) => Some(if key == "eq" {
                Op::EqBool(*b)
            } else {
                Op::NeBool(*b)
            }),
            _ => bad(problems, "`true` or `false`"),
        },
        ("in" | "not_in", Type::Text) => {
            texts(v, at, env, problems).map(|l| Op::InText(l, key == "not_in"))
        }
        ("in" | "not_in", Type::Int) => {
            ints(v, at, env, problems).map(|l| Op::InInt(l, key == "not_in"))
        }
        // One pattern, or any of a list's (a `[lists]` name, or inline).
        ("glob", Type::Text) => {
            if !matches!(v, Value::String(_) | Value::Array(_)) {
                return bad(
                    problems,
                    "a pattern (text), a list of them or a `[lists]` name",
                );
            }
            let patterns = one_or_many(v, at, env, problems)?;
            let mut built = Vec::with_capacity(patterns.len());
            for p in patterns.iter() {
                match glob(p) {
                    Ok(g) => built.push(g),
                    Err(e) => {
                        problem(problems, at, format!("bad pattern `{p}`: {e}"));
                        return None;
                    }
                }
            }
            match <[_; 1]>::try_from(built) {
                Ok([one]) => Some(Op::Glob(Box::new(one))),
                Err(many) => Some(Op::Globs(Arc::from(many))),
            }
        }
        ("prefix", Type::Text) => match v {
            Value::String(_) | Value::Array(_) => {
                let p = one_or_many(v, at, env, problems)?;
                Some(match &*p {
                    [one] => Op::Prefix(one.clone()),
                    _ => Op::Prefixes(p),
                })
            }
            _ => bad(problems, "text, a list of texts or a `[lists]` name"),
        },
        // A substring (Sigma's `|contains`), ignoring ASCII case: any of the texts.
        ("contains", Type::Text) => match v {
            Value::String(_) | Value::Array(_) => {
                let p = one_or_many(v, at, env, problems)?;
                if p.iter().any(|t| t.is_empty()) {
                    problem(problems, at, "an empty text is in every text: name one");
                    return None;
                }
                Some(Op::Substr(
                    p.iter().map(|t| t.to_ascii_lowercase()).collect(),
                ))
            }
            _ => bad(problems, "text, a list of texts or a `[lists]` name"),
        },
        ("regex", Type::Text) => match v {
            Value::String(s) => match regex::RegexBuilder::new(s)
                .size_limit(MAX_REGEX_BYTES)
                .build()
            {
                Ok(r) => Some(Op::Regex(Box::new(r))),
                Err(e) => {
                    problem(problems, at, format!("bad regular expression: {e}"));
                    None
                }
            },
            _ => bad(problems, "a regular expression (text)"),
        },
        ("if_absent", _) => match v {
            Value::Boolean(b) => Some(Op::IfAbsent(*b)),
            _ => bad(
                problems,
                "`true` or `false` (the test's value when the attribute is absent)",
            ),
        },
        ("lt" | "le" | "gt" | "ge", Type::Int) => match v {
            Value::Integer(i) => Some(match key {
                "lt" => Op::Lt(*i),
                "le" => Op::Le(*i),
                "gt" => Op::Gt(*i),
                _ => Op::Ge(*i),
            }),
            _ => bad(problems, "a whole number"),
        },
        // A `[lists]` name or a list: any of its values; another text: that one value.
        ("contains", Type::List) => one_or_many(v, at, env, problems).map(Op::Contains),
        _ => {
            problem(
                problems,
                at,
                format!(
                    "`{key}` does not apply to `{attr}`, {} {} (it takes: {})",
                    if ty == Type::Int { "an" } else { "a" },
                    ty.name(),
                    match ty {
                        Type::Text =>
                            "eq, ne, in, not_in, glob, prefix, contains, regex, present, if_absent",
                        Type::Int => "eq, ne, in, not_in, lt, le, gt, ge, present, if_absent",
                        Type::Bool => "eq, ne, present, if_absent",
                        Type::List => "contains, present, if_absent",
                    }
                ),
            );
            None
        }
    }
}

/// A glob's matcher, or why it cannot be one. Built through `GlobSetBuilder`, whose
/// errors are returned (`Glob::compile_matcher` panics on a regex it cannot build), after
/// a cap on `{...}` nesting.
fn glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut escaped = false;
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_GLOB_NESTING {
        return Err(format!(
            "`{{...}}` nested {deepest} deep (at most {MAX_GLOB_NESTING})"
        ));
    }
    let g = GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
        .map_err(|e| e.to_string())?;
    GlobSetBuilder::new()
        .add(g.clone())
        .build()
        .map_err(|e| e.to_string())?;
    // INVARIANT: the set above built this glob's regex with the same syntax and size
    // limits as `compile_matcher` (globset 0.4 `new_regex`/`new_regex_set`), so it builds.
    Ok(g.compile_matcher())
}

fn texts(v: &Value, at: &str, env: &Env<'_>, problems: &mut Vec<String>) -> Option<Arc<[String]>> {
    let named = |l: &List| match l {
        List::Texts(t) => Some(Arc::clone(t)),
        List::Ints(_) => None,
    };
    let item = |x: &Value| x.as_str().map(|s| s.trim().to_owned());
    list_value(v, at, env, problems, ("texts", "text"), named, item)
}

fn ints(v: &Value, at: &str, env: &Env<'_>, problems: &mut Vec<String>) -> Option<Arc<[i64]>> {
    let named = |l: &List| match l {
        List::Ints(i) => Some(Arc::clone(i)),
        // An empty list has no type: it serves either (and decides nothing).
        List::Texts(t) if t.is_empty() => Some(Arc::from(Vec::new())),
        List::Texts(_) => None,
    };
    list_value(
        v,
        at,
        env,
        problems,
        ("numbers", "a whole number"),
        named,
        Value::as_integer,
    )
}

/// A list operand: a `[lists]` name, or the values inline; `what` names its items (plural,
/// and one).
fn list_value<T>(
    v: &Value,
    at: &str,
    env: &Env<'_>,
    problems: &mut Vec<String>,
    what: (&str, &str),
    named: impl Fn(&List) -> Option<Arc<[T]>>,
    item: impl Fn(&Value) -> Option<T>,
) -> Option<Arc<[T]>> {
    match v {
        Value::String(name) => match env.lists.get(name) {
            Some(l) => {
                let got = named(l);
                if got.is_none() {
                    let other = if what.0 == "texts" {
                        "numbers"
                    } else {
                        "texts"
                    };
                    problem(
                        problems,
                        at,
                        format!("list `{name}` holds {other}, not {}", what.0),
                    );
                }
                got
            }
            None => {
                problem(
                    problems,
                    at,
                    format!(
                        "`{name}` is not a list of `[lists]` (there: {}); or write the values inline, as [...]",
                        names(env.lists.keys())
                    ),
                );
                None
            }
        },
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.iter().enumerate() {
                match item(x) {
                    Some(t) => out.push(t),
                    None => problem(
                        problems,
                        &format!("{at}[{i}]"),
                        format!("must be {}, not {}", what.1, x.type_str()),
                    ),
                }
            }
            (out.len() == items.len()).then(|| Arc::from(out))
        }
        other => {
            problem(
                problems,
                at,
                format!(
                    "must be a list name or a list of {}, not {}",
                    what.0,
                    other.type_str()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::attr::{Attr, Val};
    use super::super::compile::{compile, Compiled, Env, List};
    use super::super::cond::{Cond, Eval, Tri};
    use std::collections::BTreeMap;

    fn lists() -> BTreeMap<String, List> {
        let mut l = BTreeMap::new();
        let texts = |v: &[&str]| List::Texts(v.iter().map(|s| s.to_string()).collect());
        l.insert("admin_pages".into(), texts(&["*/billing/*", "*/users*"]));
        l.insert("tools".into(), texts(&["python-requests", "curl/"]));
        l.insert("methods".into(), texts(&["mfa", "ngcmfa"]));
        l.insert("to_fill".into(), texts(&[]));
        l
    }

    /// Compiles `cond` (TOML inline table) against `lists()`: the tree, or the problems.
    fn compiled(cond: &str) -> Result<Cond, Vec<String>> {
        let v: toml::Value = toml::from_str(&format!("c = {cond}")).unwrap();
        let (lists, conditions, done) = (lists(), BTreeMap::new(), Compiled::default());
        let env = Env {
            lists: &lists,
            conditions: &conditions,
            scope: None,
            compiled: &done,
            probes: &crate::policy::windows::ProbeNames::default(),
        };
        let mut problems = Vec::new();
        let c = compile(&v["c"], "rules[0].when", &env, &mut problems);
        match c {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(problems),
        }
    }

    /// Evaluates `cond` on an event whose `attr` is `val` (every other attribute absent).
    fn eval(cond: &str, attr: Attr, val: Option<Val<'_>>) -> Tri {
        let c = compiled(cond).unwrap_or_else(|p| panic!("{cond}: {p:?}"));
        let mut e = Eval {
            get: |a: Attr| if a == attr { val } else { None },
            kind: 1,
            memo: None,
            tracing: false,
            probes: None,
        };
        c.eval(&mut e)
    }

    #[test]
    fn an_empty_list_decides_nothing() {
        let country = Some(Val::Text("BR"));
        for c in [
            r#"{ attr = "sign_in.country", not_in = "to_fill" }"#,
            r#"{ attr = "sign_in.country", in = "to_fill" }"#,
            r#"{ attr = "sign_in.country", contains = "to_fill" }"#,
            r#"{ attr = "sign_in.country", glob = "to_fill" }"#,
            r#"{ attr = "sign_in.country", prefix = "to_fill" }"#,
        ] {
            assert_eq!(eval(c, Attr::SignInCountry, country), Tri::Unknown, "{c}");
        }
        // An empty list serves a number attribute too, and absent still reads `if_absent`.
        let code = Some(Val::Int(50126));
        let in_codes = r#"{ attr = "sign_in.error_code", in = "to_fill" }"#;
        assert_eq!(eval(in_codes, Attr::SignInErrorCode, code), Tri::Unknown);
        let absent = r#"{ attr = "sign_in.country", not_in = "to_fill", if_absent = false }"#;
        assert_eq!(eval(absent, Attr::SignInCountry, None), Tri::False);
    }

    #[test]
    fn glob_and_prefix_take_a_list_name_or_an_array() {
        let ua = Attr::SignInUserAgent;
        let url = Some(Val::Text(
            "https://partner.microsoft.com/dashboard/billing/x",
        ));
        let t = |c: &str, v| eval(c, ua, v);
        assert_eq!(
            t(
                r#"{ attr = "sign_in.user_agent", glob = "admin_pages" }"#,
                url
            ),
            Tri::True
        );
        assert_eq!(
            t(
                r#"{ attr = "sign_in.user_agent", glob = ["*/orders/*", "*/BILLING/*"] }"#,
                url
            ),
            Tri::True
        );
        assert_eq!(
            t(
                r#"{ attr = "sign_in.user_agent", glob = "*/orders/*" }"#,
                url
            ),
            Tri::False
        );
        let curl = Some(Val::Text("curl/8.5.0"));
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", prefix = "tools" }"#, curl),
            Tri::True
        );
        assert_eq!(
            t(
                r#"{ attr = "sign_in.user_agent", prefix = ["Wget", "CURL"] }"#,
                curl
            ),
            Tri::True
        );
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", prefix = "Wget" }"#, curl),
            Tri::False
        );
    }

    #[test]
    fn contains_on_text_is_a_substring_and_regex_matches() {
        let ua = Attr::SignInUserAgent;
        let v = Some(Val::Text("Mozilla/5.0 Python-Requests/2.31"));
        let t = |c: &str| eval(c, ua, v);
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", contains = "python-requests" }"#),
            Tri::True
        );
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", contains = "tools" }"#),
            Tri::True
        );
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", contains = ["wget", "go-http"] }"#),
            Tri::False
        );
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", regex = "Requests/2\\.[0-9]+$" }"#),
            Tri::True
        );
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", regex = "^python" }"#),
            Tri::False
        );
        assert_eq!(
            t(r#"{ attr = "sign_in.user_agent", regex = "(?i)^mozilla" }"#),
            Tri::True
        );
    }

    #[test]
    fn if_absent_decides_a_test_on_an_absent_attribute() {
        let ua = Attr::SignInUserAgent;
        let c = r#"{ attr = "sign_in.user_agent", contains = "curl" }"#;
        assert_eq!(eval(c, ua, None), Tri::Unknown);
        let c = r#"{ attr = "sign_in.user_agent", contains = "curl", if_absent = false }"#;
        assert_eq!(eval(c, ua, None), Tri::False);
        assert_eq!(eval(c, ua, Some(Val::Text("curl/8"))), Tri::True);
        // In an `any`, an absent field no longer makes the whole `any` unknown.
        let any = r#"{ any = [
            { attr = "sign_in.user_agent", contains = "curl", if_absent = false },
            { attr = "sign_in.app_name", eq = "x", if_absent = false },
        ] }"#;
        assert_eq!(eval(any, ua, None), Tri::False);
        let not = r#"{ not = { attr = "sign_in.user_agent", eq = "x", if_absent = true } }"#;
        assert_eq!(eval(not, ua, None), Tri::False);
    }

    #[test]
    fn a_misspelled_list_name_and_bad_patterns_are_problems() {
        let bad = |c: &str| compiled(c).err().unwrap_or_default().join("\n");
        let p = bad(r#"{ attr = "token.amr", contains = "method" }"#);
        assert!(p.contains("did you mean `methods`"), "{p}");
        let p = bad(r#"{ attr = "sign_in.user_agent", glob = "admin_page" }"#);
        assert!(p.contains("did you mean `admin_pages`"), "{p}");
        // Far from every list name: a value, as before.
        assert!(compiled(r#"{ attr = "token.amr", contains = "pwd" }"#).is_ok());
        let p = bad(r#"{ attr = "sign_in.user_agent", regex = "(" }"#);
        assert!(p.contains("bad regular expression"), "{p}");
        let p = bad(r#"{ attr = "sign_in.user_agent", regex = "\\w{1000}{1000}" }"#);
        assert!(p.contains("bad regular expression"), "{p}");
        let p = bad(r#"{ attr = "sign_in.user_agent", contains = "" }"#);
        assert!(p.contains("empty text"), "{p}");
        let p = bad(r#"{ attr = "sign_in.success", if_absent = "no" }"#);
        assert!(p.contains("`true` or `false`"), "{p}");
        let p = bad(r#"{ attr = "sign_in.success", regex = "x" }"#);
        assert!(p.contains("if_absent"), "{p}");
    }
}
