//! Bearer tokens: claims are read in memory, the raw token is never kept, logged or
//! written. Rows carry its SHA-256 instead. Decoded claims are cached by that hash,
//! since one token serves many calls in its hour of life.

use dashmap::DashMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use siphasher::sip128::SipHasher13;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// The largest token accepted; Entra access tokens are 1–4 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// How many decoded tokens the cache holds before it drops the expired ones.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 100_000;
/// How many bytes of decoded tokens the cache holds before it drops the expired ones
/// (an Entra token's claims take about 1 KB: some 60,000 tokens).
pub const TOKEN_CACHE_MAX_BYTES: usize = 64 << 20;
/// The most values kept of a list claim (`amr`, `roles`): Entra writes a handful. Empty
/// and repeated values are dropped first, and `mfa` and `pwd` are kept wherever they
/// stand, so the rules' verdicts do not depend on where the list was cut.
pub const MAX_CLAIM_LIST: usize = 32;
/// The longest value kept in a list claim, in bytes; longer ones are dropped.
pub const MAX_CLAIM_VALUE_BYTES: usize = 256;

/// Why a token could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token of {0} bytes is over the {MAX_TOKEN_BYTES}-byte limit")]
    Oversized(usize),
    /// Not three base64url parts with a JSON claims part.
    #[error("token is not a readable JWT: {0}")]
    Malformed(String),
}

/// The largest JWKS file read (Microsoft's published key sets are a few KiB).
pub const MAX_JWKS_BYTES: u64 = 1 << 20;

/// Why `--jwks FILE` could not be loaded.
#[derive(Debug, Error)]
pub enum JwksError {
    /// The file could not be read.
    #[error("cannot read JWKS file `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause (not a regular file, over [`MAX_JWKS_BYTES`], unreadable).
        source: crate::bounded::BoundedReadError,
    },
    /// The file is not a JSON Web Key Set.
    #[error("`{path}` is not a JSON Web Key Set: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// The claims the rules read (EVENTS.md, "Token claims read").
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Claims {
    /// Tenant id.
    pub tid: Option<String>,
    /// Object id of the user (App+User) or service principal (app-only).
    pub oid: Option<String>,
    /// User principal name.
    pub upn: Option<String>,
    /// v1 tokens' fallback for `upn`.
    pub unique_name: Option<String>,
    /// Authentication methods references: MFA is the exact value `mfa`.
    #[serde(deserialize_with = "bounded_list")]
    pub amr: Option<Vec<String>>,
    /// Delegated scopes: present on App+User tokens.
    pub scp: Option<String>,
    /// Application roles: app-only tokens.
    #[serde(deserialize_with = "bounded_list")]
    pub roles: Option<Vec<String>>,
    /// `app` or `user` where the issuer writes it.
    pub idtyp: Option<String>,
    /// Client application (v1).
    pub appid: Option<String>,
    /// Client application (v2).
    pub azp: Option<String>,
    /// Client authentication (v1): `0` is a public client.
    #[serde(deserialize_with = "text_or_number")]
    pub appidacr: Option<String>,
    /// Client authentication (v2).
    #[serde(deserialize_with = "text_or_number")]
    pub azpacr: Option<String>,
    /// Issued at (seconds).
    pub iat: Option<i64>,
    /// Expires (seconds).
    pub exp: Option<i64>,
}

/// A list claim, bounded ([`MAX_CLAIM_LIST`], [`MAX_CLAIM_VALUE_BYTES`]): a 16 KiB
/// token of thousands of empty `amr` values would otherwise cost ~128 KB in the cache
/// (the security review of 2026-12, F8). The values are read borrowed and only the kept
/// ones are copied.
fn bounded_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of strings")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut s: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out: Vec<String> = Vec::new();
            while let Some(v) = s.next_element::<std::borrow::Cow<'de, str>>()? {
                let keep = !v.is_empty()
                    && v.len() <= MAX_CLAIM_VALUE_BYTES
                    && (out.len() < MAX_CLAIM_LIST || v == "mfa" || v == "pwd")
                    && !out.iter().any(|o| *o == *v);
                if keep {
                    out.push(v.into_owned());
                }
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(V)
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

