//! The command line (clap definitions). Man pages in `man/` are generated from these, so the
//! doc comments here are the user-facing documentation of every option.
// They are help text, not rustdoc: `[firstName]` names an Engage attribute, not a link.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};

use crate::config::engage::{ENV_API_KEY, ENV_BASE_URL};
use crate::config::sftp::{ENV_PASSPHRASE, ENV_PASSWORD};
use crate::config::{LogFormat, Mode};
use crate::secret::Secret;

/// Local SQLite replica and offline outboxes for Voyado Engage, run from cron next to POS and
/// web-shop systems, so that checkout never depends on Engage being reachable.
#[derive(Debug, Parser)]
#[command(name = "engage-sync", version, propagate_version = true)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, shown under `--help` and in the man pages.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success
  1   lookup: no contact matches
  64  usage error (a wrong flag or value)
  65  bad input data (malformed export XML, a file refused, an invalid receipt or contact);
      nothing of it was applied. push-local: Engage rejected items (kept, see status)
  69  Engage unavailable (the API, or its SFTP server)
  73  cannot create a file or directory
  74  I/O or database error
  75  temporary failure, try again later (another run holds the lock, the replica or the till
      store stayed busy past busy_timeout, Engage 429/5xx)
  77  permission denied (file system, Engage 401/403, SFTP login or host key refused)
  78  configuration error";

/// Longest duration a flag accepts: 100 years. Longer ones mean nothing here, and adding one
/// to the current time overflowed (`--deadline 500000000000y` panicked).
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(100 * 366 * 24 * 3600);

/// A duration flag (`30d`, `2h`, `10m`): humantime's syntax, at most [`MAX_DURATION`].
fn duration_arg(value: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err("longer than 100 years; give a shorter duration such as 30d".into());
    }
    Ok(d)
}

