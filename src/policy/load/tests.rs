//! The loader's own tests: every problem at once, `extends`, JSON.

use super::*;
use crate::policy::model::Severity;

#[test]
fn shipped_policies_load() {
    for (name, _) in SHIPPED {
        let p = load(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.version, name);
    }
    assert!(SHIPPED.iter().any(|(n, _)| *n == DEFAULT_POLICY));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
        version = "x"
        title = ""
        colour = "blue"
        partner_roles = ["AdminAgent", "Wizard"]
        [lists]
        apps = ["a", "b"]
        codes = [1, 2]
        mixed = ["a", 1]
        [conditions]
        loop = { condition = "loop" }
        [[surfaces]]
        name = "api"
        enforced_from = "someday"
        share = { counts = { attr = "event.kind", eq = "x" }, mfa = "api.mfa", excepted_by = ["NOPE"] }
        [[surfaces]]
        name = "api"
        [[surfaces]]
        name = "Portal"
        rollout_columns = "portal_calls"
        share = { counts = { attr = "event.kind", eq = "x" }, mfa = "api.status" }
        [[pages]]
        id = "p"
        name = "P"
        urls = ["ftp://x/[*"]
        roles = ["SalesAgent"]
        [[rules]]
        id = "lower_case"
        when = { attr = "sign_in.colour", eq = "red" }
        surface = "api"
        severity = "urgent"
        summary = "s"
        [[rules]]
        id = "WRONG_TYPE"
        surface = "nowhere"
        severity = "low"
        summary = "s"
        when = { all = [
          { attr = "sign_in.success", eq = "yes" },
          { attr = "sign_in.app_id", in = "no_such_list" },
          { attr = "sign_in.error_code", in = "apps" },
          { any = [] },
          { attr = "api.status", glob = "2*" },
          { attr = "day.findings", gt = 0 },
          { attr = "token.amr", contains = "mfa", colour = 1 },
          { condition = "loop" },
        ] }
        detail = "{sign_in.nope} and {"
        [[rules]]
        id = "OLD_STYLE"
        when = "api_app_user_without_mfa"
        surface = "api"
        severity = "high"
        summary = "s"
        [[counters]]
        name = "my_counter"
        when = { attr = "event.kind", eq = "sign_in" }
        [readiness]
        blocked = { attr = "sign_in.success", eq = true }
        ready = { attr = "day.findings", eq = "none" }
        [session]
        max_age_hours = 0
        partner_center_apps = []
        [mfa]
        satisfied_details = []
        second_factor_methods = []
        demanded_error_codes = ["x"]
        [exceptions]
        response_business_days = 3
        [[exceptions.reasons]]
        id = "r"
        name = "R"
        valid = true
        covers = ["NOPE"]
    "#;
    let err = parse(text, "test", Format::Toml).unwrap_err();
    let PolicyError::Invalid { problems, .. } = err else {
        panic!("{err}")
    };
    let all = problems.join("\n");
    for want in [
        "`title`: must not be empty",
        "`colour`: unknown key",
        "`partner_roles[1]`: `Wizard` is not a role",
        "`lists.mixed`: must hold only texts or only whole numbers",
        "`conditions.loop.condition`: `loop` refers to itself",
        "`surfaces[0].enforced_from`: `someday` is not a date",
        "`surfaces[2].share.mfa`: `api.status` must be a bool attribute",
        "`surfaces[0].share.excepted_by[0]`: `NOPE` is not a rule id",
        "`surfaces[1].name`: surface `api` is declared twice",
        "`surfaces[2].name`: `Portal` must be lower_snake_case",
        "`surfaces[2].rollout_columns`: `portal_calls` is not a column group",
        "`pages[0].roles`: `SalesAgent` is not among",
        "`pages[0].urls[0]`: `ftp://x/[*` must be an absolute https",
        "`rules[0].id`: `lower_case` must be UPPER_SNAKE_CASE",
        "`rules[0].when.attr`: `sign_in.colour` is not an attribute",
        "`rules[0].severity`: `urgent` is not a severity",
        "`rules[1].surface`: `nowhere` is not a declared surface",
        "`rules[1].when.all[0].eq`: `sign_in.success` is a bool: compare it with `true` or `false`, not string",
        "`rules[1].when.all[1].in`: `no_such_list` is not a list of `[lists]`",
        "`rules[1].when.all[2].in`: list `apps` holds texts, not numbers",
        "`rules[1].when.all[3].any`: must hold at least one condition",
        "`rules[1].when.all[4].glob`: `glob` does not apply to `api.status`, an int",
        "`rules[1].when.all[5].attr`: `day.findings` describes a day",
        "`rules[1].when.all[6].colour`: unknown comparison",
        "`rules[1].detail`: `{sign_in.nope}` is not an event attribute",
        "`rules[2].when`: `api_app_user_without_mfa` names a built-in condition",
        "`counters[0].name`: `my_counter` is not a counter column",
        "`readiness.blocked.attr`: `sign_in.success` describes an event",
        "`readiness.ready.eq`: `day.findings` is an int: compare it with a whole number, not string",
        "`session.max_age_hours`: 0 is below the minimum 1",
        "`mfa.demanded_error_codes[0]`: must be a whole number",
        "`exceptions.reasons[0].covers[0]`: `NOPE` is not a rule id",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    // Rules with problems are wrong, not missing: nothing says the policy has none.
    assert!(!all.contains("at least one rule"), "{all}");
}

#[test]
fn only_an_empty_rules_list_lacks_rules() {
    let problems = |rules: &str| {
        let text = format!("version = \"x\"\ntitle = \"t\"\n{rules}\n[[surfaces]]\nname = \"s\"\n");
        match parse(&text, "test", Format::Toml) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    assert!(
        problems("rules = []").contains("`rules`: must hold at least one rule (the list is empty)")
    );
    let missing = problems("");
    assert!(missing.contains("`rules`: is missing"), "{missing}");
    assert!(!missing.contains("at least one rule"), "{missing}");
}

#[test]
fn a_rule_on_a_never_enforced_surface_cannot_read_rule_enforced() {
    let text = SHIPPED[0].1.replace(
        r#"when = { all = [{ condition = "app_user_call" }, { attr = "api.mfa", eq = false }] }"#,
        r#"when = { all = [{ condition = "app_user_call" }, { attr = "rule.enforced", eq = true }] }"#,
    );
    let err = parse(&text, "test", Format::Toml).unwrap_err().to_string();
    assert!(
        err.contains("reads `rule.enforced`, but surface `api` has no `enforced_from`"),
        "{err}"
    );
}

#[test]
fn an_extending_policy_replaces_by_key_and_adds_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(
        &path,
        r#"
        extends = "partner-mfa-2020-05"
        version = "mine"
        [lists]
        modern_clients = ["Browser"]
        [conditions]
        successful_sign_in = { all = [{ attr = "event.kind", eq = "sign_in" }, { attr = "sign_in.error_code", eq = 0 }] }
        [[surfaces]]
        name = "api"
        enforced_from = 2026-04-01
        share = { counts = { condition = "app_user_call" }, mfa = "api.mfa" }
        [[surfaces]]
        name = "azure"
        [[rules]]
        id = "LEGACY_PROTOCOL"
        surface = "sign_in"
        severity = "low"
        summary = "replaced"
        when = { condition = "legacy_sign_in" }
        [[rules]]
        id = "NEW_RULE"
        surface = "azure"
        severity = "low"
        summary = "added"
        when = { attr = "event.kind", eq = "sign_in" }
        [[exceptions.reasons]]
        id = "needs_more_time"
        name = "now valid"
        valid = true
        covers = ["NEW_RULE"]
        "#,
    )
    .unwrap();
    let p = load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"));
    let base = load("partner-mfa-2020-05").unwrap();
    assert_eq!(p.version, "mine");
    assert_eq!(p.title, base.title, "kept from the base");
    let names: Vec<&str> = p.surfaces.iter().map(|s| &*s.name).collect();
    assert_eq!(
        names,
        [
            "api",
            "dashboard",
            "delegated_admin",
            "sign_in",
            "registration",
            "azure"
        ]
    );
    let api = p.surface("api").unwrap();
    assert_eq!(
        p.enforced_from(api).unwrap().day().to_string(),
        "2026-04-01",
        "replaced in place"
    );
    assert_eq!(p.rules.len(), base.rules.len() + 1);
    let legacy = p
        .rules
        .iter()
        .position(|r| &*r.id == "LEGACY_PROTOCOL")
        .unwrap();
    assert_eq!(
        legacy,
        base.rules
            .iter()
            .position(|r| &*r.id == "LEGACY_PROTOCOL")
            .unwrap(),
        "a replaced rule keeps its place"
    );
    assert_eq!(p.rules[legacy].severity, Severity::Low);
    assert_eq!(p.rules.last().unwrap().id.as_ref(), "NEW_RULE");
    assert!(p.reason_covers("needs_more_time", "NEW_RULE"));
    assert!(
        p.reason_covers("third_party_mfa_not_recognised", "LEGACY_PROTOCOL")
            == base.reason_covers("third_party_mfa_not_recognised", "LEGACY_PROTOCOL")
    );
    assert!(
        p.conditions["successful_sign_in"].contains("sign_in.error_code"),
        "replaced whole, not merged"
    );
    // Its problems are placed in the merged lists, and it says so.
    std::fs::write(
        &path,
        "extends = \"partner-mfa-2020-05\"\nversion = \"m\"\n[[rules]]\nid = \"X\"\nsurface = \"nowhere\"\nseverity = \"low\"\nsummary = \"s\"\nwhen = { attr = \"event.kind\", eq = \"sign_in\" }\n",
    )
    .unwrap();
    let e = load(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "`rules[{}].surface`: `nowhere` is not a declared surface",
            base.rules.len()
        )),
        "{e}"
    );
    assert!(
        e.contains("list positions count the entries of `partner-mfa-2020-05` first"),
        "{e}"
    );
    let e = parse("extends = \"partner-mfa-2020-05\"", "x.toml", Format::Toml)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a version of its own"), "{e}");
}

