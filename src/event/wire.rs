//! The documents as they arrive, deserialised without copying: every string borrows from
//! the input unless it holds an escape. Unknown fields are skipped; the few fields real
//! exports write with varying types (`errorCode`, `resultType`, `isInteractive`) are read
//! leniently. Any other type mismatch is a bad document.

use super::few::Few;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Borrowed text (owned only when the JSON string holds an escape).
pub type Text<'a> = Cow<'a, str>;

/// `authenticationDetails`, inline up to 4 steps (real records have 1 to 3: a password,
/// then an MFA method, sometimes a satisfied-by-claim step), so a sign-in allocates none.
pub type AuthDetails<'a> = Few<AuthDetail<'a>, 4>;

/// `authenticationRequirementPolicies`, inline up to 2 (real records have 0 or 1).
pub type RequirementPolicies<'a> = Few<RequirementPolicy<'a>, 2>;

/// One document: the union of the top-level fields of every kind we recognise. Which
/// kind it is follows from which fields are present (see `event::recognise`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Wire<'a> {
    /// Azure Monitor / Event Hubs batch: each record is parsed on its own, so one bad
    /// record is one dead letter and the rest of the batch goes on.
    #[serde(borrow)]
    pub records: Option<Vec<&'a RawValue>>,
    /// Microsoft Graph response: a page (`{"value": [object, ...]}`) or one object
    /// (`{"value": {...}}`, as "Get userRegistrationDetails" answers).
    #[serde(borrow)]
    pub value: Option<&'a RawValue>,
    /// A Graph page's `@odata.context` (it names the GDAP relationship of an access
    /// assignment page).
    #[serde(rename = "@odata.context", borrow, deserialize_with = "text")]
    pub odata_context: Option<Text<'a>>,
    /// The project's own kinds say what they are.
    #[serde(rename = "type", borrow, deserialize_with = "text")]
    pub kind: Option<Text<'a>>,

    // Azure Monitor record envelope.
    #[serde(borrow)]
    pub properties: Option<SignInProps<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub category: Option<Text<'a>>,
    /// The record's `operationName`, or a partner API request's (`GET /v1/customers/...`).
    #[serde(borrow, alias = "operationname", deserialize_with = "text")]
    pub operation_name: Option<Text<'a>>,
    #[serde(borrow, alias = "tenantid", deserialize_with = "text")]
    pub tenant_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "lenient_text", alias = "resulttype")]
    pub result_type: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub time: Option<Text<'a>>,

    // A flat Microsoft Graph signIn object.
    #[serde(borrow, deserialize_with = "text")]
    pub created_date_time: Option<Text<'a>>,

    // Directory facts in Microsoft's shapes (only their presence is read here; the
    // record is decoded whole by `event::directory`).
    /// A Graph `directoryAudit`.
    pub activity_display_name: Option<IgnoredAny>,
    /// A `userRegistrationDetails` row (beside `isMfaRegistered`).
    pub is_mfa_capable: Option<IgnoredAny>,
    /// A `delegatedAdminRelationship`.
    pub customer: Option<IgnoredAny>,
    /// A Graph object's `@odata.type` (`#microsoft.graph.delegatedAdminRelationship`).
    #[serde(rename = "@odata.type", borrow, deserialize_with = "text")]
    pub odata_type: Option<Text<'a>>,
    /// A `delegatedAdminAccessAssignment`.
    pub access_container: Option<IgnoredAny>,

    // partner_api_request
    #[serde(borrow, deserialize_with = "text")]
    pub request_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub request_date_time: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_int")]
    pub status_code: Option<i64>,
    #[serde(borrow, deserialize_with = "text")]
    pub application_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub authorization: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub object_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub upn: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_bool")]
    pub mfa_compliant: Option<bool>,
    /// Partner Center's error code in the response (a number or text).
    #[serde(borrow, deserialize_with = "lenient_text")]
    pub error_code: Option<Text<'a>>,
    /// The API's own MFA verdict in its response (since October 2025).
    #[serde(deserialize_with = "lenient_bool")]
    pub is_mfa_compliant: Option<bool>,

    // dashboard_request
    #[serde(borrow, deserialize_with = "text")]
    pub url: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub session_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub roles: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    pub session_amr: Option<Vec<Text<'a>>>,

    // directory facts
    #[serde(borrow, deserialize_with = "text")]
    pub user_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub user_type: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub role: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub action: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_bool")]
    pub is_mfa_registered: Option<bool>,
    #[serde(borrow)]
    pub methods_registered: Option<Vec<Text<'a>>>,
    #[serde(borrow, deserialize_with = "text")]
    pub exception_id: Option<Text<'a>>,
    /// `technical_exception.status` is text; a Graph signIn's `status` is an object, which
    /// this field leaves to the sign-in decoder.
    #[serde(deserialize_with = "text_or_skip")]
    pub status: Option<String>,
    #[serde(borrow, deserialize_with = "text")]
    pub reason: Option<Text<'a>>,
    #[serde(borrow)]
    pub users: Option<Vec<Text<'a>>>,
    #[serde(borrow, deserialize_with = "text")]
    pub expires_at: Option<Text<'a>>,

    // policy_override
    #[serde(borrow, deserialize_with = "text")]
    pub policy: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub surface: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub enforced_from: Option<Text<'a>>,
}