/// Options shared by every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The replica database file [default: `db` in the config file, else engage-sync.db]
    #[arg(long, global = true, env = "ENGAGE_SYNC_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The TOML config file [default: the first that exists of ./engage-sync.toml,
    /// $XDG_CONFIG_HOME/engage-sync/engage-sync.toml (or ~/.config/engage-sync/engage-sync.toml),
    /// /etc/engage-sync/engage-sync.toml; else none]
    #[arg(long, global = true, env = "ENGAGE_SYNC_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print the result as JSON on stdout (logs stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less output: -q logs warnings only, and a job (init, delta, changes, full, purge,
    /// push-local) that succeeded prints no summary (--json still prints); -qq logs errors only.
    /// Also hides progress
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Format of log lines on stderr [default: `log_format` in the config file, else text]
    #[arg(
        long,
        global = true,
        env = "ENGAGE_SYNC_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormat>,

    /// A tracing filter that replaces the level of -v/-q, e.g. engage_sync=debug (an invalid
    /// one is ignored)
    #[arg(long, global = true, env = "ENGAGE_SYNC_LOG", value_name = "FILTER")]
    pub log_filter: Option<std::ffi::OsString>,

    /// Country for phone numbers written without a country code: any ISO 3166 code with a
    /// numbering plan in libphonenumber, e.g. SE, NO, HU [default: `default_country` in the
    /// config file, else SE]
    #[arg(
        long,
        global = true,
        env = "ENGAGE_SYNC_DEFAULT_COUNTRY",
        value_name = "ISO"
    )]
    pub default_country: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the replica and its till store, or migrate them to this version's schema
    ///
    /// Run it once before the first `delta` or `changes`: they, `purge`, the till commands
    /// (contact, receipt) and push-local refuse to create a replica (exit 78, nothing written),
    /// so a command run in the wrong folder fails instead of making a stray replica that
    /// registers contacts no push would ever send. `delta`, `changes` and `purge` create one
    /// only with --create-replica (or `create_replica = true` in the config file); `full`, the
    /// initial download, creates one when there is none. `init` also lets you choose the mode
    /// and checks that the files can be created. The
    /// till store (`<db>.till`) holds what the till writes: contacts registered or changed at
    /// the till, and the outboxes. A replica made by an earlier engage-sync moves its outboxes
    /// and till contacts there when it is first opened for writing (crash-safe: run again
    /// after an interruption).
    #[command(after_help = EXIT_CODES_HELP)]
    Init(InitArgs),
    /// Import Engage contact-export XML files into the replica
    ///
    /// Files are applied in order of the timestamp in their name, then file number; each file
    /// is applied in one transaction together with its ledger row, so readers see whole files
    /// only. A file already applied with the same content is skipped; the same name with other
    /// content is refused. A malformed file changes nothing, is moved to the quarantine folder,
    /// and stops the run (exit 65) unless --keep-going. The first import into an empty replica
    /// is one transaction that builds the replica's indexes at its end (readers see nothing,
    /// then every file). Till commands never wait for an import: they write the till store.
    /// --dry-run applies everything in one transaction that it rolls back.
    ///
    /// With `[sftp]` in the config file (or --from sftp), new files are first downloaded from
    /// Engage's SFTP server into the inbox, in import order: each to a hidden temporary name,
    /// its size checked against the listing and the server looked at again, then renamed, so a
    /// half-downloaded file is never imported. Files the ledger holds with the same name and
    /// size are not downloaded again. Once a file is applied it can be deleted on the server or
    /// moved to a remote archive folder (`[sftp] after_import`; default: left there); a
    /// refused file never is. The server's host key must be in `[sftp] known_hosts` or match
    /// `host_key_fingerprint`: an unknown or changed key is refused (exit 77) until trusted
    /// with --trust-host-key. The password comes from ENGAGE_SYNC_SFTP_PASSWORD (or
    /// --sftp-password) or `[sftp] password_file`, a private key's passphrase from
    /// ENGAGE_SYNC_SFTP_PASSPHRASE (or --sftp-passphrase). A dropped
    /// connection is retried with backoff; when the server stays away (exit 69) or the
    /// --deadline passes (75), the files downloaded completely are still imported.
    #[command(after_help = EXIT_CODES_HELP)]
    Delta(DeltaArgs),
    /// Build a complete replica (from a full export or the API) and swap it in atomically
    ///
    /// The new replica is built in `<db>.d/building.db` beside the current one, which stays in
    /// service: readers never see a half-built replica. When the build is complete, what changed
    /// in the current replica since the export (later deltas or changes, the history) is merged
    /// in, and the new replica replaces the old one in one atomic step (`<db>` becomes a link to
    /// `<db>.d/gen-N.db`; readers of the old one finish undisturbed). The till's data is in the
    /// till store (`<db>.till`), which a swap never touches: till writes and push-local go on
    /// throughout. A build interrupted by a crash or --deadline resumes where it stopped when run again.
    /// A build from XML loads its contacts without indexes and builds them at the end; it is
    /// synced to disk only when complete, so after an OS crash or power loss (a new boot) an
    /// unfinished build starts over.
    #[command(after_help = EXIT_CODES_HELP)]
    Full(FullArgs),
    /// Pull contact changes from Engage's API since the stored cursor and apply them
    ///
    /// Asks Engage's bulk-read-changes feed for the contacts created, updated and deleted since
    /// the cursor (minus an overlap window, `[engage] changes_overlap`, default 5m), fetches each
    /// created or updated contact (rate-limited, concurrent), applies them with the replica's
    /// version rule, turns deletes into tombstones, and advances the cursor only once all of
    /// that is committed, so a crash at any point neither skips nor loses changes. Fetched
    /// contacts are applied in short transactions (at most 500, or what arrived within a
    /// second): the replica's write lock is never held while Engage is being waited for. The
    /// first run starts where the last `full` began, or at --since.
    #[command(after_help = EXIT_CODES_HELP)]
    Changes(ChangesArgs),
    /// Find a contact in the replica by one key and print the key to tag a purchase with
    ///
    /// The value is normalised as on import: e-mail is case-insensitive, contact ids match in
    /// either case. A phone number is read with libphonenumber's numbering plans and looked up
    /// in E.164: national numbers use the default country (--default-country), `+` or `00`
    /// mark an international one, a trunk prefix after the country code (`+46 (0)70…`) is
    /// dropped where it is not dialled, digits that start with a country code (`46701234567`)
    /// are read as international when that is the valid reading, and bidi marks, zero-width
    /// spaces and full-width digits are ignored. A number that cannot be one in the default
    /// country, or could be two different numbers, is refused (exit 64) rather than guessed.
    /// Exits 0 when found, 1 when not.
    #[command(after_help = EXIT_CODES_HELP)]
    Lookup(LookupArgs),
    /// Show replica freshness, counts, recent runs, failures, quarantined files, gaps, the
    /// outboxes (depth per kind and state, the oldest undelivered item, rejected items with
    /// Engage's reason) and a `full` build in progress or left behind (age, size)
    ///
    /// With --check, prints one line and exits 75 when the replica is stale (no successful
    /// delta within --max-age), or, with --max-pending-age, when an outbox item has waited
    /// longer than that to be delivered, so monitoring, or a POS that wants to tell the
    /// customer that member offers are unavailable right now, can act on it. Exits 74 (when
    /// not stale) if the newest run of a job left a warning that needs a person, such as an
    /// export file applied but not moved to the archive (listed under "warning:").
    #[command(after_help = EXIT_CODES_HELP)]
    Status(StatusArgs),
    /// Delete local personal data older than an age (GDPR)
    ///
    /// Deletes finished run records (keeping the latest of each command and outcome, so
    /// `status --check` still knows the last sync), quarantine records, delivered, rejected
    /// and dropped outbox items (never pending ones) with the till contacts Engage rejected,
    /// the files in every archive and quarantine folder this replica has ever used (whatever
    /// this run's flags), applied files and unfinished downloads left in the inbox, and an
    /// abandoned `full` build, when older than the age (on a hub also the files `publish`
    /// wrote, in every folder it used); and the till's copies of contacts that
    /// Engage's data has overtaken or Engage deleted; then truncates the WAL of the replica and of the till store and reclaims their
    /// free pages, so purged data cannot be read back from the files. Only the free pages are
    /// moved: the files are not rewritten (a replica created by an earlier engage-sync build is
    /// vacuumed once, which switches it over). The till store is written in one short
    /// transaction, so till writes wait milliseconds at most. Prints counts and every location
    /// it covers (the scope), never the data. Takes the writer lock, so it is safe to run
    /// from cron next to the other commands.
    #[command(after_help = EXIT_CODES_HELP)]
    Purge(PurgeArgs),
    /// Register or change a contact at the till, queued for push-local
    ///
    /// Works offline: lookup and the `contacts` view show the contact at once (by any of its
    /// keys) and the change waits in the contact outbox until `push-local` delivers it. Writes
    /// only the till store (`<db>.till`), never the replica: a sync job holding the replica
    /// never makes the till wait. The replica must exist (`engage-sync init`).
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Buffer finalized purchases (Engage receipt JSON) for push-local
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Push queued contacts (bulk write), then buffered receipts, to Engage
    ///
    /// Contacts first: creates and updates go with Engage's bulk write (at most 4000 a
    /// request); each batch id is stored before its status is polled, and a contact whose
    /// outcome is unknown (no answer, a crash) is looked up by key before it is ever sent
    /// again, so nothing is created twice. Then receipts, each tagged with the best key:
    /// contactId when known, else the configured secondary key. The summary counts the
    /// contacts Engage created, those linked to a contact Engage already had, and the updates
    /// it applied, each decided from Engage's answers. Transient failures leave items
    /// pending for the next run; items Engage rejects are kept with its reason (see `status`).
    /// Exits 0 when everything was delivered, 65 when Engage rejected items in this run, 75
    /// when items are left for the next run. --dry-run reports per item how it would be sent
    /// and keyed, from the till store and the replica alone (Engage is not contacted); --wait
    /// queues behind another push-local (pushes take their own lock, not the one of delta and
    /// changes). A push writes only the till store, in short transactions, and reads the
    /// replica, so it runs beside any sync job; it also drops the till's copies of contacts
    /// that Engage's data has overtaken.
    #[command(after_help = EXIT_CODES_HELP)]
    PushLocal(PushLocalArgs),
    /// On a hub: write the replica's changes as export files that stores import with `delta`
    ///
    /// Writes what changed in the replica since the last publication (creates, updates and
    /// deletes, each contact once in its latest state) as contact-export XML files in Engage's
    /// own format, at most 10,000 contacts a file, named `STAMP_N_NAME-dK.xml` (K: the
    /// publication's number; STAMP rises strictly from one publication to the next). Stores
    /// read the folder with `delta` (over SFTP with `--from sftp`, or a folder that rsync or
    /// rclone fills), so one hub talks to Engage for all of them. A keys-only replica
    /// publishes keys only; a full one every field. Each file is written to a hidden
    /// temporary name and flushed, the publication recorded, then the files renamed into
    /// place: a store never sees half a file, and a killed run is completed by the next one
    /// (nothing published twice, nothing missed). No file is written when nothing changed.
    /// With --snapshot, the whole replica (every contact and every delete) as a file set that
    /// a new or lagging store loads with `full --from-xml`: write it to another folder than
    /// the changes. `purge` deletes published files older than its age.
    #[command(after_help = EXIT_CODES_HELP)]
    Publish(PublishArgs),
}