impl Claims {
    /// App+User (delegated) rather than app-only: `idtyp` decides where present, then the
    /// presence of `scp`.
    pub fn is_app_user(&self) -> bool {
        match self.idtyp.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("app") => false,
            Some(t) if t.eq_ignore_ascii_case("user") => true,
            _ => self.scp.as_deref().is_some_and(|s| !s.trim().is_empty()),
        }
    }

    /// `amr` holds the exact value `mfa` (`ngcmfa` is not `mfa`).
    pub fn has_mfa(&self) -> bool {
        self.amr.iter().flatten().any(|m| m == "mfa")
    }

    /// Obtained by the password flow: `amr` is only `pwd` and the client is public.
    pub fn is_password_flow(&self) -> bool {
        let only_pwd = matches!(self.amr.as_deref(), Some([m]) if m == "pwd");
        let public = self
            .appidacr
            .as_deref()
            .or(self.azpacr.as_deref())
            .is_some_and(|v| v.trim() == "0");
        only_pwd && public
    }

    /// The user's UPN (`upn`, else `unique_name`).
    pub fn user_name(&self) -> Option<&str> {
        self.upn.as_deref().or(self.unique_name.as_deref())
    }

    /// The client application id (`appid`, else `azp`).
    pub fn client_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }
}

/// The signature check's result, when a key set was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// No `--jwks`: the gateway verified the token.
    NotChecked,
    /// Verified against the key set.
    Valid,
    /// Failed; the reason is short and holds no token material.
    Invalid(String),
}

/// A decoded token: never the token itself.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Hex SHA-256 of the raw token (without `Bearer `).
    pub sha256: String,
    /// Its claims.
    pub claims: Claims,
    /// Its signature check.
    pub signature: Signature,
}

impl TokenInfo {
    /// About how many bytes this entry holds in the cache: its texts, each list value
    /// with its `String`, and the fixed parts (key, `Arc`, map slot).
    pub fn weight(&self) -> usize {
        let c = &self.claims;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let list = |l: &Option<Vec<String>>| {
            l.as_ref()
                .map_or(0, |l| l.iter().map(|s| s.len() + 24).sum::<usize>())
        };
        let signature = match &self.signature {
            Signature::Invalid(r) => r.len(),
            _ => 0,
        };
        256 + self.sha256.len()
            + [
                &c.tid,
                &c.oid,
                &c.upn,
                &c.unique_name,
                &c.scp,
                &c.idtyp,
                &c.appid,
                &c.azp,
            ]
            .into_iter()
            .map(text)
            .sum::<usize>()
            + text(&c.appidacr)
            + text(&c.azpacr)
            + list(&c.amr)
            + list(&c.roles)
            + signature
    }
}

/// Decodes tokens, verifies them when a key set is loaded, and caches the result by hash.
///
/// The cache key: without a key set, a 128-bit keyed hash (SipHash-1-3 with 128-bit output,
/// one pass, under a random per-process key), so a token seen again costs one fast hash
/// instead of a SHA-256; the SHA-256 rows carry is computed once, on a miss. Two tokens
/// colliding would need 2^64 work against a key nobody outside the process knows. With a
/// key set (`--jwks`), where the cached verdict is a signature check, the key stays the
/// SHA-256.
pub struct TokenReader {
    cache: DashMap<[u8; 32], Arc<TokenInfo>>,
    hash_key: (u64, u64),
    capacity: usize,
    /// Bytes held ([`TokenInfo::weight`]), against [`TOKEN_CACHE_MAX_BYTES`].
    bytes: std::sync::atomic::AtomicUsize,
    keys: Option<JwkSet>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl TokenReader {
    /// A reader without signature verification.
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: DashMap::new(),
            hash_key: random_key(),
            capacity: capacity.max(1),
            bytes: std::sync::atomic::AtomicUsize::new(0),
            keys: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A reader that verifies every token against the key set in `path`.
    pub fn with_jwks(capacity: usize, path: &Path) -> Result<Self, JwksError> {
        let text = crate::bounded::read_to_string(path, MAX_JWKS_BYTES).map_err(|source| {
            JwksError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
        let keys = serde_json::from_str(&text).map_err(|source| JwksError::Parse {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            keys: Some(keys),
            ..Self::new(capacity)
        })
    }

    /// Reads an `Authorization` header value (`Bearer <JWT>`, or the bare JWT).
    pub fn read(&self, authorization: &str) -> Result<Arc<TokenInfo>, TokenError> {
        let raw = strip_bearer(authorization);
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Oversized(raw.len()));
        }
        let sha = || -> [u8; 32] { Sha256::digest(raw.as_bytes()).into() };
        let key: [u8; 32] = if self.keys.is_some() {
            sha()
        } else {
            let (k0, k1) = self.hash_key;
            let h = SipHasher13::new_with_keys(k0, k1).hash(raw.as_bytes());
            let mut k = [0u8; 32];
            if let Some(lo) = k.get_mut(..16) {
                lo.copy_from_slice(&h.as_bytes());
            }
            k
        };
        if let Some(hit) = self.cache.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::clone(hit.value()));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let digest = if self.keys.is_some() { key } else { sha() };
        let claims = read_claims(raw)?;
        let signature = match &self.keys {
            None => Signature::NotChecked,
            Some(keys) => verify(raw, keys),
        };
        let info = Arc::new(TokenInfo {
            sha256: hex::encode(digest),
            claims,
            signature,
        });
        let weight = info.weight();
        if self.cache.len() >= self.capacity
            || self.bytes.load(Ordering::Relaxed) + weight > TOKEN_CACHE_MAX_BYTES
        {
            self.evict(info.claims.exp);
        }
        if self.cache.insert(key, Arc::clone(&info)).is_none() {
            self.bytes.fetch_add(weight, Ordering::Relaxed);
        }
        Ok(info)
    }