/// The sign-in fields the rules read: `properties` of an Azure Monitor record, or a flat
/// Graph `signIn` object.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInProps<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub created_date_time: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub user_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub user_principal_name: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub user_type: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub home_tenant_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub resource_tenant_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub cross_tenant_access_type: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub app_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub app_display_name: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub resource_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub resource_display_name: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub client_app_used: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub user_agent: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_bool")]
    pub is_interactive: Option<bool>,
    #[serde(borrow, deserialize_with = "text")]
    pub authentication_protocol: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub authentication_requirement: Option<Text<'a>>,
    #[serde(borrow)]
    pub authentication_details: Option<AuthDetails<'a>>,
    #[serde(borrow)]
    pub status: Option<SignInStatus<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub token_issuer_type: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub incoming_token_type: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub session_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub conditional_access_status: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub service_principal_id: Option<Text<'a>>,
    /// Kept raw (validated, not decoded): its flags are read only when a rule asks
    /// ([`device_flags`]), so sign-ins pay nothing for them.
    #[serde(borrow)]
    pub device_detail: Option<&'a RawValue>,
    #[serde(borrow)]
    pub authentication_requirement_policies: Option<RequirementPolicies<'a>>,

    // Read only by the attributes that name them (`sign_in.ip`, `sign_in.risk_*`, ...).
    // Plain texts are borrowed as the fields above (serde scans them anyway); nested
    // objects and arrays stay raw and are decoded only when a rule asks.
    #[serde(borrow, deserialize_with = "text")]
    pub ip_address: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub risk_level_during_sign_in: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub risk_level_aggregated: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub risk_state: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub risk_detail: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub original_transfer_method: Option<Text<'a>>,
    /// `location` (`city`, `state`, `countryOrRegion`, `geoCoordinates`): [`Location`].
    #[serde(borrow)]
    pub location: Option<&'a RawValue>,
    /// `riskEventTypes_v2` (texts).
    #[serde(borrow, rename = "riskEventTypes_v2")]
    pub risk_event_types_v2: Option<&'a RawValue>,
    /// `riskEventTypes` (texts; deprecated by Microsoft for `riskEventTypes_v2`).
    #[serde(borrow)]
    pub risk_event_types: Option<&'a RawValue>,
    /// `appliedConditionalAccessPolicies`: [`CaPolicy`] each.
    #[serde(borrow)]
    pub applied_conditional_access_policies: Option<&'a RawValue>,
}

/// A sign-in's `location`, decoded on demand from the raw value.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Location<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub city: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub state: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub country_or_region: Option<Text<'a>>,
}

/// The texts of a sign-in's `deviceDetail`, decoded on demand (the flags are
/// [`DeviceFlags`]).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceTexts<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub device_id: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub operating_system: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub browser: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub trust_type: Option<Text<'a>>,
}

/// One of `appliedConditionalAccessPolicies` (Graph `appliedConditionalAccessPolicy`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CaPolicy<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub display_name: Option<Text<'a>>,
    /// `success`, `failure`, `notApplied`, `notEnabled`, `reportOnly...`.
    #[serde(borrow, deserialize_with = "text")]
    pub result: Option<Text<'a>>,
    pub enforced_grant_controls: Option<Vec<Option<String>>>,
    /// The authentication strength the policy enforces (Graph beta), when any.
    pub authentication_strength: Option<IgnoredAny>,
}