/// `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The folder to write the files to (created if missing, mode 0750); the stores read it
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,

    /// Publish the whole replica (for `full --from-xml` on a store) instead of the changes
    #[arg(long)]
    pub snapshot: bool,

    /// The name part of the file names (letters, digits and `-`)
    #[arg(long, value_name = "NAME", default_value = "hub", value_parser = publish_name)]
    pub name: String,

    /// Contacts per file, at most 10000 (Engage's own limit)
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub per_file: u16,

    /// Options of every writing command.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// A `--name` for published files: a non-empty name of letters, digits and `-`, at most 40.
fn publish_name(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(value.to_string())
    } else {
        Err("use 1 to 40 letters, digits and `-` (e.g. hub, stores-se)".into())
    }
}

/// `contact add` / `contact update`.
#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Register a new contact at the till (offline) and queue it for Engage
    ///
    /// Fields come from flags, or from a JSON object of Engage attribute names (`email`,
    /// `mobilePhone`, `firstName`, …) with --from; a JSON array or one object per line adds
    /// several contacts at once (all or none). The mobile phone must be a valid mobile number
    /// of its country by libphonenumber's plans (stored in E.164; landlines, toll-free and
    /// numbers outside the plan are refused); the e-mail address must look like one and keep
    /// RFC 5321's limits (64 octets before the @, 254 in all). The keys are normalised exactly
    /// as `lookup` and import normalise them. The contact type must be one of
    /// `[local] contact_types`, and at least one of email,
    /// mobile phone, external id or personal identity number is needed. Each contact gets a
    /// local key (`[local] key_prefix` + a number never reused), printed, and is written to
    /// the till store at once (lookup finds it). A contact whose key the replica or the till
    /// already has is refused with the existing contact's keys (exit 65); two contacts of one
    /// input with the same key are refused naming both positions (exit 65). A field given
    /// twice (a flag and --field, --field twice, or a flag and --from) is refused as a
    /// conflict (exit 65). JSON input is strict, see `receipt add --help`.
    #[command(after_help = EXIT_CODES_HELP)]
    Add(ContactAddArgs),
    /// Change a contact at the till; only the changed fields are queued for Engage
    ///
    /// Select the contact by one key; give the new values as flags or a JSON object with
    /// --from (`null` clears a field). Fields equal to the stored values are left out, since
    /// Engage overwrites whatever it is sent. Lookups show the change at once (the till's
    /// version of the contact wins until Engage's data is newer). A change to a local contact
    /// not yet pushed is merged into its queued create.
    #[command(after_help = EXIT_CODES_HELP)]
    Update(ContactUpdateArgs),
}

