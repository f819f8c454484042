//! "Did you mean": the names close to a misspelt one. A name is close when it is the
//! same after a few typing slips (letters swapped, dropped, doubled or wrong: at most one
//! per three letters of the shorter name, and at least one), or, within one namespace
//! (`sign_in.`), when one is the start of the other (`sign_in.ip_address` offers
//! `sign_in.ip`). A name that only shares a namespace or a prefix is not offered: every
//! `sign_in.*` looks alike to a similarity score, and its offers were unrelated names.

/// The candidates close to `name`, closest first, at most three; none when nothing is.
pub fn nearest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Vec<&'c str> {
    let wanted = name.trim().to_ascii_lowercase();
    let (space, tail) = split(&wanted);
    let mut close: Vec<(usize, &'c str)> = candidates
        .into_iter()
        .filter_map(|c| {
            if c == name {
                return None;
            }
            let lower = c.to_ascii_lowercase();
            let (c_space, c_tail) = split(&lower);
            let slips = strsim::damerau_levenshtein(tail, c_tail);
            let shorter = tail.chars().count().min(c_tail.chars().count());
            let allowed = (shorter / 3).max(1);
            let same_space = space == c_space;
            if same_space && slips <= allowed {
                Some((slips, c))
            } else if same_space
                && shorter >= 2
                && (tail.starts_with(c_tail) || c_tail.starts_with(tail))
            {
                Some((allowed + 1 + tail.len().abs_diff(c_tail.len()), c))
            } else if !same_space && strsim::damerau_levenshtein(&wanted, &lower) <= 1 {
                Some((1, c))
            } else {
                None
            }
        })
        .collect();
    close.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    close.into_iter().take(3).map(|(_, c)| c).collect()
}

/// `ns.rest` as (`ns`, `rest`); a name without a dot has no namespace.
fn split(name: &str) -> (&str, &str) {
    name.split_once('.').unwrap_or(("", name))
}

#[cfg(test)]
mod tests {
    use super::nearest;

    const ATTRS: [&str; 6] = [
        "sign_in.ip",
        "sign_in.country",
        "sign_in.mfa",
        "sign_in.mfa_step_succeeded",
        "sign_in.user_agent",
        "api.mfa",
    ];

    #[test]
    fn slips_are_offered_and_names_that_only_look_alike_are_not() {
        assert_eq!(nearest("sign_in.countyr", ATTRS), ["sign_in.country"]);
        assert_eq!(nearest("sign_in.useragent", ATTRS), ["sign_in.user_agent"]);
        // Case is a slip too (names are matched as written).
        assert_eq!(nearest("Sign_In.MFA", ATTRS)[0], "sign_in.mfa");
        assert_eq!(nearest("sign_in.ip_address", ATTRS), ["sign_in.ip"]);
        assert_eq!(nearest("sgn_in.mfa", ATTRS), ["sign_in.mfa"]);
        // Sharing `sign_in.` and a letter or two is no likeness.
        assert!(nearest("sign_in.risk", ATTRS).is_empty());
        assert!(nearest("sign_in.city", ATTRS).is_empty());
        assert_eq!(
            nearest(
                "MFA_FATIGE",
                ["MFA_FATIGUE", "MFA_FATIGUE_ACCEPTED", "NEW_COUNTRY_SIGN_IN"]
            ),
            ["MFA_FATIGUE"]
        );
    }
}
