//! The project's own input kinds (`type` names them): partner API and dashboard
//! requests, role assignments, registrations, technical exceptions and policy overrides.

use super::*;

pub(super) fn api_request<'a>(
    wire: Wire<'a>,
    raw: &'a str,
    tokens: &TokenReader,
) -> Result<ApiRequest<'a>, BadDocument> {
    let time = required_time(wire.request_date_time.as_deref(), "requestDateTime")?;
    let caller = match wire.authorization.as_deref() {
        Some(auth) if !auth.trim().is_empty() => match tokens.read(auth) {
            Ok(info) => ApiCaller::Token(info),
            Err(TokenError::Oversized(n)) => {
                return Err(BadDocument::new(
                    Reason::TokenOversized,
                    format!("`authorization` token of {n} bytes"),
                ))
            }
            Err(e @ TokenError::Malformed(_)) => {
                return Err(BadDocument::new(Reason::BadToken, e.to_string()))
            }
        },
        _ => match wire.object_id {
            Some(oid) if !oid.trim().is_empty() => ApiCaller::Report {
                object_id: oid,
                upn: wire.upn,
                mfa_compliant: wire.mfa_compliant,
            },
            _ => ApiCaller::AppOnly,
        },
    };
    let token_claims = match &caller {
        ApiCaller::Token(t) => Some(&t.claims),
        _ => None,
    };
    let tenant_id = wire
        .tenant_id
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .or(token_claims.and_then(|c| c.tid.as_deref()))
        .map(str::to_owned)
        .ok_or_else(|| {
            BadDocument::new(Reason::MissingField, "`tenantId` (nor `tid` in a token)")
        })?;
    let application_id = wire
        .application_id
        .as_deref()
        .or(token_claims.and_then(|c| c.client_id()))
        .map(str::to_owned);
    Ok(ApiRequest {
        event_id: id_or_derived(wire.request_id, raw),
        time,
        tenant_id,
        status_code: wire.status_code,
        operation_name: wire.operation_name,
        application_id,
        caller,
        error_code: wire.error_code,
        mfa_verdict: wire.is_mfa_compliant,
    })
}

pub(super) fn dashboard<'a>(
    wire: Wire<'a>,
    raw: &'a str,
) -> Result<DashboardRequest<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    Ok(DashboardRequest {
        event_id: id_or_derived(wire.request_id, raw),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        user_id: wire.user_id,
        upn: wire.upn,
        session_id: wire.session_id,
        url: required(wire.url, "url")?,
        status_code: wire.status_code,
        roles: wire
            .roles
            .iter()
            .flatten()
            .filter_map(|r| Role::parse(r))
            .collect(),
        session_amr: wire.session_amr,
    })
}

pub(super) fn role<'a>(wire: Wire<'a>, raw: &'a str) -> Result<RoleAssignment<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    let role_text = required(wire.role, "role")?;
    let role = Role::parse(&role_text).ok_or_else(|| {
        let shown: String = role_text.chars().take(40).collect();
        BadDocument::new(Reason::BadValue, format!("unknown `role` `{shown}`"))
    })?;
    let action = match wire
        .action
        .as_deref()
        .map(|a| a.trim().to_ascii_lowercase())
    {
        None => RoleAction::Add,
        Some(a) if a == "add" => RoleAction::Add,
        Some(a) if a == "remove" => RoleAction::Remove,
        Some(a) => {
            let shown: String = a.chars().take(40).collect();
            return Err(BadDocument::new(
                Reason::BadValue,
                format!("unknown `action` `{shown}`"),
            ));
        }
    };
    Ok(RoleAssignment {
        event_id: Cow::Owned(derived_id(raw)),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        user_id: required(wire.user_id, "userId")?,
        upn: wire.upn,
        user_type: wire.user_type,
        role,
        action,
    })
}

pub(super) fn registration<'a>(
    wire: Wire<'a>,
    raw: &'a str,
) -> Result<Registration<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    let registered = wire
        .is_mfa_registered
        .ok_or_else(|| BadDocument::new(Reason::MissingField, "`isMfaRegistered`"))?;
    Ok(Registration {
        event_id: Cow::Owned(derived_id(raw)),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        user_id: required(wire.user_id, "userId")?,
        registered,
        methods: wire.methods_registered.unwrap_or_default(),
    })
}

pub(super) fn exception<'a>(
    wire: Wire<'a>,
    raw: &'a str,
) -> Result<TechnicalException<'a>, BadDocument> {
    let time = required_time(wire.time.as_deref(), "time")?;
    let status_text = wire
        .status
        .ok_or_else(|| BadDocument::new(Reason::MissingField, "`status`"))?;
    let status = ExceptionStatus::parse(&status_text).ok_or_else(|| {
        let shown: String = status_text.chars().take(40).collect();
        BadDocument::new(Reason::BadValue, format!("unknown `status` `{shown}`"))
    })?;
    let expires_at = match wire.expires_at.as_deref() {
        None => None,
        Some(s) => Some(required_time(Some(s), "expiresAt")?),
    };
    Ok(TechnicalException {
        event_id: Cow::Owned(derived_id(raw)),
        time,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        exception_id: required(wire.exception_id, "exceptionId")?,
        status,
        reason: required(wire.reason, "reason")?,
        users: wire.users,
        expires_at,
    })
}

pub(super) fn policy_override<'a>(
    wire: Wire<'a>,
    raw: &'a str,
) -> Result<PolicyOverride<'a>, BadDocument> {
    Ok(PolicyOverride {
        event_id: Cow::Owned(derived_id(raw)),
        time: required_time(wire.time.as_deref(), "time")?,
        tenant_id: required(wire.tenant_id, "tenantId")?,
        policy: required(wire.policy, "policy")?,
        surface: required(wire.surface, "surface")?,
        enforced_from: required_time(wire.enforced_from.as_deref(), "enforcedFrom")?,
    })
}
