//! The command line. `--help` on every command explains what it does and what it writes.

use clap::{Args, Parser, Subcommand};
use mfa_audit::source::Framing;
use std::path::PathBuf;

/// Audits the Microsoft Partner Center rule "partner tenants must use MFA".
///
/// mfa-audit reads Entra ID sign-in records (as Azure Monitor / Event Hubs export them),
/// Partner Center API and dashboard requests, and directory facts (role assignments, MFA
/// registration, technical exceptions), reruns the MFA rules of a policy version on every
/// event, and writes findings, per-tenant rollout readiness, agents and dead letters.
///
/// Start with:  mfa-audit generate --out sample.ndjson && mfa-audit run --input sample.ndjson --out out/
#[derive(Debug, Parser)]
#[command(name = "mfa-audit", version, propagate_version = true)]
pub struct Cli {
    /// Log progress at info level (RUST_LOG overrides).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit files into NDJSON files, or (with --config) a Kafka stream into ClickHouse.
    ///
    /// Files: `--input PATH... --out DIR` writes DIR/findings.ndjson,
    /// DIR/rollout_daily.ndjson, DIR/rollout_surfaces.ndjson (every surface's MFA share),
    /// DIR/agents.ndjson and DIR/dead_letters.ndjson in ClickHouse JSONEachRow form, and
    /// prints a readiness table per tenant and policy. `--policy` may be repeated: each
    /// event is decoded once and judged under every policy given.
    ///
    /// Stream: `--config FILE` consumes the configured topics as a consumer group and
    /// writes the same rows to ClickHouse (run `mfa-audit schema apply` first); offsets are
    /// committed only after ClickHouse stored the rows and the state they reflect. Stops on
    /// SIGINT/SIGTERM after a final checkpoint, or with --until-end when every assigned
    /// partition reached its end.
    ///
    /// Bad documents never stop a run: each becomes a dead letter with its reason and
    /// position.
    ///
    /// Exit status: 0 when the input was processed (dead letters or not), 2 on a usage,
    /// policy or configuration error, 1 when an input or output failed.
    Run(RunArgs),
    /// Produce NDJSON documents to a Kafka topic, keyed by tenant (replays, tests).
    Produce(ProduceArgs),
    /// Manage the ClickHouse tables.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Write a realistic, deterministic mixed stream of every input kind.
    Generate(GenerateArgs),
    /// Inspect the policy versions.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Why each rule fired, stayed quiet or did not apply, event by event.
    ///
    /// Replays the input (state included, exactly as `run` does) and, for the chosen
    /// events (`--event-id`, repeatable; all events when absent), prints every rule of
    /// every policy: its outcome (fired, quiet, not_applicable), whether its surface was
    /// enforced and an exception covered it, each attribute its condition read with the
    /// value read (state facts apart), the condition as the policy file writes it (with
    /// the named conditions it uses) and, when it fired, the finding's detail.
    ///
    /// Example:  mfa-audit explain --policy partner-mfa-2020-05 --input sample.ndjson --event-id 6f1c...
    Explain(ExplainArgs),
    /// Compare two policies over the same events: findings per tenant and rule, and
    /// readiness per tenant.
    ///
    /// Replays the input once under both policies and writes DIR/diff.ndjson: one row per
    /// (tenant, rule) that either policy raised (`kind` = `rule`: `findings_a`,
    /// `findings_b`, `enforced_a`, `enforced_b`) and one row per tenant (`kind` =
    /// `tenant`: `status_7d_a`, `status_7d_b`, the 7-day readiness on its newest day);
    /// then prints the tenants whose readiness changes. The counts equal those of two
    /// separate `run`s.
    ///
    /// Example:  mfa-audit diff --policy partner-mfa-2020-05 --policy my-policy.toml --input sample.ndjson --out diff/
    Diff(DiffArgs),
    /// Write one self-contained HTML page (readiness per tenant, charts) for people
    /// without Grafana.
    ///
    /// Reads the rows back from a file-mode output folder (`--from DIR`) or from ClickHouse
    /// (`--config FILE`, or `--url`/`--database`; the default is the local ClickHouse's
    /// `mfa_audit`). The page holds a readiness table (status of each tenant's newest day
    /// and of the 7 days ending on it, MFA shares, agents registered, open exceptions,
    /// uncovered findings, days to the next enforcement date) and inline SVG charts: MFA
    /// share per surface per day, findings by rule, partner-role users by registration. It
    /// loads nothing from the network and runs no script.
    ///
    /// Example:  mfa-audit report --from out/ --out readiness.html
    Report(ReportArgs),
    /// Print the shell completion script for bash, zsh or fish (also elvish, powershell).
    ///
    /// The script completes every command, flag and enumerated value. Install it where
    /// your shell looks (a new shell picks it up):
    ///
    /// bash (needs the bash-completion package):
    ///
    ///   mfa-audit completions bash > ~/.local/share/bash-completion/completions/mfa-audit
    ///
    /// zsh (then, in ~/.zshrc before compinit: fpath=(~/.zfunc $fpath)):
    ///
    ///   mfa-audit completions zsh > ~/.zfunc/_mfa-audit
    ///
    /// fish:
    ///
    ///   mfa-audit completions fish > ~/.config/fish/completions/mfa-audit.fish
    ///
    /// System-wide: /usr/share/bash-completion/completions/mfa-audit,
    /// /usr/share/zsh/vendor-completions/_mfa-audit,
    /// /usr/share/fish/vendor_completions.d/mfa-audit.fish.
    ///
    /// Example:  source <(mfa-audit completions bash)   (this shell only)
    Completions(CompletionsArgs),
    /// Write the man pages: mfa-audit.1 and one per command (mfa-audit-run.1, ...).
    /// `scripts/man` runs it.
    #[command(hide = true)]
    Man(ManArgs),
}

