//! What MFA a sign-in proves, by the policy's `[mfa]` lists (EVENTS.md, "MFA
//! satisfied"): the verdict `sign_in.mfa` reads, and the tests of its parts.

use super::contains_ci;
use crate::event::SignIn;
use crate::policy::model::Policy;

/// Whether a sign-in satisfied MFA, by the policy's `[mfa]` lists (EVENTS.md, "MFA
/// satisfied").
pub fn sign_in_mfa(policy: &Policy, s: &SignIn<'_>) -> bool {
    let p = &s.props;
    let status = p.status.as_ref();
    if status
        .and_then(|st| st.error_code)
        .is_some_and(|c| policy.mfa_demanded_error_codes.contains(&c))
    {
        return false;
    }
    // A requirement is not a performance: a requirement skipped (by IP, by location)
    // is no MFA, whatever `authenticationRequirement` says.
    if mfa_skipped(policy, s) {
        return false;
    }
    let satisfied_text =
        |t: Option<&str>| t.is_some_and(|t| contains_ci(&policy.mfa_satisfied_details, t));
    if p.authentication_requirement
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case("multiFactorAuthentication"))
        && s.succeeded() == Some(true)
    {
        return true;
    }
    if satisfied_text(status.and_then(|st| st.additional_details.as_deref())) {
        return true;
    }
    p.authentication_details.iter().flatten().any(|d| {
        d.succeeded == Some(true)
            && (d
                .authentication_step_requirement
                .as_deref()
                .is_some_and(is_mfa_step)
                || satisfied_text(d.authentication_step_result_detail.as_deref())
                || d.authentication_method
                    .as_deref()
                    .is_some_and(|m| contains_ci(&policy.second_factor_methods, m)))
    })
}

/// `status.additionalDetails` or a step's result detail is one of `[mfa] skipped_details`.
pub fn mfa_skipped(policy: &Policy, s: &SignIn<'_>) -> bool {
    !policy.mfa_skipped_details.is_empty()
        && any_detail(s, |t| contains_ci(&policy.mfa_skipped_details, t))
}

/// Whether `status.additionalDetails`, or a step's `authenticationStepResultDetail`, says
/// what `says` looks for.
pub(super) fn any_detail(s: &SignIn<'_>, says: impl Fn(&str) -> bool) -> bool {
    let p = &s.props;
    p.status
        .as_ref()
        .and_then(|st| st.additional_details.as_deref())
        .is_some_and(&says)
        || p.authentication_details.iter().flatten().any(|d| {
            d.authentication_step_result_detail
                .as_deref()
                .is_some_and(&says)
        })
}

pub(super) fn is_mfa_step(requirement: &str) -> bool {
    requirement.eq_ignore_ascii_case("mfa")
        || contains_ci_bytes(requirement, "multi-factor")
        || contains_ci_bytes(requirement, "multifactor")
}

pub(super) fn contains_ci_bytes(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

pub(super) fn is_partner_center(policy: &Policy, s: &SignIn<'_>) -> bool {
    let p = &s.props;
    [
        &p.app_id,
        &p.app_display_name,
        &p.resource_id,
        &p.resource_display_name,
    ]
    .into_iter()
    .flatten()
    .any(|v| contains_ci(&policy.partner_center_apps, v))
}
