//! The attributes of a partner API request and of an Entra audit record, read from the
//! event (and, for a request, its token).

use super::*;

pub(super) fn api<'a>(attr: Attr, a: &'a crate::event::ApiRequest<'a>) -> Option<Val<'a>> {
    use Attr as A;
    let token = match &a.caller {
        ApiCaller::Token(t) => Some(&**t),
        _ => None,
    };
    match attr {
        A::ApiStatus => a.status_code.map(Val::Int),
        A::ApiStatusText => Some(Val::Status(a.status_code)),
        A::ApiOperation => a.operation_name.as_deref().map(|o| Val::Text(o.trim())),
        A::ApiErrorCode => a.error_code.as_deref().map(|c| Val::Text(c.trim())),
        A::ApiMfaVerdict => a.mfa_verdict.map(Val::Bool),
        A::ApiMethod => a
            .operation_name
            .as_deref()
            .and_then(|o| o.split_whitespace().next())
            .map(Val::Text),
        A::ApiAppId => a.application_id.as_deref().map(|s| Val::Text(s.trim())),
        A::ApiCallerKind => Some(Val::Text(match &a.caller {
            ApiCaller::Token(_) => "token",
            ApiCaller::Report { .. } => "report",
            ApiCaller::AppOnly => "app_only",
        })),
        A::ApiAppUser => Some(Val::Bool(match &a.caller {
            ApiCaller::Token(t) => t.claims.is_app_user(),
            ApiCaller::Report { .. } => true,
            ApiCaller::AppOnly => false,
        })),
        A::ApiMfa => match &a.caller {
            ApiCaller::Token(t) if t.claims.is_app_user() => Some(Val::Bool(t.claims.has_mfa())),
            ApiCaller::Report { mfa_compliant, .. } => mfa_compliant.map(Val::Bool),
            _ => None,
        },
        A::ApiMfaEvidence => Some(Val::Evidence(&a.caller)),
        A::TokenAmr => token.map(|t| Val::Strings(t.claims.amr.as_deref().unwrap_or_default())),
        A::TokenPublicClient => token.and_then(|t| {
            t.claims
                .appidacr
                .as_deref()
                .or(t.claims.azpacr.as_deref())
                .map(|v| Val::Bool(v.trim() == "0"))
        }),
        A::TokenPasswordFlow => token.map(|t| Val::Bool(t.claims.is_password_flow())),
        A::TokenSignature => token.map(|t| {
            Val::Text(match t.signature {
                Signature::NotChecked => "unchecked",
                Signature::Valid => "valid",
                Signature::Invalid(_) => "invalid",
            })
        }),
        A::TokenSignatureError => token.and_then(|t| match &t.signature {
            Signature::Invalid(why) => Some(Val::Text(why)),
            _ => None,
        }),
        _ => None,
    }
}

/// An Entra audit record's attributes (read from the facts decoded with it).
pub(super) fn audit<'a>(attr: Attr, a: &'a DirectoryAudit) -> Option<Val<'a>> {
    use Attr as A;
    let f = &a.facts;
    let role = f.role_granted.as_ref().or(f.role_removed.as_ref());
    let text = |s: &'a Option<String>| s.as_deref().map(Val::Text);
    let role_id = |r: &'a RoleChange| r.key().map(Val::Text);
    match attr {
        A::AuditActivity => Some(Val::Text(&a.activity)),
        A::AuditCategory => text(&a.category),
        A::AuditService => text(&a.service),
        A::AuditSuccess => a.success.map(Val::Bool),
        A::AuditActor => text(&a.initiated_by.display),
        A::AuditTarget => text(&f.target),
        A::AuditRoleGranted => f.role_granted.as_ref().and_then(role_id),
        A::AuditRoleRemoved => f.role_removed.as_ref().and_then(role_id),
        A::AuditRoleName => role.and_then(|r| text(&r.name)),
        A::AuditRoleWellKnown => role.and_then(|r| text(&r.well_known)),
        A::AuditRoleEligible => role.map(|r| Val::Bool(r.eligible)),
        A::AuditRoleToUser => role.map(|r| Val::Bool(r.member_is_user)),
        A::AuditGroup => f.group.as_ref().map(|g| Val::Text(&g.group)),
        A::AuditGroupAdded => f.group.as_ref().map(|g| Val::Bool(g.added)),
        A::AuditMfaRemoved => Some(Val::Bool(f.mfa_requirement_removed)),
        A::AuditSecurityInfoDeleted => Some(Val::Bool(f.security_info_deleted)),
        A::AuditCaMfaWeakened => {
            f.ca.as_ref()
                .map(|c| Val::Bool(c.required_mfa_before && !c.requires_mfa_after))
        }
        A::AuditCaPolicy => f.ca.as_ref().map(|c| Val::Text(&c.name)),
        A::AuditCaChange => f.ca.as_ref().map(|c| Val::Text(c.change)),
        _ => None,
    }
}