/// `receipt add`.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Buffer finalized receipts (Engage receipt JSON) for push-local
    ///
    /// Checks the required fields (contact, uniqueReceiptId, createdDate with its UTC offset,
    /// storeExternalId, currency, totalGrossPrice, paymentMethods, items) and buffers the
    /// receipt; `createdDate` is kept exactly as given (local time, never converted). The
    /// contact is named by `matchKeyType`/`matchKey` (contactId, localKey, mobilePhone, email,
    /// memberNumber, externalId, socialSecurityNumber), or given as contact data (attributes
    /// without matchKey) for a customer who signs up at the till. The same receipt added twice
    /// is buffered once; another receipt under a buffered uniqueReceiptId is refused (exit 65).
    /// A JSON array or one receipt per line adds several at once (all or none).
    ///
    /// Till JSON is strict (exit 65, naming the item, line and column and key path): a key
    /// given twice in one object (at any depth, also in another letter case) is refused, and
    /// nothing is coerced (amounts are JSON numbers, ids and keys JSON strings). Limits,
    /// checked while reading: 1 MiB per receipt or contact, 4096 characters per text, 128 per
    /// field name, 1000 elements per list and keys per object, 100 characters per id or key
    /// (uniqueReceiptId, receiptNumber, storeExternalId, matchKey, sku, articleNumber,
    /// memberNumber, externalId, socialSecurityNumber), 256 per name (articleName, firstName,
    /// lastName).
    #[command(after_help = EXIT_CODES_HELP)]
    Add(ReceiptAddArgs),
}