/// `mfa-audit completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `mfa-audit man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The folder to write the pages into (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
}

/// `mfa-audit report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A `mfa-audit run --out` folder to read instead of ClickHouse.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "url", "database"])]
    pub from: Option<PathBuf>,
    /// Where ClickHouse is (without --from).
    #[command(flatten)]
    pub clickhouse: SchemaArgs,
    /// The policy version to report (default: the newest version in the rows).
    #[arg(long, short = 'p', value_name = "NAME")]
    pub policy: Option<String>,
    /// The HTML file to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
}

/// `mfa-audit run`. Every setting comes from, in rising order: the defaults, the
/// configuration file (`--config`), `MFA_AUDIT_<SECTION>_<KEY>` variables, these flags.
/// A flag that does not apply to the mode the configuration chooses is refused.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// An input: an NDJSON file, a file of (pretty-printed) JSON documents, a folder of
    /// such files, or `-` for stdin. Repeat for more; they are read in the order given.
    /// File mode only (`files.inputs`).
    #[arg(long = "input", short = 'i', value_name = "PATH")]
    pub inputs: Vec<String>,
    /// The output folder (created if missing; its five files are replaced). File mode
    /// only (`files.out`).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A TOML configuration (see `examples/stream.toml`): one file for both modes. With
    /// `kafka.brokers` and `kafka.topics` it runs the stream mode (Kafka in, ClickHouse
    /// out); without, the file mode (`[files] inputs`, `out`). Every key can also be set
    /// by `MFA_AUDIT_<SECTION>_<KEY>` (`MFA_AUDIT_PIPELINE_POLICIES=a,b`), with or
    /// without a file.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stream mode only: stop once every assigned partition reached its end (replays,
    /// backfills, tests), after the final checkpoint.
    #[arg(long)]
    pub until_end: bool,
    /// The policy version: a shipped name (`mfa-audit policy list`) or a policy file.
    /// Repeat to evaluate several in one pass: each event is decoded once and judged
    /// under every policy; every row carries its `policy_version`. Default:
    /// `pipeline.policies`, else `pipeline.policy`, else partner-mfa-2026 (today's rules;
    /// the seed texts are partner-mfa-2020-05 and partner-mfa-2019-09).
    #[arg(long = "policy", short = 'p', value_name = "NAME|FILE")]
    pub policies: Vec<String>,
    /// Verify token signatures against this JSON Web Key Set; a token that fails is
    /// flagged (TOKEN_SIGNATURE_INVALID). Without it claims are read unverified, as the
    /// API gateway already verified them (`pipeline.jwks`).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// How inputs are cut into documents: `auto` (the default) reads NDJSON unless the
    /// first line holds only `{` or `[`. File mode only (`files.framing`).
    #[arg(long, value_enum)]
    pub framing: Option<FramingArg>,
    /// Documents longer than this are dead-lettered as `oversized` (default 1048576;
    /// `pipeline.max_document_bytes`).
    #[arg(long, value_name = "BYTES")]
    pub max_document_bytes: Option<usize>,
    /// Decoded tokens kept in the cache (default 100000; `pipeline.token_cache_entries`).
    #[arg(long, value_name = "N")]
    pub token_cache_entries: Option<usize>,
    /// An event whose id was already applied within this many days of the newest event
    /// is a replay and is skipped (so overlapping exports count once). About 16 bytes of
    /// memory per event inside the window. Default 31 in the file mode, 1 in the stream
    /// mode (`pipeline.replay_window_days`, whose comment says why).
    #[arg(long, value_name = "DAYS")]
    pub replay_window_days: Option<i64>,
    /// An event dated more than this many hours past the time it is processed is a
    /// `future_time` dead letter, so no single event moves a tenant's readiness day ahead
    /// (`pipeline.future_skew_hours`; default 24).
    #[arg(long, value_name = "HOURS")]
    pub future_skew_hours: Option<i64>,
    /// The partner tenant of records that carry no tenant id: a Microsoft Graph `signIn`
    /// export from one tenant's API, and Graph registration reports
    /// (`userRegistrationDetails`) and GDAP exports (`delegatedAdminRelationship`,
    /// `delegatedAdminAccessAssignment`), which never name one (without it such records
    /// are dead letters that say so). Records with their own tenant id keep it
    /// (`pipeline.tenant`).
    #[arg(long, value_name = "ID")]
    pub tenant: Option<String>,
    /// Worker threads of the file mode: every document is decoded on any of them and
    /// each tenant's events are applied on one, in order, so the rows are exactly those
    /// of `--threads 1`. Default: one per core (`files.threads`, 0 = one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Do not print the progress line, the readiness table and the counters (only the
    /// one-line summary).
    /// File mode only.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also publish every finding (its `findings.ndjson` line, keyed by tenant id) to
    /// this Kafka topic, which must exist (`sinks.kafka.topic`). The run fails (exit 1)
    /// when the brokers do not acknowledge every finding; the stream mode commits an
    /// offset only after the findings before it were acknowledged.
    #[arg(long, value_name = "TOPIC")]
    pub findings_topic: Option<String>,
    /// The findings topic's brokers, `host:port[,host:port]` (`sinks.kafka.brokers`; the
    /// stream mode's default is `kafka.brokers`). Its TLS and SASL settings are
    /// `[kafka.properties]` with `[sinks.kafka.properties]` laid over them.
    #[arg(long, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
}

