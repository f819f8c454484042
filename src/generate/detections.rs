//! The detection scenarios of the generated stream (`--detection-share`): what the
//! `entra-signin-detections` pack looks for, in Microsoft's sign-in shape, drawn from a
//! random stream of their own (a share of 0 leaves the stream as it was).
//!
//! - a successful single-factor sign-in at high risk (`riskLevelDuringSignIn` or
//!   `riskLevelAggregated` `high`, `riskState` `atRisk`);
//! - a successful sign-in from a country the user never signed in from;
//! - a sign-in by device code flow from a device not marked compliant;
//! - an MFA fatigue burst: 7 to 9 sign-ins of one user failing with 500121 within
//!   minutes, half of them followed by the user accepting the prompt;
//! - a password spray: one IP, 5 to 8 users of a tenant failing with 50126 or 50053
//!   within about ten minutes;
//! - a sign-in whose user agent is an attack tool's.

use super::shapes::record;
use super::{EventTime, Tenant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Countries of the unexpected sign-ins (the world's users sign in from `US`).
const COUNTRIES: [(&str, &str, &str); 5] = [
    ("BR", "Sao Paulo", "Sao Paulo"),
    ("NG", "Lagos", "Lagos"),
    ("RO", "Bucharest", "Bucuresti"),
    ("VN", "Hanoi", "Ha Noi"),
    ("NL", "Amsterdam", "Noord-Holland"),
];

/// User agents of attack tools, as public detections list them.
const TOOLS: [&str; 8] = [
    "python-requests/2.31.0",
    "AADInternals",
    "Go-http-client/1.1",
    "curl/8.5.0",
    "BAV2ROPC",
    "TeamFiltration/3.5.0",
    "axios/1.6.2",
    "roadtools",
];

/// The scenarios' own random stream and share.
pub(super) struct Detections {
    rng: ChaCha8Rng,
    share: f64,
}

impl Detections {
    pub(super) fn new(seed: u64, share: f64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(2);
        Self { rng, share }
    }

    /// Whether the next draw starts a scenario (a draw of this stream only).
    pub(super) fn next_is_scenario(&mut self) -> bool {
        self.share > 0.0 && self.rng.random_bool(self.share)
    }

    /// Microseconds after `at` for the scenario's first document.
    pub(super) fn jitter(&mut self) -> i64 {
        self.rng.random_range(0..1_000_000)
    }

    /// One scenario from `now` on: its documents, each with its time, in time order.
    pub(super) fn scenario(
        &mut self,
        tenants: &[Tenant],
        now: EventTime,
    ) -> Vec<(EventTime, Value)> {
        let rng = &mut self.rng;
        let t = &tenants[rng.random_range(0..tenants.len())];
        let u = &t.users[rng.random_range(0..t.users.len())];
        let ok = |rng: &mut ChaCha8Rng, user, at| sign_in(rng, t, user, at, 0, None);
        match rng.random_range(0..6) {
            0 => {
                let mut v = ok(rng, u, now);
                single_factor(&mut v);
                let p = &mut v["properties"];
                let aggregated = rng.random_bool(0.3);
                p["riskLevelDuringSignIn"] = json!(if aggregated { "medium" } else { "high" });
                p["riskLevelAggregated"] = json!("high");
                p["riskState"] = json!("atRisk");
                p["riskDetail"] = json!("none");
                p["riskEventTypes_v2"] = json!(["unfamiliarFeatures", "anonymizedIPAddress"]);
                vec![(now, v)]
            }
            1 => {
                let mut v = ok(rng, u, now);
                if rng.random_bool(0.5) {
                    single_factor(&mut v);
                }
                let (country, city, state) = COUNTRIES[rng.random_range(0..COUNTRIES.len())];
                let ip = format!("198.51.100.{}", rng.random_range(1..255));
                let p = &mut v["properties"];
                p["location"] = json!({"city": city, "state": state, "countryOrRegion": country,
                    "geoCoordinates": {"latitude": 0.0, "longitude": 0.0}});
                p["ipAddress"] = json!(ip);
                v["callerIpAddress"] = json!(ip);
                v["location"] = json!(country);
                vec![(now, v)]
            }
            2 => {
                let mut v = ok(rng, u, now);
                single_factor(&mut v);
                let p = &mut v["properties"];
                p["authenticationProtocol"] = json!("deviceCode");
                p["originalTransferMethod"] = json!("deviceCodeFlow");
                p["clientAppUsed"] = json!("Mobile Apps and Desktop clients");
                p["deviceDetail"]["isCompliant"] = json!(false);
                p["deviceDetail"]["isManaged"] = json!(false);
                vec![(now, v)]
            }
            3 => {
                // MFA fatigue: prompts denied or ignored, then, for half, accepted.
                let n = rng.random_range(7..=9);
                let mut at = now;
                let mut docs = Vec::new();
                for _ in 0..n {
                    docs.push((at, sign_in(rng, t, u, at, 500_121, None)));
                    at = at.plus_seconds(rng.random_range(20..60));
                }
                if rng.random_bool(0.5) {
                    docs.push((at, ok(rng, u, at)));
                }
                docs
            }
            4 => {
                // A spray: one IP, one password, several users.
                let ip = format!("192.0.2.{}", rng.random_range(1..255));
                let n = rng.random_range(5..=8).min(t.users.len());
                let mut users: Vec<usize> = (0..t.users.len()).collect();
                let mut at = now;
                let mut docs = Vec::new();
                for k in 0..n {
                    let pick = rng.random_range(k..users.len());
                    users.swap(k, pick);
                    let code = if rng.random_bool(0.8) { 50_126 } else { 50_053 };
                    docs.push((at, sign_in(rng, t, &t.users[users[k]], at, code, Some(&ip))));
                    at = at.plus_seconds(rng.random_range(30..120));
                }
                docs
            }
            _ => {
                let code = if rng.random_bool(0.5) { 0 } else { 50_126 };
                let mut v = sign_in(rng, t, u, now, code, None);
                v["properties"]["userAgent"] = json!(TOOLS[rng.random_range(0..TOOLS.len())]);
                vec![(now, v)]
            }
        }
    }
}

/// A sign-in record of `u` at `at` with MFA, its `status.errorCode` `code` (0: success),
/// from `ip` when given.
fn sign_in(
    rng: &mut ChaCha8Rng,
    t: &Tenant,
    u: &super::User,
    at: EventTime,
    code: i64,
    ip: Option<&str>,
) -> Value {
    let mut v = record(rng, t, u, at, false);
    if code != 0 {
        let (reason, detail) = match code {
            500_121 => (
                "Authentication failed during strong authentication request.",
                "MFA denied; user declined the authentication",
            ),
            50_053 => ("Account is locked because user tried to sign in too many times with an incorrect user ID or password.", ""),
            _ => ("Invalid username or password or Invalid on-premise username or password.", ""),
        };
        let p = &mut v["properties"];
        p["status"] = if detail.is_empty() {
            json!({"errorCode": code, "failureReason": reason})
        } else {
            json!({"errorCode": code, "failureReason": reason, "additionalDetails": detail})
        };
        p["conditionalAccessStatus"] = json!(if code == 500_121 {
            "failure"
        } else {
            "notApplied"
        });
        if code != 500_121 {
            p["authenticationRequirement"] = json!("singleFactorAuthentication");
            p["authenticationDetails"] = json!([{"authenticationStepDateTime": p["createdDateTime"].clone(),
                "authenticationMethod": "Password", "succeeded": false,
                "authenticationStepResultDetail": "Invalid username or password or Invalid on-premise username or password.",
                "authenticationStepRequirement": "Primary authentication"}]);
        } else if let Some(steps) = p["authenticationDetails"].as_array_mut() {
            if let Some(last) = steps.last_mut() {
                last["succeeded"] = json!(false);
                last["authenticationStepResultDetail"] =
                    json!("MFA denied; user declined the authentication");
            }
        }
        v["resultType"] = json!(code.to_string());
    }
    if let Some(ip) = ip {
        v["properties"]["ipAddress"] = json!(ip);
        v["callerIpAddress"] = json!(ip);
    }
    v
}

/// Turns a successful sign-in with MFA into a single-factor one (as the generator writes
/// those: one password step, no Conditional Access applied).
fn single_factor(v: &mut Value) {
    let p = &mut v["properties"];
    let at = p["createdDateTime"].clone();
    p["authenticationRequirement"] = json!("singleFactorAuthentication");
    p["conditionalAccessStatus"] = json!("notApplied");
    p["status"] = json!({"errorCode": 0});
    p["mfaDetail"] = json!({});
    p["authenticationDetails"] = json!([{"authenticationStepDateTime": at, "authenticationMethod": "Password",
        "succeeded": true, "authenticationStepResultDetail": "Correct password",
        "authenticationStepRequirement": "Primary authentication"}]);
}
