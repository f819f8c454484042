//! The configuration's unit tests.

use super::*;

const BASE: &str = r#"
    [kafka]
    brokers = "127.0.0.1:9092"
    topics = ["events"]
    [clickhouse]
    url = "http://127.0.0.1:8123"
"#;

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let c = Config::parse(BASE, "t", &[]).unwrap();
    assert_eq!(c.kafka.group_id, "mfa-audit");
    assert_eq!(c.clickhouse.database, "mfa_audit");
    assert_eq!(c.pipeline.policy, crate::policy::DEFAULT_POLICY);
    assert!(c.clickhouse.batch_rows < 1_048_576);
}

#[test]
fn environment_overrides_every_key() {
    let env = vec![
        ("MFA_AUDIT_KAFKA_GROUP_ID".to_owned(), "g2".to_owned()),
        ("MFA_AUDIT_KAFKA_TOPICS".to_owned(), "a, b".to_owned()),
        (
            "MFA_AUDIT_CLICKHOUSE_BATCH_ROWS".to_owned(),
            "500".to_owned(),
        ),
        (
            "MFA_AUDIT_PIPELINE_POLICY".to_owned(),
            "partner-mfa-2019-09".to_owned(),
        ),
        ("MFA_AUDIT_CONFIG".to_owned(), "/x.toml".to_owned()),
        ("MFA_SERVICES_KAFKA_PORT".to_owned(), "9092".to_owned()),
    ];
    let c = Config::parse(BASE, "t", &env).unwrap();
    assert_eq!(c.kafka.group_id, "g2");
    assert_eq!(c.kafka.topics, vec!["a", "b"]);
    assert_eq!(c.clickhouse.batch_rows, 500);
    assert_eq!(c.pipeline.policy, "partner-mfa-2019-09");
}

#[test]
fn secrets_stay_out_of_the_file_and_out_of_debug_output() {
    let text = format!("{BASE}\n[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n");
    let err = Config::parse(
        &text.replace("[clickhouse]", "[clickhouse]\npassword_env = \"CH_PW\""),
        "t",
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("properties_env"), "{err}");
    let c = Config::parse(
        &BASE.replace(
            "[clickhouse]",
            "[clickhouse]\npassword_env = \"MFA_AUDIT_TEST_NO_SUCH_VAR\"",
        ),
        "t",
        &[],
    )
    .unwrap();
    let e = c.clickhouse_password("t").unwrap_err().to_string();
    assert!(e.contains("MFA_AUDIT_TEST_NO_SUCH_VAR"), "{e}");
    assert!(!format!("{c:?}").contains("hunter2"));
}

/// F14 of the security review of 2026-12: private keys and passphrases in
/// `[kafka.properties]` were accepted, then printed when librdkafka refused them.
#[test]
fn private_keys_and_passphrases_stay_out_of_the_file() {
    for key in [
        "ssl.key.pem",
        "sasl.oauthbearer.assertion.private.key.pem",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "sasl.jaas.config",
    ] {
        let text = format!(
            "{BASE}\n[kafka.properties]\n\"{key}\" = \"-----BEGIN PRIVATE KEY-----MIIEvQ\"\n"
        );
        let e = Config::parse(&text, "t", &[]).unwrap_err().to_string();
        assert!(
            e.contains(key) && e.contains("properties_env"),
            "{key}: {e}"
        );
        assert!(!e.contains("MIIEvQ"), "{key}: {e}");
    }
    // Through `properties_env` they are fine, and Debug shows the variable's name only.
    let text = format!("{BASE}\n[kafka.properties_env]\n\"ssl.key.pem\" = \"KEY_PEM\"\n");
    let c = Config::parse(&text, "t", &[]).unwrap();
    assert!(format!("{c:?}").contains("KEY_PEM"));
}

/// F14: the database name went unquoted into `CREATE DATABASE`.
#[test]
fn the_database_name_is_an_identifier() {
    let text = BASE.replace(
        "[clickhouse]",
        "[clickhouse]\ndatabase = \"sec_inj ENGINE = Ordinary\"",
    );
    let e = Config::parse(&text, "t", &[]).unwrap_err().to_string();
    assert!(
        e.contains("clickhouse.database") && e.contains("identifier"),
        "{e}"
    );
    let env = vec![("MFA_AUDIT_CLICKHOUSE_DATABASE".to_owned(), "a;b".to_owned())];
    assert!(Config::parse(BASE, "t", &env).is_err());
}

/// F14: a URL with a password was accepted and printed in every message.
#[test]
fn a_url_with_credentials_is_refused_without_its_password() {
    let text = BASE.replace(
        "url = \"http://127.0.0.1:8123\"",
        "url = \"http://audit:S3cretCHpass@127.0.0.1:18124\"",
    );
    let e = Config::parse(&text, "t", &[]).unwrap_err().to_string();
    assert!(!e.contains("S3cretCHpass"), "{e}");
    assert!(
        e.contains("clickhouse.url") && e.contains("password_env"),
        "{e}"
    );
    // Debug never shows a URL's credentials either (a config built in code).
    let mut c = Config::parse(BASE, "t", &[]).unwrap();
    c.clickhouse.url = "https://audit:S3cretCHpass@ch.example".into();
    assert!(!format!("{c:?}").contains("S3cretCHpass"));
}