/// What `explain` and `diff` read, as `run` reads it.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// An input: an NDJSON file, a file of JSON documents, a folder, or `-` for stdin.
    /// Repeat for more.
    #[arg(long = "input", short = 'i', value_name = "PATH", required = true)]
    pub inputs: Vec<String>,
    /// Verify token signatures against this JSON Web Key Set (as `run --jwks`).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// How inputs are cut into documents (as `run --framing`).
    #[arg(long, value_enum, default_value_t = FramingArg::Auto)]
    pub framing: FramingArg,
    /// Documents longer than this are dead-lettered as `oversized`.
    #[arg(long, value_name = "BYTES", default_value_t = mfa_audit::source::DEFAULT_MAX_DOCUMENT_BYTES)]
    pub max_document_bytes: usize,
    /// Replay window in days (as `run --replay-window-days`).
    #[arg(long, value_name = "DAYS", default_value_t = mfa_audit::state::DEFAULT_REPLAY_WINDOW_DAYS)]
    pub replay_window_days: i64,
    /// Hours past the time it is processed an event may be dated (as `run
    /// --future-skew-hours`).
    #[arg(long, value_name = "HOURS", default_value_t = mfa_audit::pipeline::DEFAULT_FUTURE_SKEW_HOURS)]
    pub future_skew_hours: i64,
    /// The partner tenant of records that carry none (as `run --tenant`).
    #[arg(long, value_name = "ID")]
    pub tenant: Option<String>,
}

