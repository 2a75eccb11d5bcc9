//! One SSH connection with an SFTP session, opened (and re-opened) on demand, and
//! [`Remote::call`], which runs an SFTP operation with timeouts, retries with backoff and jitter
//! (the HTTP client's [`RetryPolicy`]) and the run's deadline.
//!
//! An operation that fails because the connection dropped or stalled is retried on a new
//! connection; the operations are written to be repeated (a download resumes at the length
//! of its temporary file). A refused host key or login, a missing folder, or a denied
//! permission is not retried: repeating cannot fix it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::error::Error as SftpProtoError;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::StatusCode;

use super::credentials::Credentials;
use super::error::SftpError;
use super::hostkey::{fingerprint, HostKeyCheck, Verdict};
use crate::config::sftp::SftpSettings;
use crate::engage::retry::RetryPolicy;

/// Why an SFTP operation failed, as the operation sees it.
#[derive(Debug)]
pub(crate) enum OpError {
    /// The protocol or connection failed; [`Remote::call`] decides whether to retry.
    Sftp(SftpProtoError),
    /// A failure the operation already judged final (a local write, a missing folder).
    Fatal(SftpError),
}

impl From<SftpProtoError> for OpError {
    fn from(e: SftpProtoError) -> Self {
        OpError::Sftp(e)
    }
}

impl From<std::io::Error> for OpError {
    /// An error while reading a remote file (russh-sftp reports those as `io::Error`).
    fn from(e: std::io::Error) -> Self {
        OpError::Sftp(SftpProtoError::from(e))
    }
}

/// How an attempt ended, for the retry loop.
enum Failure {
    /// Do not retry.
    Fatal(SftpError),
    /// Worth another attempt. `connected`: the attempt had a working session (so the server
    /// is there, but dropped or stalled), which decides 75 over 69 when the retries run out.
    Retry { cause: String, connected: bool },
}

/// True when the status says the server could not be asked (no or lost connection).
pub(crate) fn is_status(e: &SftpProtoError, code: StatusCode) -> bool {
    matches!(e, SftpProtoError::Status(s) if s.status_code == code)
}

/// Judges a failed operation: statuses the server answered are final, everything else
/// (I/O, timeouts, a lost connection, garbled packets) is worth a new connection.
fn classify(e: OpError, what: &str, server: &str) -> Failure {
    let e = match e {
        OpError::Fatal(e) => return Failure::Fatal(e),
        OpError::Sftp(e) => e,
    };
    match &e {
        SftpProtoError::Status(s) => match s.status_code {
            StatusCode::NoConnection | StatusCode::ConnectionLost => Failure::Retry {
                cause: e.to_string(),
                connected: true,
            },
            StatusCode::PermissionDenied => Failure::Fatal(SftpError::Permission {
                what: what.to_string(),
                server: server.to_string(),
                message: status_text(&e),
            }),
            _ => Failure::Fatal(SftpError::Remote {
                what: what.to_string(),
                server: server.to_string(),
                message: status_text(&e),
            }),
        },
        SftpProtoError::Timeout => Failure::Retry {
            cause: "the server did not answer within request_timeout".into(),
            connected: true,
        },
        _ => Failure::Retry {
            cause: e.to_string(),
            connected: true,
        },
    }
}

fn status_text(e: &SftpProtoError) -> String {
    match e {
        SftpProtoError::Status(s) if !s.error_message.is_empty() => {
            format!("{:?}: {}", s.status_code, s.error_message)
        }
        SftpProtoError::Status(s) => format!("{:?}", s.status_code),
        other => other.to_string(),
    }
}

/// The key the server presented (none for a certificate) and the verdict on it.
type Seen = Arc<Mutex<Option<(Option<PublicKey>, Verdict)>>>;

/// The russh side: checks the host key and remembers what it decided, so a refusal can be
/// reported with its reason (russh itself only says "unknown server key").
struct Client {
    check: Arc<HostKeyCheck>,
    seen: Seen,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (key, verdict) = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                (Some(key.clone()), self.check.verify(key))
            }
            PublicKeyOrCertificate::Certificate(_) => (
                None,
                Verdict::Refused(
                    "the SFTP server presented a host certificate, which engage-sync does not \
                     check; ask Voyado for the plain host key's fingerprint"
                        .into(),
                ),
            ),
        };
        let accepted = !matches!(verdict, Verdict::Refused(_));
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((key, verdict));
        }
        Ok(accepted)
    }
}

/// A logged-in connection with its SFTP session.
pub(crate) struct Connected {
    handle: russh::client::Handle<Client>,
    pub(crate) sftp: SftpSession,
}

