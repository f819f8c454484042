//! The broker and ClickHouse that `scripts/services start kafka clickhouse` runs, as the
//! stream and findings-topic tests reach them (its `MFA_SERVICES_*` port overrides
//! honoured), and what those tests share about a running processor.

use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

/// The broker `scripts/services start kafka` runs.
pub fn brokers() -> String {
    super::service_addr("KAFKA", 9092)
}

/// Fails, saying how to start them, unless the broker and ClickHouse answer: a missing
/// server is never a skipped test.
pub fn require_services() {
    for (name, addr) in [
        ("kafka (tansu)", brokers()),
        ("clickhouse", super::service_addr("CLICKHOUSE_HTTP", 8123)),
    ] {
        assert!(
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok(),
            "{name} is not answering on {addr}: start the test services with \
             `scripts/services start kafka clickhouse` (scripts/test does it)"
        );
    }
}

/// A child's standard error, line by line, as it comes.
pub fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Creates a topic on the local broker (tansu does not create them on first use).
pub fn create_topic(topic: &str, partitions: i32) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(mfa_audit::source::kafka::ensure_topic(
            &brokers(),
            &std::collections::BTreeMap::new(),
            topic,
            partitions,
            &[],
        ))
        .unwrap();
}