/// `mfa-audit explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A policy (shipped name or file); repeat to explain under several.
    #[arg(
        long = "policy",
        short = 'p',
        value_name = "NAME|FILE",
        default_value = mfa_audit::policy::DEFAULT_POLICY
    )]
    pub policies: Vec<String>,
    /// The input, as `run` reads it.
    #[command(flatten)]
    pub replay: ReplayArgs,
    /// Explain only this event (its id: `properties.id`, `requestId`, or the derived id
    /// a finding row shows). Repeat for more; all events when absent.
    #[arg(long = "event-id", value_name = "ID")]
    pub event_ids: Vec<String>,
    /// Only these rules (repeatable).
    #[arg(long = "rule", value_name = "RULE_ID")]
    pub rules: Vec<String>,
    /// One JSON object per (event, policy, rule) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `mfa-audit diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The two policies to compare: `--policy A --policy B` (shipped names or files).
    #[arg(
        long = "policy",
        short = 'p',
        value_name = "NAME|FILE",
        required = true,
        num_args = 1
    )]
    pub policies: Vec<String>,
    /// The input, as `run` reads it.
    #[command(flatten)]
    pub replay: ReplayArgs,
    /// The output folder (DIR/diff.ndjson).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
}

/// `mfa-audit produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Bootstrap brokers, `host:port[,host:port]`.
    #[arg(long, default_value = "127.0.0.1:9092", conflicts_with = "config")]
    pub brokers: String,
    /// Take the brokers and the librdkafka properties (TLS, SASL, `properties_env`
    /// secrets) from this configuration's `[kafka]` section.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The topic.
    #[arg(long, short = 't')]
    pub topic: String,
    /// Create the topic with this many partitions if it does not exist (0: never create).
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// A topic setting for the topic created here, `KEY=VALUE`, repeatable (ignored when
    /// the topic exists): `--topic-config retention.ms=300000 --topic-config
    /// cleanup.policy=delete` makes the broker drop messages older than 5 minutes, as
    /// `scripts/soak` does so that an hour's load fits the disk.
    #[arg(long, value_name = "KEY=VALUE", value_parser = topic_setting)]
    pub topic_config: Vec<(String, String)>,
    /// Send at most this many messages a second, evenly (0: as fast as the broker
    /// takes them). `scripts/soak` produces at a fixed share of the measured ceiling.
    #[arg(long, default_value_t = 0, value_name = "MESSAGES")]
    pub rate: u64,
    /// NDJSON files (or `-` for stdin); each document is one message, keyed by its
    /// tenant (a batch by its first record's), so a tenant's events stay in one partition.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

/// `KEY=VALUE` of `produce --topic-config`.
fn topic_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!(
            "`{s}` is not KEY=VALUE (for example retention.ms=300000)"
        )),
    }
}

/// `mfa-audit schema ...`.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Create the database and tables, or migrate them: every migration of
    /// schemas/clickhouse/ not yet recorded in `schema_migrations` is applied and recorded.
    Apply(SchemaArgs),
}