/// F2: plain transports to another host are refused unless the operator says so.
#[test]
fn plaintext_to_another_host_needs_the_override() {
    let remote_ch = BASE.replace("http://127.0.0.1:8123", "http://ch.example:8123");
    let e = Config::parse(&remote_ch, "t", &[]).unwrap_err().to_string();
    assert!(
        e.contains("allow_plaintext") && e.contains("https://"),
        "{e}"
    );
    let allowed = remote_ch.replace("[clickhouse]", "[clickhouse]\nallow_plaintext = true");
    assert!(Config::parse(&allowed, "t", &[]).is_ok());
    let https = BASE.replace("http://127.0.0.1:8123", "https://ch.example:8443");
    let https = https.replace("[clickhouse]", "[clickhouse]\nca_file = \"ca.pem\"");
    assert!(Config::parse(&https, "t", &[]).is_ok());

    let sasl = |brokers: &str, protocol: Option<&str>| {
        let mut t = BASE.replace("127.0.0.1:9092", brokers);
        t.push_str("\n[kafka.properties]\n\"sasl.mechanisms\" = \"PLAIN\"\n");
        if let Some(p) = protocol {
            t.push_str(&format!("\"security.protocol\" = \"{p}\"\n"));
        }
        t.push_str("[kafka.properties_env]\n\"sasl.password\" = \"EH_CONN\"\n");
        Config::parse(&t, "t", &[])
    };
    for (brokers, protocol) in [
        ("ns.servicebus.windows.net:9093", Some("SASL_PLAINTEXT")),
        ("ns.servicebus.windows.net:9093", None),
        ("127.0.0.1:9092,10.0.0.5:9092", Some("sasl_plaintext")),
    ] {
        let e = sasl(brokers, protocol).unwrap_err().to_string();
        assert!(
            e.contains("SASL_SSL") && e.contains("kafka.allow_plaintext"),
            "{e}"
        );
    }
    assert!(sasl("ns.servicebus.windows.net:9093", Some("SASL_SSL")).is_ok());
    assert!(sasl("127.0.0.1:9092", Some("SASL_PLAINTEXT")).is_ok());
    assert!(sasl("localhost:9092,[::1]:9092", None).is_ok());
    let mut t = BASE.replace("127.0.0.1:9092", "kafka.internal:9092");
    t = t.replace("[kafka]", "[kafka]\nallow_plaintext = true");
    t.push_str("\n[kafka.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n");
    assert!(Config::parse(&t, "t", &[]).is_ok());
}