/// Opens connections: TCP, SSH handshake with the host key check, login, SFTP subsystem.
struct Connector {
    settings: SftpSettings,
    creds: Credentials,
    check: Arc<HostKeyCheck>,
    config: Arc<russh::client::Config>,
    dry_run: bool,
    /// A key trusted with `--trust-host-key` was recorded (or reported) already.
    trust_handled: bool,
    notes: Vec<String>,
}

impl Connector {
    async fn open(&mut self) -> Result<Connected, Failure> {
        let s = &self.settings;
        let limit = s.connect_timeout;
        let refused = |cause: String| Failure::Retry {
            cause,
            connected: false,
        };
        let tcp = match tokio::time::timeout(
            limit,
            tokio::net::TcpStream::connect((s.host.as_str(), s.port)),
        )
        .await
        {
            Err(_) => return Err(refused(format!("no answer within {}", secs(limit)))),
            Ok(Err(e)) => return Err(refused(e.to_string())),
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        let seen: Seen = Arc::new(Mutex::new(None));
        let client = Client {
            check: self.check.clone(),
            seen: seen.clone(),
        };
        let handshake = russh::client::connect_stream(self.config.clone(), tcp, client);
        let mut handle = match tokio::time::timeout(limit, handshake).await {
            Err(_) => return Err(refused(format!("no SSH handshake within {}", secs(limit)))),
            Ok(Err(e)) => {
                let verdict = seen.lock().ok().and_then(|mut s| s.take());
                return Err(match verdict {
                    Some((_, Verdict::Refused(msg))) => Failure::Fatal(SftpError::HostKey(msg)),
                    _ => refused(format!("SSH handshake failed: {e}")),
                });
            }
            Ok(Ok(h)) => h,
        };
        let verdict = seen.lock().ok().and_then(|mut s| s.take());
        if let Some((Some(key), Verdict::TrustedNow { replaces })) = verdict {
            self.record_trusted(&key, &replaces)
                .map_err(Failure::Fatal)?;
        }
        match tokio::time::timeout(limit, self.log_in(&mut handle)).await {
            Err(_) => return Err(refused(format!("no login answer within {}", secs(limit)))),
            Ok(r) => r?,
        }
        let request_timeout = self.settings.request_timeout;
        let sftp = match tokio::time::timeout(limit, open_sftp(&handle, request_timeout)).await {
            Err(_) => Err(format!("no SFTP session within {}", secs(limit))),
            Ok(r) => r,
        }
        .map_err(|cause| Failure::Retry {
            cause,
            connected: true,
        })?;
        tracing::debug!("connected to the SFTP server {}", self.settings.server());
        Ok(Connected { handle, sftp })
    }

    /// Public key first (if configured), then password (if configured).
    async fn log_in(&self, handle: &mut russh::client::Handle<Client>) -> Result<(), Failure> {
        let s = &self.settings;
        let broken = |e: russh::Error| Failure::Retry {
            cause: format!("login failed: {e}"),
            connected: false,
        };
        let mut tried = Vec::new();
        if let Some((key, path)) = &self.creds.key {
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten()
            } else {
                None
            };
            tried.push(format!("public key {}", path.display()));
            let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
            if handle
                .authenticate_publickey(s.user.clone(), key)
                .await
                .map_err(broken)?
                .success()
            {
                return Ok(());
            }
        }
        if let Some(password) = &self.creds.password {
            tried.push("password".to_string());
            if handle
                .authenticate_password(s.user.clone(), password.expose())
                .await
                .map_err(broken)?
                .success()
            {
                return Ok(());
            }
        }
        Err(Failure::Fatal(SftpError::Auth {
            server: s.server(),
            tried: tried.join(", "),
        }))
    }

    /// Records a key the user trusted with `--trust-host-key` (once per run; not in a dry run).
    fn record_trusted(&mut self, key: &PublicKey, replaces: &[usize]) -> Result<(), SftpError> {
        if self.trust_handled {
            return Ok(());
        }
        self.trust_handled = true;
        let fp = fingerprint(key);
        let note = if self.dry_run {
            format!("host key {fp} trusted for this dry run (not recorded)")
        } else {
            match self.check.record(key, replaces)? {
                Some(path) if replaces.is_empty() => {
                    format!("host key {fp} trusted and recorded in {}", path.display())
                }
                Some(path) => format!(
                    "host key {fp} trusted; it replaces the old key in {} (kept as a comment)",
                    path.display()
                ),
                None => format!(
                    "host key {fp} trusted for this run; set [sftp] host_key_fingerprint = \
                     \"{fp}\" so the next run accepts it"
                ),
            }
        };
        tracing::warn!("{note}");
        self.notes.push(note);
        Ok(())
    }
}

