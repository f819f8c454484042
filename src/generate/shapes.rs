//! The documents the generator writes, shaped as the real exports are.

use super::{guid, Tenant, User};
use crate::event::time::EventTime;
use jsonwebtoken::{encode, EncodingKey, Header};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The HS256 secret of the generated tokens (a demo key: `--jwks` can check them against
/// `{"keys":[{"kty":"oct","kid":"mfa-audit-demo","alg":"HS256","k":"<base64url of this>"}]}`).
pub const DEMO_SECRET: &[u8] = b"mfa-audit-demo-signing-key-not-a-secret";

const PARTNER_CENTER_APP: &str = "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd";

struct App {
    id: &'static str,
    name: &'static str,
    resource_id: &'static str,
    resource: &'static str,
}

const APPS: [App; 4] = [
    App {
        id: "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        name: "Azure Portal",
        resource_id: "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        resource: "Windows Azure Service Management API",
    },
    App {
        id: "1950a258-227b-4e31-a9cf-717495945fc2",
        name: "Microsoft Azure PowerShell",
        resource_id: "00000003-0000-0000-c000-000000000000",
        resource: "Microsoft Graph",
    },
    App {
        id: "00000002-0000-0ff1-ce00-000000000000",
        name: "Office 365 Exchange Online",
        resource_id: "00000002-0000-0ff1-ce00-000000000000",
        resource: "Office 365 Exchange Online",
    },
    App {
        id: PARTNER_CENTER_APP,
        name: "Partner Center",
        resource_id: PARTNER_CENTER_APP,
        resource: "Microsoft Partner Center",
    },
];

const LEGACY: [&str; 5] = [
    "IMAP4",
    "POP3",
    "Exchange ActiveSync",
    "Authenticated SMTP",
    "Other clients",
];
const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";

pub(super) fn iso(t: EventTime) -> String {
    // `2020-05-01T10:00:00.1234567Z`: seven fractional digits, as Entra writes them.
    let base = t.to_string().replacen(' ', "T", 1);
    format!("{base}.{:07}Z", (t.0.rem_euclid(1_000_000)) * 10)
}

pub(super) fn write(line: &mut Vec<u8>, v: &Value) {
    // INVARIANT: serialising a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *line, v);
}

fn ca_policies(rng: &mut ChaCha8Rng, mfa: bool) -> Value {
    let names = [
        ("Require MFA for admins", "Mfa"),
        ("Block legacy authentication", "Block"),
        ("Require compliant device", "RequireCompliantDevice"),
        ("Security Defaults", "Mfa"),
    ];
    let n = rng.random_range(1..=names.len());
    Value::Array(
        names[..n]
            .iter()
            .map(|(name, grant)| {
                json!({
                    "conditionsNotSatisfied": 0,
                    "conditionsSatisfied": 3,
                    "displayName": name,
                    "enforcedGrantControls": [grant],
                    "enforcedSessionControls": [],
                    "id": guid(rng),
                    "result": if *grant == "Mfa" && mfa { "success" } else { "notApplied" },
                })
            })
            .collect(),
    )
}

fn sign_in_value(rng: &mut ChaCha8Rng, t: &Tenant, u: &User, now: EventTime, bad: bool) -> Value {
    // Which rule a bad sign-in breaks.
    let kind = if bad { rng.random_range(0..5) } else { 9 };
    let delegated = kind == 0 || (kind == 9 && rng.random_bool(0.2));
    let app = if delegated {
        &APPS[rng.random_range(0..2)]
    } else {
        &APPS[rng.random_range(0..APPS.len())]
    };
    let mfa = !(kind == 0 || kind == 3 || (t.federated && bad));
    let client = if kind == 1 {
        LEGACY[rng.random_range(0..LEGACY.len())]
    } else if rng.random_bool(0.7) {
        "Browser"
    } else {
        "Mobile Apps and Desktop clients"
    };
    let protocol = if kind == 2 { "ropc" } else { "none" };
    let interactive = client == "Browser" && kind != 2;
    let resource_tenant = if delegated {
        t.customers[rng.random_range(0..t.customers.len())].clone()
    } else {
        t.id.clone()
    };
    let issuer = if t.federated || kind == 3 {
        "ADFederationServices"
    } else {
        "AzureAD"
    };
    let failed = !bad && rng.random_bool(0.03);
    let details = if mfa {
        json!([
            {"authenticationStepDateTime": iso(now), "authenticationMethod": "Password", "succeeded": true,
             "authenticationStepResultDetail": "Correct password", "authenticationStepRequirement": "Primary authentication"},
            {"authenticationStepDateTime": iso(now), "authenticationMethod": "Mobile app notification", "succeeded": true,
             "authenticationStepResultDetail": "MFA successfully completed", "authenticationStepRequirement": "Multi-factor authentication"}
        ])
    } else {
        json!([
            {"authenticationStepDateTime": iso(now), "authenticationMethod": "Password", "succeeded": true,
             "authenticationStepResultDetail": "Correct password", "authenticationStepRequirement": "Primary authentication"}
        ])
    };
    let status = if failed {
        json!({"errorCode": 50126, "failureReason": "Invalid username or password or Invalid on-premise username or password."})
    } else if mfa {
        json!({"errorCode": 0, "additionalDetails": "MFA completed in Azure AD"})
    } else {
        json!({"errorCode": 0})
    };
    let id = guid(rng);
    let correlation = guid(rng);
    json!({
        "id": id,
        "createdDateTime": iso(now),
        "userDisplayName": u.name,
        "userPrincipalName": u.upn,
        "userId": u.id,
        "appId": app.id,
        "appDisplayName": app.name,
        "ipAddress": format!("203.0.113.{}", rng.random_range(1..255)),
        "status": status,
        "clientAppUsed": client,
        "userAgent": if kind == 2 { "python-requests/2.31.0" } else { UA },
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "Windows 10", "browser": "Edge 120.0.2210", "isCompliant": false, "isManaged": false, "trustType": ""},
        "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US", "geoCoordinates": {"latitude": 47.674, "longitude": -122.1215}},
        "mfaDetail": if mfa { json!({"authMethod": "Mobile app notification", "authDetail": null}) } else { json!({}) },
        "correlationId": correlation,
        "conditionalAccessStatus": if mfa { "success" } else { "notApplied" },
        "appliedConditionalAccessPolicies": ca_policies(rng, mfa),
        "originalRequestId": id,
        "isInteractive": interactive,
        "tokenIssuerName": if issuer == "AzureAD" { "" } else { "adfs.partner.example" },
        "tokenIssuerType": issuer,
        "authenticationProcessingDetails": [
            {"key": "Legacy TLS (TLS 1.0, 1.1, 3DES)", "value": "False"},
            {"key": "Is CAE Token", "value": "False"}
        ],
        "networkLocationDetails": [],
        "processingTimeInMilliseconds": rng.random_range(40..900),
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "resourceDisplayName": app.resource,
        "resourceId": app.resource_id,
        "resourceTenantId": resource_tenant,
        "homeTenantId": t.id,
        "authenticationDetails": details,
        "authenticationRequirementPolicies": [],
        "authenticationRequirement": if mfa { "multiFactorAuthentication" } else { "singleFactorAuthentication" },
        "authenticationProtocol": protocol,
        "crossTenantAccessType": if delegated { "serviceProvider" } else { "none" },
        "incomingTokenType": "none",
        "userType": if u.guest { "Guest" } else { "Member" },
        "sessionId": u.session,
    })
}