    /// Drops the tokens that expired before the newest one read was issued; if that frees
    /// too little, drops everything (the cache only saves work).
    fn evict(&self, newest_exp: Option<i64>) {
        if let Some(exp) = newest_exp {
            let horizon = exp - 2 * 3600;
            self.cache
                .retain(|_, v| v.claims.exp.is_some_and(|e| e > horizon));
        }
        let held: usize = self.cache.iter().map(|e| e.value().weight()).sum();
        if self.cache.len() >= self.capacity || held > TOKEN_CACHE_MAX_BYTES / 2 {
            self.cache.clear();
            self.bytes.store(0, Ordering::Relaxed);
        } else {
            self.bytes.store(held, Ordering::Relaxed);
        }
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bytes held by the decoded tokens (an estimate: their texts and fixed parts).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

/// A random 128-bit key for the cache's hash, from the operating system's randomness
/// (std's `RandomState` is seeded from it; two of its outputs make the key).
fn random_key() -> (u64, u64) {
    use std::hash::BuildHasher;
    let s = std::collections::hash_map::RandomState::new();
    (
        s.hash_one(0x6d66_615f_6b30_u64),
        s.hash_one(0x6d66_615f_6b31_u64),
    )
}

/// The claims of a JWT, read without verification, exactly as
/// `jsonwebtoken::dangerous::insecure_decode_claims` reads them (the payload is the part
/// before the last `.`, after the one before it; base64url without padding; JSON), with
/// the dots found by `memrchr` and no copy of the token. On any failure the crate's own
/// function gives the error, so dead-letter reasons stay its words.
fn read_claims(raw: &str) -> Result<Claims, TokenError> {
    use base64::Engine as _;
    let fast = || -> Option<Claims> {
        let bytes = raw.as_bytes();
        let message = bytes.get(..memchr::memrchr(b'.', bytes)?)?;
        let start = memchr::memrchr(b'.', message)? + 1;
        let payload = message.get(start..)?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        serde_json::from_slice(&json).ok()
    };
    match fast() {
        Some(claims) => Ok(claims),
        None => jsonwebtoken::dangerous::insecure_decode_claims(raw)
            .map_err(|e| TokenError::Malformed(short_reason(&e))),
    }
}

/// `Bearer xyz` -> `xyz` (any case, surrounding blanks trimmed).
pub fn strip_bearer(header: &str) -> &str {
    let h = header.trim();
    match h.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => h[7..].trim_start(),
        _ => h,
    }
}

fn verify(raw: &str, keys: &JwkSet) -> Signature {
    let header = match jsonwebtoken::decode_header(raw) {
        Ok(h) => h,
        Err(e) => return Signature::Invalid(format!("bad header: {}", short_reason(&e))),
    };
    let candidates: Vec<_> = match header.kid.as_deref() {
        Some(kid) => keys.find(kid).into_iter().collect(),
        None => keys.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Signature::Invalid("no key in the key set matches the token's kid".into());
    }
    let mut validation = Validation::new(header.alg);
    // Event time, not the wall clock, drives this tool: an old token in a replay is not
    // invalid for being old.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut last = String::from("no usable key");
    for jwk in candidates {
        // A key that names its algorithm is used for that one only (RFC 7517 `alg`): an
        // HS512 token does not verify against a key declared HS256.
        if let Some(declared) = jwk.common.key_algorithm {
            if declared != jsonwebtoken::jwk::KeyAlgorithm::from(header.alg) {
                last = "algorithm not allowed".into();
                continue;
            }
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => match jsonwebtoken::decode::<serde_json::Value>(raw, &key, &validation) {
                Ok(_) => return Signature::Valid,
                Err(e) => last = short_reason(&e),
            },
            Err(e) => last = short_reason(&e),
        }
    }
    Signature::Invalid(last)
}

/// The error's kind, never its payload: a message must not echo token material.
fn short_reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidToken => "not three dot-separated parts".into(),
        K::InvalidSignature => "signature does not verify".into(),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not allowed".into(),
        K::InvalidKeyFormat | K::InvalidRsaKey(_) | K::InvalidEcdsaKey => "unusable key".into(),
        K::Base64(_) => "not base64url".into(),
        K::Json(_) => "claims are not a JSON object of the expected types".into(),
        K::Utf8(_) => "claims are not UTF-8".into(),
        _ => "unreadable".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