/// Where the tables live.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Take ClickHouse's address, database and credentials from this configuration.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ClickHouse HTTP endpoint (without --config).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8123",
        conflicts_with = "config"
    )]
    pub url: String,
    /// Database (without --config).
    #[arg(long, default_value = "mfa_audit", conflicts_with = "config")]
    pub database: String,
    /// User (without --config); the password comes from MFA_AUDIT_CLICKHOUSE_PASSWORD.
    #[arg(long, default_value = "default", conflicts_with = "config")]
    pub user: String,
    /// PEM file of CA certificates trusted for an `https://` URL (without --config).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub ca_file: Option<PathBuf>,
    /// Accept plain `http://` to another host (without --config; refused by default).
    #[arg(long, conflicts_with = "config")]
    pub allow_plaintext: bool,
}

/// `mfa-audit generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Partner tenants.
    #[arg(long, default_value_t = 20)]
    pub tenants: u32,
    /// Events to write (role, registration and exception facts included).
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Seed: the same seed gives the same stream, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of events that break a rule (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    pub violations: f64,
    /// First day of the stream (events run over the following days).
    #[arg(long, default_value = "2020-04-27")]
    pub start: String,
    /// Days the stream covers.
    #[arg(long, default_value_t = 10)]
    pub days: u32,
    /// Share of the documents (0 to 1) that are Microsoft's Entra audit records: Azure
    /// Monitor `AuditLogs` records of every tenant (roles and agent groups granted and
    /// removed, per-user MFA and security info removed, the Conditional Access policy that
    /// requires MFA weakened and mended, and harmless activities), a tenant's share of
    /// violating ones as for the other kinds. 0 writes no directory record: the stream is
    /// byte for byte that of the same options without them.
    #[arg(long, value_name = "F", default_value_t = 0.05)]
    pub directory_share: f64,
    /// The first tenant's id. With it (and a directory share above 0) the stream also holds
    /// that partner's own Microsoft Graph exports, which carry no tenant id:
    /// `userRegistrationDetails` (its registration facts), `delegatedAdminRelationships`
    /// and their `accessAssignments`. Run the stream with the same `--tenant ID`.
    #[arg(long, value_name = "ID")]
    pub tenant: Option<String>,
    /// Draw the tenants, users and roles from this seed instead of `--seed`: other seeds
    /// with one world seed give the same tenants with other events (a long stream in
    /// chunks, without ids that repeat).
    #[arg(long, value_name = "SEED")]
    pub world_seed: Option<u64>,
    /// Where to write (stdout when absent).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `mfa-audit policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the shipped policy versions.
    List,
    /// Validate a policy file and report every problem at once (exit 2 if any).
    Check {
        /// The file (TOML, or JSON with the same structure), or a shipped name.
        file: String,
    },
    /// Print a policy: a shipped version's file as shipped, or a policy file's effective
    /// policy (its `extends` resolved: what `run --policy FILE` applies), as TOML that
    /// loads on its own.
    Show {
        /// A shipped name (`mfa-audit policy list`) or a policy file.
        name: String,
        /// For a shipped name too: the effective policy instead of the file.
        #[arg(long)]
        effective: bool,
    },
    /// List the attributes a rule's condition can read: name, type, and the source
    /// field(s) it is read from (docs/rules.md explains them with examples).
    Attributes,
}

/// How inputs are cut into documents (`--framing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FramingArg {
    /// NDJSON, unless the first line holds only `{` or `[` (then `json`).
    #[default]
    Auto,
    /// One document per line.
    Ndjson,
    /// JSON texts one after another, any layout.
    Json,
}

impl From<FramingArg> for Framing {
    fn from(f: FramingArg) -> Self {
        match f {
            FramingArg::Auto => Framing::Auto,
            FramingArg::Ndjson => Framing::Ndjson,
            FramingArg::Json => Framing::Json,
        }
    }
}