/// One sign-in as Azure Monitor delivers it (a `SignInLogs` or
/// `NonInteractiveUserSignInLogs` record).
pub(super) fn record(
    rng: &mut ChaCha8Rng,
    t: &Tenant,
    u: &User,
    now: EventTime,
    bad: bool,
) -> Value {
    let props = sign_in_value(rng, t, u, now, bad);
    let interactive = props["isInteractive"].as_bool().unwrap_or(false);
    let failed = props["status"]["errorCode"].as_i64().unwrap_or(0) != 0;
    json!({
        "time": iso(now),
        "resourceId": format!("/tenants/{}/providers/Microsoft.aadiam", t.id),
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": if interactive { "SignInLogs" } else { "NonInteractiveUserSignInLogs" },
        "tenantId": t.id,
        "resultType": if failed { "50126" } else { "0" },
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": props["ipAddress"].clone(),
        "correlationId": props["correlationId"].clone(),
        "identity": u.name,
        "Level": 4,
        "location": "US",
        "properties": props,
    })
}

/// One sign-in record per line.
pub(super) fn sign_in(
    line: &mut Vec<u8>,
    rng: &mut ChaCha8Rng,
    t: &Tenant,
    u: &User,
    now: EventTime,
    bad: bool,
) {
    let v = record(rng, t, u, now, bad);
    write(line, &v);
}