/// Contact fields as flags (Engage attribute in brackets).
#[derive(Debug, Args, Default)]
pub struct ContactFieldArgs {
    /// First name [firstName]
    #[arg(long, value_name = "NAME")]
    pub first_name: Option<String>,
    /// Last name [lastName]
    #[arg(long, value_name = "NAME")]
    pub last_name: Option<String>,
    /// Member number [memberNumber]
    #[arg(long, value_name = "NUMBER")]
    pub member_number: Option<String>,
    /// External id [externalId]
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,
    /// Personal identity number [socialSecurityNumber]
    #[arg(long, value_name = "SSN")]
    pub ssn: Option<String>,
    /// Any other Engage attribute, e.g. --field city=Umeå (repeatable)
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub fields: Vec<String>,
    /// Read the fields from a JSON document: a file, or - for stdin
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

/// `contact add`.
#[derive(Debug, Args)]
pub struct ContactAddArgs {
    /// E-mail address [email]
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Mobile number, national (default country) or international form [mobilePhone]
    #[arg(long, value_name = "PHONE")]
    pub mobile: Option<String>,
    /// Contact type [contactType] [default: Member]
    #[arg(long, value_name = "TYPE")]
    pub contact_type: Option<String>,
    /// The other fields.
    #[command(flatten)]
    pub fields: ContactFieldArgs,
    /// Validate and report what would be registered, but write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `contact update`: exactly one selector.
#[derive(Debug, Args)]
#[group(id = "select", required = true, multiple = false)]
pub struct ContactUpdateArgs {
    /// Select the contact by its Engage contact id
    #[arg(long, group = "select", value_name = "GUID")]
    pub contact_id: Option<String>,
    /// Select the contact by its local key (e.g. L0600-000123)
    #[arg(long, group = "select", value_name = "KEY")]
    pub local_key: Option<String>,
    /// Select the contact by e-mail address
    #[arg(long, group = "select", value_name = "EMAIL")]
    pub email: Option<String>,
    /// Select the contact by mobile phone
    #[arg(long, group = "select", value_name = "PHONE")]
    pub mobile: Option<String>,
    /// New e-mail address [email]
    #[arg(long, value_name = "EMAIL")]
    pub new_email: Option<String>,
    /// New mobile phone [mobilePhone]
    #[arg(long, value_name = "PHONE")]
    pub new_mobile: Option<String>,
    /// The other fields.
    #[command(flatten)]
    pub fields: ContactFieldArgs,
    /// Validate and report what would change, but write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `receipt add`.
#[derive(Debug, Args)]
pub struct ReceiptAddArgs {
    /// The receipt JSON file, or - for stdin [default: stdin]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Validate and report what would be buffered, but write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `push-local`.
#[derive(Debug, Args)]
pub struct PushLocalArgs {
    /// Stop after this long (e.g. 10m): no request starts later; what is left stays queued
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub deadline: Option<std::time::Duration>,