/// Decodes a raw value lazily: `None` when it is not of the expected shape (a rule then
/// reads the attribute absent; the document was already accepted).
pub fn decode_raw<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    serde_json::from_str(raw.get()).ok()
}

/// A raw list of texts (`riskEventTypes_v2`); `null` items are left out.
pub fn raw_texts(raw: &RawValue) -> Option<Vec<Text<'_>>> {
    let v: Vec<Option<Text<'_>>> = {
        #[derive(Deserialize)]
        struct Item<'a>(#[serde(borrow, deserialize_with = "text")] Option<Text<'a>>);
        let items: Vec<Item<'_>> = decode_raw(raw)?;
        items.into_iter().map(|i| i.0).collect()
    };
    Some(v.into_iter().flatten().collect())
}

/// A sign-in's `deviceDetail` flags.
#[derive(Deserialize, Default, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceFlags {
    #[serde(deserialize_with = "lenient_bool")]
    pub is_managed: Option<bool>,
    #[serde(deserialize_with = "lenient_bool")]
    pub is_compliant: Option<bool>,
}

/// Reads the flags of a raw `deviceDetail` (none when it is not an object of that shape).
pub fn device_flags(raw: &RawValue) -> DeviceFlags {
    serde_json::from_str(raw.get()).unwrap_or_default()
}

/// One of `authenticationRequirementPolicies`: what required MFA.
#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RequirementPolicy<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub requirement_provider: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub detail: Option<Text<'a>>,
}

/// One step of `authenticationDetails`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthDetail<'a> {
    #[serde(borrow, deserialize_with = "text")]
    pub authentication_method: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub authentication_step_requirement: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub authentication_step_result_detail: Option<Text<'a>>,
    #[serde(deserialize_with = "lenient_bool")]
    pub succeeded: Option<bool>,
}

/// A sign-in's `status`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SignInStatus<'a> {
    #[serde(deserialize_with = "lenient_int")]
    pub error_code: Option<i64>,
    #[serde(borrow, deserialize_with = "text")]
    pub failure_reason: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "text")]
    pub additional_details: Option<Text<'a>>,
}

/// Text that borrows from the input unless it holds an escape. Serde's own `Cow` impl
/// (and `#[serde(borrow)]` on an `Option<Cow<str>>`, which it does not see through)
/// would copy every string: an allocation per field per event.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Text<'de>>, D::Error> {
    d.deserialize_option(TextVisitor { numbers: false })
}

/// Text written as a string or a number (`resultType` is `"0"` or `0`): borrowed when it
/// is a string without escapes, owned for a number.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Text<'de>>, D::Error> {
    d.deserialize_any(TextVisitor { numbers: true })
}

/// [`text`] and [`lenient_text`]: a string (borrowed when it can be), `null`, and with
/// `numbers` an integer as its decimal text.
struct TextVisitor {
    numbers: bool,
}

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<Text<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.numbers {
            "a string or a number"
        } else {
            "a string"
        })
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if self.numbers {
            Ok(Some(Cow::Owned(v.to_string())))
        } else {
            Err(E::invalid_type(de::Unexpected::Signed(v), &self))
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if self.numbers {
            Ok(Some(Cow::Owned(v.to_string())))
        } else {
            Err(E::invalid_type(de::Unexpected::Unsigned(v), &self))
        }
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

/// A whole number written as a number or as text (`"50126"`); `null` is absent.
fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a string holding one")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("integer out of range"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            v.trim()
                .parse()
                .map(Some)
                // The value is not quoted: it may be a credential in the wrong field.
                .map_err(|_| E::custom("a string that is not an integer"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A boolean written as `true`, `"True"`, `"false"`; `null` is absent.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean or a string holding one")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let t = v.trim();
            if t.eq_ignore_ascii_case("true") {
                Ok(Some(true))
            } else if t.eq_ignore_ascii_case("false") {
                Ok(Some(false))
            } else if t.is_empty() {
                Ok(None)
            } else {
                // The value is not quoted: it may be a credential in the wrong field.
                Err(E::custom("a string that is neither true nor false"))
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// Text, or `None` for any other JSON value (which is skipped, not rejected).
fn text_or_skip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            while s.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}