/// An Event Hubs batch: `{"records": [...]}`.
pub(super) fn sign_in_batch(
    line: &mut Vec<u8>,
    rng: &mut ChaCha8Rng,
    t: &Tenant,
    u: &User,
    now: EventTime,
    bad: bool,
    violations: f64,
) {
    let n = rng.random_range(2..5);
    let mut records = vec![record(rng, t, u, now, bad)];
    for i in 1..n {
        let other = &t.users[rng.random_range(0..t.users.len())];
        let b = rng.random_bool(violations);
        records.push(record(rng, t, other, now.plus_seconds(i), b));
    }
    write(line, &json!({ "records": records }));
}

/// Mints one token per (user, hour, shape), as a client library would.
pub(super) struct TokenMint {
    cache: HashMap<(String, i64, u8), String>,
    key: EncodingKey,
}

impl TokenMint {
    pub(super) fn new() -> Self {
        Self {
            cache: HashMap::new(),
            key: EncodingKey::from_secret(DEMO_SECRET),
        }
    }

    fn token(&mut self, t: &Tenant, u: &User, now: EventTime, shape: u8) -> String {
        let hour = now.unix_seconds() / 3600;
        let key = (u.id.clone(), hour, shape);
        if let Some(tok) = self.cache.get(&key) {
            return tok.clone();
        }
        if self.cache.len() > 50_000 {
            self.cache.clear();
        }
        let iat = hour * 3600;
        let (amr, appidacr, app_only) = match shape {
            1 => (json!(["pwd"]), "1", false),
            2 => (json!(["pwd"]), "0", false),
            3 => (json!([]), "1", true),
            _ => (json!(["pwd", "mfa"]), "0", false),
        };
        let mut claims = json!({
            "aud": "https://api.partnercenter.microsoft.com",
            "iss": format!("https://sts.windows.net/{}/", t.id),
            "iat": iat, "nbf": iat, "exp": iat + 3900,
            "acr": "1",
            "appid": "23ec45a3-5127-4185-9eff-c8887839e6ab",
            "appidacr": appidacr,
            "family_name": u.name.split(' ').nth(1).unwrap_or(""),
            "given_name": u.name.split(' ').next().unwrap_or(""),
            "ipaddr": "203.0.113.7",
            "name": u.name,
            "oid": u.id,
            "tenant_region_scope": "NA",
            "tid": t.id,
            "unique_name": u.upn,
            "upn": u.upn,
            "uti": "aBcDeFgHiJkLmNoPqRsTuV",
            "ver": "1.0",
        });
        if app_only {
            claims["roles"] = json!(["Partner.Read.All"]);
            claims["idtyp"] = json!("app");
            for k in ["upn", "unique_name", "family_name", "given_name", "name"] {
                if let Some(m) = claims.as_object_mut() {
                    m.remove(k);
                }
            }
        } else {
            claims["amr"] = amr;
            claims["scp"] = json!("user_impersonation");
        }
        let header = Header {
            kid: Some("mfa-audit-demo".into()),
            ..Header::default()
        };
        // INVARIANT: HS256 over a JSON object with a secret key cannot fail.
        let tok = encode(&header, &claims, &self.key).unwrap_or_default();
        self.cache.insert(key, tok.clone());
        tok
    }
}

const OPERATIONS: [&str; 5] = [
    "GET /v1/customers",
    "GET /v1/customers/{customer_id}/subscriptions",
    "POST /v1/customers/{customer_id}/orders",
    "GET /v1/invoices",
    "PATCH /v1/customers/{customer_id}/subscriptions/{subscription_id}",
];