    /// Queue items Engage rejected earlier once more (after fixing them)
    #[arg(long)]
    pub retry_rejected: bool,

    /// Engage's base URL and key.
    #[command(flatten)]
    pub engage: EngageArgs,

    /// Options of every writing command.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit 75 with a one-line reason when the replica is stale, 74 when the newest run of a
    /// job left a warning (a file not archived); exit 0 with one line when fine
    #[arg(long)]
    pub check: bool,

    /// With --check: the replica is stale when its last successful sync is older than this
    /// (e.g. 30m, 2h, 1d)
    #[arg(long, value_name = "AGE", default_value = "2h", value_parser = duration_arg)]
    pub max_age: std::time::Duration,

    /// With --check: also exit 75 when an outbox item (contact or receipt) has waited longer
    /// than this to be delivered (e.g. 1h)
    #[arg(long, value_name = "AGE", value_parser = duration_arg)]
    pub max_pending_age: Option<std::time::Duration>,
}

/// `purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Purge what is older than this (e.g. 30d, 12h, 2w)
    #[arg(long, value_name = "AGE", value_parser = duration_arg)]
    pub older_than: std::time::Duration,

    /// Whether a missing replica may be created.
    #[command(flatten)]
    pub create: CreateArgs,

    /// Options of every writing command.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// What the replica keeps of a contact: `keys` (contactId, contactType and lookup keys only)
    /// or `full` (every field) [default: `mode` in the config file, else full]
    #[arg(long, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// Options of every writing command.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `--create-replica` (delta, changes, purge).
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Create the replica (and its till store) when there is none at the --db path; without
    /// it (or `create_replica = true` in the config file) the command refuses (exit 78) and
    /// creates nothing, so a run in the wrong folder leaves no stray replica. `init` and
    /// `full` create without it; till commands and push-local never create one
    #[arg(
        long,
        env = "ENGAGE_SYNC_CREATE_REPLICA",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub create_replica: Option<bool>,
}

/// Options of every command that writes.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Run the real logic and report per item what would happen, but write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Wait for another engage-sync run to release the lock instead of exiting with 75
    #[arg(long)]
    pub wait: bool,
}

/// How to reach Engage's API (changes, full, push-local). Both win over the config file.
#[derive(Debug, Args)]
pub struct EngageArgs {
    /// Engage's API base URL, e.g. https://TENANT.voyado.com [default: `[engage] base_url` in
    /// the config file]
    #[arg(long, env = ENV_BASE_URL, hide_env_values = true, value_name = "URL", value_parser = Text)]
    pub engage_base_url: Option<String>,

    /// Engage's API key [default: read from the file named by `[engage] api_key_file` in the
    /// config file]. Prefer the variable or the key file: a command line is visible to other
    /// users of the machine. Never printed
    #[arg(long, env = ENV_API_KEY, hide_env_values = true, value_name = "KEY",
          value_parser = Text.map(Secret::from))]
    pub engage_api_key: Option<Secret>,
}

