//! How mfa-audit reaches ClickHouse: the URL rules (no credentials in it, no plain HTTP
//! to another host unless the operator says so) and the HTTPS client (rustls on ring,
//! certificates checked against the Mozilla roots plus the operator's CA file).

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The largest CA file read.
pub const MAX_CA_FILE_BYTES: u64 = 1 << 20;

/// TCP keep-alive on ClickHouse connections (the crate's own default).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Idle pooled connections are dropped before ClickHouse's own 3 s keep-alive ends (the
/// crate's own default).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// `url` as it may be printed: without user, password, query or fragment (the scheme,
/// host, port and path only). Text that is no URL is shown as `[unparsable url]`.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "[unparsable url]".to_owned(),
    }
}

/// Whether `host` is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a ClickHouse URL: `http` or `https`, no credentials in it (they would be
/// printed, and the crate does not send them: `user` and `password_env`/`password_file`
/// do), and plain HTTP only to this machine unless `allow_plaintext`. The message never
/// holds the URL's password.
pub fn check_url(url: &str, allow_plaintext: bool) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("`{}` is not a URL: {e}", shown_url(url)))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "`{}` carries a user or password in the URL, which would be printed: give `clickhouse.user` and `clickhouse.password_env` or `password_file` instead",
            shown_url(url)
        ));
    }
    let host = u.host_str().unwrap_or_default();
    match u.scheme() {
        "https" => Ok(()),
        "http" if allow_plaintext || is_loopback(host) => Ok(()),
        "http" => Err(format!(
            "`{}` is plain HTTP to another host: the password and the rows (token hashes, user names) would cross the network in clear text; use `https://` (with `clickhouse.ca_file` for a private CA), or set `clickhouse.allow_plaintext = true` where the network itself is trusted",
            shown_url(url)
        )),
        other => Err(format!(
            "`{}`: scheme `{other}` is neither `http` nor `https`",
            shown_url(url)
        )),
    }
}

/// Why the HTTPS client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be read.
    #[error("cannot read `clickhouse.ca_file` `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: crate::bounded::BoundedReadError,
    },
    /// The CA file holds no usable certificate.
    #[error("`clickhouse.ca_file` `{path}`: {message}")]
    Certificates {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the protocol versions (should not happen with its defaults).
    #[error("tls setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The HTTP(S) client handed to the `clickhouse` crate: rustls on ring, the Mozilla roots
/// (`webpki-roots`) plus every certificate of `ca_file`; certificate and host name checks
/// are always on.
pub fn http_client(ca_file: Option<&Path>) -> Result<clickhouse::Client, TlsSetupError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let text = crate::bounded::read_to_string(path, MAX_CA_FILE_BYTES).map_err(|source| {
            TlsSetupError::Read {
                path: shown.clone(),
                source,
            }
        })?;
        let certs = CertificateDer::pem_slice_iter(text.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::Certificates {
                path: shown.clone(),
                message: format!("not PEM certificates: {e}"),
            })?;
        if certs.is_empty() {
            return Err(TlsSetupError::Certificates {
                path: shown,
                message: "holds no `BEGIN CERTIFICATE` block".to_owned(),
            });
        }
        let (_, ignored) = roots.add_parsable_certificates(certs);
        if ignored > 0 {
            return Err(TlsSetupError::Certificates {
                path: shown,
                message: format!("{ignored} certificate(s) could not be parsed"),
            });
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.enforce_http(false);
    let connector: HttpsConnector<HttpConnector> = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector);
    Ok(clickhouse::Client::with_http_client(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            shown_url("http://audit:S3cretCHpass@127.0.0.1:18123/?x=1"),
            "http://127.0.0.1:18123/"
        );
        assert_eq!(
            shown_url("https://ch.example:8443"),
            "https://ch.example:8443/"
        );
        assert_eq!(shown_url("not a url S3cret"), "[unparsable url]");
    }

    #[test]
    fn userinfo_is_refused_without_echoing_the_password() {
        let e = check_url("http://audit:S3cretCHpass@127.0.0.1:18123", true).unwrap_err();
        assert!(!e.contains("S3cretCHpass") && !e.contains("audit"), "{e}");
        assert!(e.contains("password_env"), "{e}");
        assert!(check_url("https://audit@ch.example", false).is_err());
    }

    #[test]
    fn plain_http_goes_only_to_this_machine_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8123",
            "http://localhost:8123",
            "http://[::1]:8123",
            "https://ch.example:8443",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        let e = check_url("http://ch.example:8123", false).unwrap_err();
        assert!(
            e.contains("allow_plaintext") && e.contains("clear text"),
            "{e}"
        );
        assert!(check_url("http://ch.example:8123", true).is_ok());
        assert!(check_url("ftp://ch.example", true).is_err());
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(&bad, "no certificate here\n").unwrap();
        let e = http_client(Some(&bad)).unwrap_err().to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
        let e = http_client(Some(Path::new("/dev/zero")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(http_client(None).is_ok());
    }
}