/// A Partner Center API request with its bearer token.
pub(super) fn api_request(
    line: &mut Vec<u8>,
    rng: &mut ChaCha8Rng,
    mint: &mut TokenMint,
    t: &Tenant,
    u: &User,
    now: EventTime,
    bad: bool,
) {
    let shape = if bad {
        rng.random_range(1..3)
    } else if rng.random_bool(0.15) {
        3
    } else {
        0
    };
    let enforced = now >= EventTime::parse("2020-05-01").unwrap_or_default();
    // After enforcement Partner Center answers 401 to a call without MFA; a few slip by.
    let status = if shape == 1 || shape == 2 {
        if enforced && !rng.random_bool(0.2) {
            401
        } else {
            200
        }
    } else if rng.random_bool(0.02) {
        500
    } else {
        200
    };
    let v = if rng.random_bool(0.05) && shape != 3 {
        // A partnerRequests report row, without the token.
        json!({
            "type": "partner_api_request",
            "requestId": guid(rng),
            "correlationId": guid(rng),
            "requestDateTime": iso(now),
            "operationName": OPERATIONS[rng.random_range(0..OPERATIONS.len())],
            "tenantId": t.id,
            "statusCode": status,
            "ipAddress": "203.0.113.7",
            "applicationId": "23ec45a3-5127-4185-9eff-c8887839e6ab",
            "objectId": u.id,
            "upn": u.upn,
            "mfaCompliant": shape == 0,
        })
    } else {
        let token = mint.token(t, u, now, shape);
        json!({
            "type": "partner_api_request",
            "requestId": guid(rng),
            "correlationId": guid(rng),
            "requestDateTime": iso(now),
            "operationName": OPERATIONS[rng.random_range(0..OPERATIONS.len())],
            "tenantId": t.id,
            "statusCode": status,
            "ipAddress": "203.0.113.7",
            "applicationId": "23ec45a3-5127-4185-9eff-c8887839e6ab",
            "authorization": format!("Bearer {token}"),
        })
    };
    write(line, &v);
}

const PAGES: [&str; 6] = [
    "https://partner.microsoft.com/commerce/customers/list",
    "https://partner.microsoft.com/commerce/customers/{c}/subscriptions",
    "https://partner.microsoft.com/dashboard/support/csp/customers/requests",
    "https://partner.microsoft.com/dashboard/billing/invoices",
    "https://partner.microsoft.com/dashboard/home",
    "https://partner.microsoft.com/dashboard/servicehealth",
];

/// A Partner Center dashboard request.
pub(super) fn dashboard_request(
    line: &mut Vec<u8>,
    rng: &mut ChaCha8Rng,
    t: &Tenant,
    u: &User,
    now: EventTime,
    bad: bool,
) {
    let page = PAGES[rng.random_range(0..PAGES.len())].replace("{c}", &t.customers[0]);
    let amr = if bad {
        json!(["pwd"])
    } else {
        json!(["pwd", "mfa"])
    };
    let status = if bad && rng.random_bool(0.7) {
        302
    } else {
        200
    };
    let mut v = json!({
        "type": "dashboard_request",
        "requestId": guid(rng),
        "time": iso(now),
        "tenantId": t.id,
        "userId": u.id,
        "upn": u.upn,
        "sessionId": u.session,
        "url": page,
        "statusCode": status,
        "roles": u.roles,
    });
    if rng.random_bool(0.8) {
        v["sessionAmr"] = amr;
    }
    write(line, &v);
}

/// A role assignment.
pub(super) fn role_assignment(
    line: &mut Vec<u8>,
    t: &Tenant,
    u: &User,
    role: &str,
    now: EventTime,
) {
    write(
        line,
        &json!({
            "type": "partner_role_assignment", "time": iso(now), "tenantId": t.id,
            "userId": u.id, "upn": u.upn, "userType": if u.guest { "Guest" } else { "Member" },
            "role": role, "action": "add",
        }),
    );
}

/// A registration snapshot row.
pub(super) fn registration(line: &mut Vec<u8>, t: &Tenant, u: &User, now: EventTime) {
    let methods = if u.registered {
        json!(["microsoftAuthenticatorPush", "softwareOneTimePasscode"])
    } else {
        json!([])
    };
    write(
        line,
        &json!({
            "type": "mfa_registration", "time": iso(now), "tenantId": t.id, "userId": u.id,
            "isMfaRegistered": u.registered, "methodsRegistered": methods,
        }),
    );
}

/// A technical exception status change.
pub(super) fn exception(
    line: &mut Vec<u8>,
    t: &Tenant,
    reason: &str,
    status: &str,
    now: EventTime,
    expires: Option<EventTime>,
) {
    let mut v = json!({
        "type": "technical_exception", "time": iso(now), "tenantId": t.id,
        "exceptionId": format!("EX-{}", &t.id[..8]), "status": status, "reason": reason,
    });
    if let Some(e) = expires {
        v["expiresAt"] = json!(iso(e));
    }
    let _ = &t.domain;
    write(line, &v);
}