/// Reads a flag's or its environment variable's value as text and, when it is not UTF-8, says
/// which flag and variable (clap's own message names neither) without showing the value: it
/// may be a secret.
#[derive(Clone)]
struct Text;

impl clap::builder::TypedValueParser for Text {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        value.to_str().map(str::to_owned).ok_or_else(|| {
            let name = arg.map_or_else(|| "a value".to_string(), flag_and_variable);
            clap::Error::raw(
                clap::error::ErrorKind::InvalidUtf8,
                format!("{name} is not valid UTF-8 text (the value is not shown): set it again\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// `--flag / VARIABLE`, or only the flag when it has no variable.
fn flag_and_variable(arg: &clap::Arg) -> String {
    let flag = arg
        .get_long()
        .map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
    match arg.get_env() {
        Some(env) => format!("{flag} / {}", env.to_string_lossy()),
        None => flag,
    }
}

impl EngageArgs {
    /// The values for the settings (`config::engage` applies them over the config file).
    pub fn access(&self) -> crate::config::EngageAccess {
        crate::config::EngageAccess {
            base_url: self.engage_base_url.clone(),
            api_key: self.engage_api_key.clone(),
        }
    }
}

/// The SFTP login's secrets (delta). Never in the config file, never printed.
#[derive(Debug, Args)]
pub struct SftpArgs {
    /// The SFTP password [default: read from `[sftp] password_file` in the config file]. Prefer
    /// the variable or the file: a command line is visible to other users of the machine
    #[arg(long, env = ENV_PASSWORD, hide_env_values = true, value_name = "PASSWORD",
          value_parser = Text.map(Secret::from))]
    pub sftp_password: Option<Secret>,

    /// The passphrase of `[sftp] private_key_file`, when it is encrypted
    #[arg(long, env = ENV_PASSPHRASE, hide_env_values = true, value_name = "PASSPHRASE",
          value_parser = Text.map(Secret::from))]
    pub sftp_passphrase: Option<Secret>,
}

impl SftpArgs {
    /// The values for the settings (`config::sftp` puts them into the resolved `[sftp]`).
    pub fn secrets(&self) -> crate::config::SftpSecrets {
        crate::config::SftpSecrets {
            password: self.sftp_password.clone(),
            passphrase: self.sftp_passphrase.clone(),
        }
    }
}

/// `delta`.
#[derive(Debug, Args)]
pub struct DeltaArgs {
    /// Export files, or folders whose *.xml files are imported [default: `inbox` in the config
    /// file, else ./inbox]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Go on with the next file after a bad one; the exit code still reports the failure
    #[arg(long)]
    pub keep_going: bool,

    /// Move applied (and already-applied) files to this folder [default: `archive` in the
    /// config file, else files stay where they are]
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,

    /// Move malformed files to this folder [default: `quarantine` in the config file, else
    /// `quarantine` beside the database]
    #[arg(long, value_name = "DIR")]
    pub quarantine: Option<PathBuf>,

    /// Leave files found in a folder that changed less than this long ago for a later run
    /// (still being written, perhaps), e.g. 30s; 0 takes every file [default: `inbox_min_age`
    /// in the config file, else 5s]. Files named on the command line are always taken
    #[arg(
        long,
        value_name = "AGE",
        env = "ENGAGE_SYNC_INBOX_MIN_AGE",
        value_parser = duration_arg
    )]
    pub min_age: Option<std::time::Duration>,

    /// Where the files come from: `sftp` downloads new files from Engage's SFTP server
    /// (`[sftp]` in the config file) into the inbox first, `local` imports the inbox (or the
    /// PATHs) only [default: sftp when `[sftp] host` is set and no PATH is given, else local]
    #[arg(long, value_name = "SOURCE", conflicts_with = "paths")]
    pub from: Option<DeltaSource>,

    /// Trust the SFTP server's host key with this fingerprint (SHA256:…, as printed when an
    /// unknown or changed key is refused), after checking it with the Voyado team; it is
    /// recorded in `[sftp] known_hosts` (a changed key replaces the old entry)
    #[arg(long, value_name = "FINGERPRINT", value_parser = parse_trust_fingerprint)]
    pub trust_host_key: Option<String>,

    /// Stop after this long (e.g. 10m): no connection, retry or download starts later; files
    /// downloaded completely are still imported, the rest is left for the next run (exit 75)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub deadline: Option<std::time::Duration>,

    /// The SFTP password and passphrase.
    #[command(flatten)]
    pub sftp: SftpArgs,

    /// Whether a missing replica may be created.
    #[command(flatten)]
    pub create: CreateArgs,

    /// Options of every writing command.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// Where `delta` takes its files from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeltaSource {
    /// Engage's SFTP server (`[sftp]` in the config file), via the inbox.
    Sftp,
    /// The inbox folder or the PATHs given.
    Local,
}