/// F14: `--config` and `clickhouse.password_file` read devices and FIFOs unbounded.
#[test]
fn config_and_password_files_must_be_small_regular_files() {
    let e = Config::load(Path::new("/dev/zero"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let c = Config::parse(
        &BASE.replace(
            "[clickhouse]",
            "[clickhouse]\npassword_file = \"/dev/zero\"",
        ),
        "t",
        &[],
    )
    .unwrap();
    let e = c.clickhouse_password("t").unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
    let e = Config::load(&big, &[]).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(Config::parse(&format!("{BASE}\n[pipeline]\ncolour = 1\n"), "t", &[]).is_err());
    // Brokers without topics: the stream mode, incomplete.
    let e = Config::parse(
        &BASE.replace("topics = [\"events\"]", "topics = []"),
        "t",
        &[],
    )
    .unwrap()
    .check()
    .unwrap_err();
    assert!(e.contains("kafka.topics"), "{e}");
    let env = vec![(
        "MFA_AUDIT_CLICKHOUSE_BATCH_ROWS".to_owned(),
        "2000000".to_owned(),
    )];
    assert!(Config::parse(BASE, "t", &env).is_err());
}

#[test]
fn the_findings_topic_takes_the_inputs_transport_and_its_own_keys() {
    let text = format!(
        "{BASE}\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"PLAIN\"\n[sinks.kafka]\ntopic = \"findings\"\n[sinks.kafka.properties]\n\"linger.ms\" = \"50\"\n"
    );
    let c = Config::parse(&text, "t", &[]).unwrap();
    assert!(c.check().is_ok());
    let s = c.findings_topic("t").unwrap().unwrap();
    assert_eq!(s.topic, "findings");
    assert_eq!(s.brokers, "127.0.0.1:9092");
    assert_eq!(s.properties["security.protocol"], "SASL_SSL");
    assert_eq!(s.properties["linger.ms"], "50");
    // The environment sets its keys; a file-mode sink names its own brokers.
    let env = vec![
        (
            "MFA_AUDIT_SINKS_KAFKA_TOPIC".to_owned(),
            "from-env".to_owned(),
        ),
        (
            "MFA_AUDIT_SINKS_KAFKA_BROKERS".to_owned(),
            "10.0.0.7:9093".to_owned(),
        ),
        ("MFA_AUDIT_FILES_INPUTS".to_owned(), "a.ndjson".to_owned()),
        ("MFA_AUDIT_FILES_OUT".to_owned(), "out".to_owned()),
    ];
    let c = Config::from_env(&env).unwrap();
    assert_eq!(c.mode(), Mode::Files);
    let s = c.findings_topic("t").unwrap().unwrap();
    assert_eq!(
        (s.topic.as_str(), s.brokers.as_str()),
        ("from-env", "10.0.0.7:9093")
    );
    // No topic: no sink.
    assert!(Config::parse(BASE, "t", &[])
        .unwrap()
        .findings_topic("t")
        .unwrap()
        .is_none());
}

#[test]
fn a_findings_topic_that_cannot_work_is_refused_with_its_reason() {
    let files = |sink: &str| {
        let env = vec![
            ("MFA_AUDIT_FILES_INPUTS".to_owned(), "a.ndjson".to_owned()),
            ("MFA_AUDIT_FILES_OUT".to_owned(), "out".to_owned()),
        ];
        Config::parse(&format!("[sinks.kafka]\n{sink}"), "t", &env)
    };
    for (sink, want) in [
        ("topic = \"f\"\n", "needs brokers"),
        ("topic = \"a b\"\nbrokers = \"127.0.0.1:9092\"\n", "not allowed in a topic name"),
        ("brokers = \"127.0.0.1:9092\"\n", "names no `topic`"),
        (
            "topic = \"f\"\nbrokers = \"eh.servicebus.windows.net:9093\"\n[sinks.kafka.properties]\n\"sasl.mechanism\" = \"PLAIN\"\n",
            "sinks.kafka.allow_plaintext",
        ),
    ] {
        let e = files(sink).unwrap().check().unwrap_err();
        assert!(e.contains(want), "{sink}: {e}");
    }
    let e = files("topic = \"f\"\n[sinks.kafka.properties]\n\"sasl.password\" = \"hunter2\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sinks.kafka.properties_env") && !e.contains("hunter2"),
        "{e}"
    );
    // The input's own topic would be read back.
    let c = Config::parse(
        &format!("{BASE}\n[sinks.kafka]\ntopic = \"events\"\n"),
        "t",
        &[],
    )
    .unwrap();
    assert!(c.check().unwrap_err().contains("input topic"));
    assert!(c.findings_topic("t").is_err());
    // Unknown keys are refused as everywhere.
    assert!(files("topic = \"f\"\npartitions = 3\n").is_err());
}

#[test]
fn an_unknown_environment_key_is_named_not_taken() {
    for (name, want) in [
        (
            "MFA_AUDIT_KAFKA_PORT",
            "`kafka.port` is not a key (kafka keys: brokers",
        ),
        ("MFA_AUDIT_SERVICES_DIR", "names no configuration section"),
        ("MFA_AUDIT_NO_SHARED", "MFA_SERVICES_*"),
    ] {
        let env = vec![(name.to_owned(), "1".to_owned())];
        let e = Config::parse(BASE, "t", &env).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
    }
}

#[test]
fn one_configuration_for_both_modes_with_the_same_defaults() {
    let files = Config::from_env(&[
        (
            "MFA_AUDIT_FILES_INPUTS".to_owned(),
            "a.ndjson, b.ndjson".to_owned(),
        ),
        ("MFA_AUDIT_FILES_OUT".to_owned(), "out".to_owned()),
    ])
    .unwrap();
    assert_eq!(files.mode(), Mode::Files);
    assert_eq!(files.files.inputs, ["a.ndjson", "b.ndjson"]);
    assert!(files.check().is_ok());
    let stream = Config::parse(BASE, "t", &[]).unwrap();
    assert_eq!(stream.mode(), Mode::Stream);
    // Every default is the same in both modes but the replay window (see
    // `default_replay_window_days`).
    assert_eq!(files.pipeline.replay_window_days, 31);
    assert_eq!(stream.pipeline.replay_window_days, 1);
    assert_eq!(files.pipeline.policy, stream.pipeline.policy);
    assert_eq!(
        files.pipeline.max_document_bytes,
        stream.pipeline.max_document_bytes
    );
    assert_eq!(
        files.pipeline.token_cache_entries,
        stream.pipeline.token_cache_entries
    );
    // A window set anywhere is kept whatever the mode.
    let set = Config::parse(
        &format!("{BASE}\n[pipeline]\nreplay_window_days = 7\n"),
        "t",
        &[],
    )
    .unwrap();
    assert_eq!(set.pipeline.replay_window_days, 7);
    // A file-mode configuration without inputs says what to give.
    let e = Config::from_env(&[]).unwrap().check().unwrap_err();
    assert!(e.contains("--input PATH") && e.contains("--out DIR"), "{e}");
}
