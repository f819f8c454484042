//! `MFA_AUDIT_<SECTION>_<KEY>` variables: which keys they may set, and their values.

/// The sections an `MFA_AUDIT_*` variable may set, to split `KAFKA_GROUP_ID` into
/// `kafka.group_id` without guessing. A dotted section is a table in a table
/// (`MFA_AUDIT_SINKS_KAFKA_TOPIC` sets `sinks.kafka.topic`); it comes before any section
/// its name starts with.
pub(super) const SECTIONS: [&str; 6] = [
    "files",
    "sinks.kafka",
    "kafka",
    "clickhouse",
    "pipeline",
    "metrics",
];

/// Every key of every section, as the environment may set it (tables such as
/// `kafka.properties` only from the file).
pub(super) const KEYS: [(&str, &[&str]); 6] = [
    ("files", &["inputs", "out", "framing", "threads"]),
    ("sinks.kafka", &["topic", "brokers", "allow_plaintext"]),
    (
        "kafka",
        &[
            "brokers",
            "topics",
            "group_id",
            "instance_id",
            "dead_letter_topic",
            "allow_plaintext",
        ],
    ),
    (
        "clickhouse",
        &[
            "url",
            "ca_file",
            "allow_plaintext",
            "database",
            "user",
            "password_env",
            "password_file",
            "batch_rows",
            "batch_bytes",
            "flush_interval_ms",
            "request_timeout_ms",
            "validation",
        ],
    ),
    (
        "pipeline",
        &[
            "policy",
            "policies",
            "jwks",
            "checkpoint_interval_ms",
            "replay_window_days",
            "future_skew_hours",
            "token_cache_entries",
            "keep_days",
            "max_tenants",
            "max_users_per_tenant",
            "tenant",
            "max_document_bytes",
            "retry_initial_ms",
            "retry_max_ms",
        ],
    ),
    (
        "metrics",
        &["listen", "max_connections", "header_read_timeout_ms"],
    ),
];

/// `MFA_AUDIT_*` variables that are not configuration keys: the configuration file's
/// path, and the password `schema apply` and `report` use without a file.
pub(super) const NOT_CONFIG: [&str; 2] = ["MFA_AUDIT_CONFIG", "MFA_AUDIT_CLICKHOUSE_PASSWORD"];

/// Splits `KAFKA_GROUP_ID` into (`kafka`, `group_id`), or says what the known keys are.
pub(super) fn env_key(rest: &str) -> Result<(&'static str, &'static str), String> {
    let lower = rest.to_ascii_lowercase();
    let Some(section) = SECTIONS
        .iter()
        .find(|s| lower.starts_with(&format!("{}_", s.replace('.', "_"))))
    else {
        return Err(format!(
            "names no configuration section ({}); MFA_AUDIT_<SECTION>_<KEY> sets a key, and the services scripts' own variables are MFA_SERVICES_*",
            SECTIONS.join(", ")
        ));
    };
    let key = lower.get(section.len() + 1..).unwrap_or_default();
    let known = KEYS
        .iter()
        .find(|(s, _)| s == section)
        .map(|(_, k)| *k)
        .unwrap_or_default();
    match known.iter().find(|k| **k == key) {
        Some(k) => Ok((section, k)),
        None => Err(format!(
            "`{section}.{key}` is not a key ({section} keys: {})",
            known.join(", ")
        )),
    }
}

/// An environment value as the key's TOML type: lists split on commas, numbers and
/// booleans parsed, the rest text.
pub(super) fn env_value(key: &str, value: &str) -> toml::Value {
    if key == "topics" || key == "policies" || key == "inputs" {
        return toml::Value::Array(
            value
                .split(',')
                .map(|s| toml::Value::String(s.trim().to_owned()))
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                .collect(),
        );
    }
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match value {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(value.to_owned()),
    }
}