fn parse_trust_fingerprint(value: &str) -> Result<String, String> {
    crate::config::sftp::parse_fingerprint(value)
}

/// `changes`.
#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// Read changes from this time instead of the stored cursor (e.g. 2026-11-01,
    /// "2026-11-01 08:00:00", 2026-11-01T08:00:00+01:00; no offset means UTC)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Stop after this long (e.g. 10m): no request starts later; the cursor stays where it was
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub deadline: Option<std::time::Duration>,

    /// Engage's base URL and key.
    #[command(flatten)]
    pub engage: EngageArgs,

    /// Whether a missing replica may be created.
    #[command(flatten)]
    pub create: CreateArgs,

    /// Options of every writing command.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `full`.
#[derive(Debug, Args)]
pub struct FullArgs {
    /// Build from a complete contact-export file set: files, or folders whose *.xml files are
    /// used (paths holding no export file are refused, exit 64). Without it, the build comes
    /// from the API: every contact created or updated since --since is listed with the changes
    /// feed, then fetched one by one (rate-limited)
    #[arg(long = "from-xml", value_name = "PATH", num_args = 1..)]
    pub from_xml: Vec<PathBuf>,

    /// API build: list contacts created or updated since this date [default: 2000-01-01]
    #[arg(long, value_name = "DATE", conflicts_with = "from_xml")]
    pub since: Option<String>,

    /// Mode of the new replica [default: the current replica's, else `mode` in the config
    /// file, else full]. `full` is the one way to change a replica's mode.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// Discard an unfinished build and start over
    #[arg(long)]
    pub restart: bool,

    /// Stop after this long (e.g. 10m); a later run resumes the build
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub deadline: Option<std::time::Duration>,

    /// Engage's base URL and key (an API build).
    #[command(flatten)]
    pub engage: EngageArgs,

    /// Options of every writing command.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `lookup`: exactly one key.
#[derive(Debug, Args)]
#[group(id = "key", required = true, multiple = false)]
pub struct LookupArgs {
    /// Mobile phone, in any common format (national numbers use the default country)
    #[arg(long, group = "key", value_name = "PHONE")]
    pub mobile: Option<String>,
    /// E-mail address (case-insensitive)
    #[arg(long, group = "key", value_name = "EMAIL")]
    pub email: Option<String>,
    /// Member number
    #[arg(long, group = "key", value_name = "NUMBER")]
    pub member_number: Option<String>,
    /// Engage contact id (GUID, any case)
    #[arg(long, group = "key", value_name = "GUID")]
    pub contact_id: Option<String>,
    /// External id
    #[arg(long, group = "key", value_name = "ID")]
    pub external_id: Option<String>,
    /// Personal identity number (personnummer)
    #[arg(long, group = "key", value_name = "SSN")]
    pub ssn: Option<String>,
    /// Local integration key of a contact registered at the till (e.g. L0600-000123)
    #[arg(long, group = "key", value_name = "KEY")]
    pub local_key: Option<String>,
}