async fn open_sftp(
    handle: &russh::client::Handle<Client>,
    request_timeout: Duration,
) -> Result<SftpSession, String> {
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| format!("cannot open an SSH channel: {e}"))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| format!("the server refused the SFTP subsystem: {e}"))?;
    let config = russh_sftp::client::Config {
        request_timeout_secs: request_timeout.as_secs().max(1),
        ..russh_sftp::client::Config::default()
    };
    SftpSession::new_with_config(channel.into_stream(), config)
        .await
        .map_err(|e| format!("cannot start the SFTP session: {e}"))
}

fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The SFTP server, connected on demand; every operation goes through [`Remote::call`].
pub(crate) struct Remote {
    rt: tokio::runtime::Runtime,
    connector: Connector,
    session: Option<Connected>,
    retry: RetryPolicy,
    deadline: Option<Instant>,
}

impl Remote {
    /// A remote for `settings`; nothing is connected yet.
    pub(crate) fn new(
        settings: &SftpSettings,
        creds: Credentials,
        check: HostKeyCheck,
        dry_run: bool,
        deadline: Option<Instant>,
    ) -> Result<Remote, SftpError> {
        // One worker thread keeps the SSH session answering keepalives while the import runs
        // on the main thread between operations.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("engage-sync-sftp")
            .enable_all()
            .build()
            .map_err(|e| SftpError::Setup(format!("cannot start the async runtime: {e}")))?;
        let preferred = russh::Preferred {
            key: check.preferred_algorithms().into(),
            ..russh::Preferred::default()
        };
        let config = russh::client::Config {
            client_id: russh::SshId::Standard(
                concat!("SSH-2.0-engage-sync_", env!("CARGO_PKG_VERSION")).into(),
            ),
            preferred,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..russh::client::Config::default()
        };
        Ok(Remote {
            rt,
            connector: Connector {
                settings: settings.clone(),
                creds,
                check: Arc::new(check),
                config: Arc::new(config),
                dry_run,
                trust_handled: false,
                notes: Vec::new(),
            },
            session: None,
            retry: settings.retry,
            deadline,
        })
    }

    /// Notes for the summary (a host key recorded with `--trust-host-key`).
    pub(crate) fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.connector.notes)
    }

    /// Runs `op` on a session, connecting first if needed; retries on a new connection when
    /// the connection drops or stalls, with backoff, until the retries or the deadline run
    /// out. `what` names the operation in logs and errors.
    pub(crate) fn call<T>(
        &mut self,
        what: &str,
        mut op: impl AsyncFnMut(&SftpSession) -> Result<T, OpError>,
    ) -> Result<T, SftpError> {
        let Remote {
            rt,
            connector,
            session,
            retry,
            deadline,
        } = self;
        let server = connector.settings.server();
        let deadline_error = || SftpError::Deadline {
            what: what.to_string(),
        };
        rt.block_on(async {
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let outcome = match deadline {
                    Some(d) => {
                        let once = attempt_once(connector, session, what, &mut op);
                        tokio::time::timeout_at((*d).into(), once)
                            .await
                            .unwrap_or_else(|_| Err(Failure::Fatal(deadline_error())))
                    }
                    None => attempt_once(connector, session, what, &mut op).await,
                };
                let (cause, connected) = match outcome {
                    Ok(v) => return Ok(v),
                    Err(Failure::Fatal(e)) => return Err(e),
                    Err(Failure::Retry { cause, connected }) => (cause, connected),
                };
                *session = None;
                if attempt > retry.max_retries {
                    return Err(if connected {
                        SftpError::Transient {
                            what: what.to_string(),
                            server: server.clone(),
                            attempts: attempt,
                            cause,
                        }
                    } else {
                        SftpError::Unavailable {
                            server: server.clone(),
                            attempts: attempt,
                            cause,
                        }
                    });
                }
                let delay = retry.delay(attempt, None);
                if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                    return Err(deadline_error());
                }
                tracing::warn!(
                    "{what} on the SFTP server {server}: {cause}; retry {attempt} of {} in {:.1} s",
                    retry.max_retries,
                    delay.as_secs_f64()
                );
                tokio::time::sleep(delay).await;
            }
        })
    }

    /// Ends the SSH session politely (best effort).
    pub(crate) fn close(&mut self) {
        if let Some(c) = self.session.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    c.handle
                        .disconnect(russh::Disconnect::ByApplication, "", "en"),
                )
                .await
            });
        }
    }
}

/// One attempt: connect if needed, then run the operation.
async fn attempt_once<T>(
    connector: &mut Connector,
    session: &mut Option<Connected>,
    what: &str,
    op: &mut impl AsyncFnMut(&SftpSession) -> Result<T, OpError>,
) -> Result<T, Failure> {
    if session.is_none() {
        *session = Some(connector.open().await?);
    }
    let Some(connected) = session.as_ref() else {
        return Err(Failure::Retry {
            cause: "no session".into(),
            connected: false,
        });
    };
    let server = connector.settings.server();
    op(&connected.sftp)
        .await
        .map_err(|e| classify(e, what, &server))
}