#[test]
fn json_policies_load_like_toml() {
    let (_, text) = SHIPPED[1];
    let table: Table = toml::from_str(text).unwrap();
    let json = serde_json::to_string(&table).unwrap();
    let p = parse(&json, "x.json", Format::Json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.version, "partner-mfa-2020-05");
}

#[test]
fn a_missing_file_names_the_shipped_policies() {
    let e = load("/nonexistent/policy.toml").unwrap_err().to_string();
    assert!(e.contains("partner-mfa-2020-05"), "{e}");
}

#[test]
fn a_device_or_folder_is_refused_not_read() {
    // `/dev/zero` would never end; a pipe would block. Found by fuzzing the loader.
    let e = load("/dev/zero").unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let e = parse(
        "extends = \"/dev/zero\"\nversion = \"x\"",
        "x.toml",
        Format::Toml,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let e = load("/tmp").unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn every_shipped_policy_parses_once_for_the_process() {
    let all = shipped();
    assert_eq!(all.len(), SHIPPED.len(), "every shipped policy is valid");
    assert!(std::ptr::eq(all, shipped()), "parsed once");
}

#[test]
fn a_url_falls_under_the_first_matching_page_in_file_order() {
    // The pages' patterns are matched as one set; the page is still the first one in the
    // file whose pattern matches, whichever of its patterns it is.
    let p = parse(
        r#"
        extends = "partner-mfa-2020-05"
        version = "pages"
        [[pages]]
        id = "everything"
        name = "Every page"
        urls = ["https://partner.microsoft.com/nowhere/*", "https://partner.microsoft.com/*"]
        roles = ["AdminAgent"]
        [[pages]]
        id = "overview"
        name = "Overview"
        urls = ["https://partner.microsoft.com/overview*"]
        roles = ["AdminAgent"]
        "#,
        "pages.toml",
        Format::Toml,
    )
    .unwrap();
    let page = |url: &str| p.protected_page(url).map(|pg| pg.id.as_str());
    assert_eq!(
        page("https://partner.microsoft.com/commerce/x"),
        Some("customers")
    );
    assert_eq!(page("/COMMERCE/x"), Some("customers"));
    assert_eq!(
        page("https://partner.microsoft.com/overview"),
        Some("everything")
    );
    assert_eq!(page("https://example.com/overview"), None);
    let base = load("partner-mfa-2020-05").unwrap();
    assert_eq!(
        base.protected_page("https://partner.microsoft.com/overview")
            .map(|pg| pg.id.as_str()),
        None
    );
}

/// The review's doubling file: `c_i = any [c_{i-1}, c_{i-1}]`, `depth` levels deep.
fn doubling(depth: usize, leaf: &str) -> String {
    let mut text =
        String::from("extends = \"partner-mfa-2020-05\"\nversion = \"doubling\"\n[conditions]\n");
    text.push_str(&format!("c0 = {leaf}\n"));
    for i in 1..=depth {
        text.push_str(&format!(
            "c{i} = {{ any = [{{ condition = \"c{p}\" }}, {{ condition = \"c{p}\" }}] }}\n",
            p = i - 1
        ));
    }
    text.push_str(&format!(
        "[[rules]]\nid = \"DOUBLED\"\nsurface = \"api\"\nseverity = \"low\"\nsummary = \"s\"\nwhen = {{ condition = \"c{depth}\" }}\n"
    ));
    text
}

#[test]
fn a_named_condition_is_compiled_once_however_often_it_is_used() {
    // Inlined, depth 24 is 2^25 nodes (the review: killed after 60 s at 2.2 GB); shared,
    // the tree grows by one named condition of three nodes per level.
    let nodes = |depth: usize| {
        let p = parse(
            &doubling(depth, r#"{ attr = "api.status", eq = 200 }"#),
            "doubling.toml",
            Format::Toml,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let rule = p.rules.iter().find(|r| &*r.id == "DOUBLED").unwrap();
        rule.when.nodes()
    };
    let (n10, n24) = (nodes(10), nodes(24));
    assert_eq!(n24 - n10, 14 * 3, "three nodes per level: {n10} -> {n24}");
    assert_eq!(
        n24, 74,
        "the rule, then per level: a named condition, its `any`, a reference"
    );
}

#[test]
fn a_doubling_chain_that_cannot_be_remembered_is_a_load_problem() {
    // Conditions that read `rule.*` are evaluated at every use: 2^24 tests per event.
    let e = parse(
        &doubling(24, r#"{ attr = "rule.enforced", eq = true }"#),
        "doubling.toml",
        Format::Toml,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("one evaluation would visit"), "{e}");
}

#[test]
fn a_glob_nested_too_deep_is_a_load_problem_not_a_panic() {
    let deep = |n: usize| format!("{}a{}", "{".repeat(n), "}".repeat(n));
    for n in [40, 300] {
        let text = format!(
            "extends = \"partner-mfa-2020-05\"\nversion = \"g\"\n[[rules]]\nid = \"G\"\nsurface = \"api\"\nseverity = \"low\"\nsummary = \"s\"\nwhen = {{ attr = \"api.operation\", glob = \"{}\" }}\n",
            deep(n)
        );
        let e = parse(&text, "g.toml", Format::Toml)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad pattern"), "{e}");
    }
    // A few levels are fine.
    let ok = "extends = \"partner-mfa-2020-05\"\nversion = \"g\"\n[[rules]]\nid = \"G\"\nsurface = \"api\"\nseverity = \"low\"\nsummary = \"s\"\nwhen = { attr = \"api.operation\", glob = \"{a,{b,{c,d}}}*\" }\n";
    parse(ok, "g.toml", Format::Toml).unwrap_or_else(|e| panic!("{e}"));
}
