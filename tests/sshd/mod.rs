//! A real OpenSSH server for the SFTP tests: Debian's `/usr/sbin/sshd` (openssh-server, which
//! `.ci/run` installs) on a free loopback port, in the foreground (`-D -e`), as the current user,
//! with its own config (`-f`), host key, authorized_keys and pid file in a temp folder, and
//! `internal-sftp`. The machine's own ssh configuration is never read or touched.
//!
//! Also [`CutProxy`], a loopback TCP relay that stops the server once a number of bytes went
//! to the client, so a download is cut in the middle deterministically.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd and its throwaway keys.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

/// The login name of the current user (sshd only lets it log in).
pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Generates an ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-C",
            "engage-sync-test",
            "-N",
            passphrase,
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(status.success(), "ssh-keygen failed");
}

/// `SHA256:…` of a public key file.
pub fn fingerprint(pub_key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_key)
        .output()
        .expect("ssh-keygen -lf");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
        .to_string()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

impl Sshd {
    /// Keys and config in a new temp folder; the server started on a free port.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (.ci/run does)"
        );
        ensure_privsep_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        keygen(&dir.path().join("host_ed25519"), "");
        keygen(&dir.path().join("user_ed25519"), "");
        std::fs::copy(
            dir.path().join("user_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        let mut sshd = Sshd {
            dir,
            port: free_port(),
            child: None,
        };
        std::fs::create_dir_all(sshd.remote_dir()).expect("remote dir");
        sshd.write_config();
        sshd.run();
        sshd
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The export folder on the server (an absolute path: no chroot).
    pub fn remote_dir(&self) -> PathBuf {
        self.path().join("home/integration/customerExport")
    }

    /// The user's key pair the server accepts.
    pub fn user_key(&self) -> PathBuf {
        self.path().join("user_ed25519")
    }

    /// The server's public host key file.
    pub fn host_key_pub(&self) -> PathBuf {
        self.path().join("host_ed25519.pub")
    }

    pub fn host_fingerprint(&self) -> String {
        fingerprint(&self.host_key_pub())
    }

    /// A `known_hosts` line for the server as reached on `port` (the server's or a proxy's).
    pub fn known_hosts_line(&self, port: u16) -> String {
        let key = std::fs::read_to_string(self.host_key_pub()).expect("host key");
        let mut parts = key.split_whitespace();
        let (alg, b64) = (parts.next().expect("alg"), parts.next().expect("key"));
        format!("[127.0.0.1]:{port} {alg} {b64}\n")
    }

    /// Also accept this public key file for the login.
    pub fn authorize(&self, pub_key: &Path) {
        let key = std::fs::read_to_string(pub_key).expect("pub key");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path().join("authorized_keys"))
            .expect("authorized_keys");
        f.write_all(key.as_bytes()).expect("append");
    }

    /// Puts a file in the export folder, complete (written beside it, then renamed).
    pub fn put(&self, name: &str, content: &[u8]) {
        let tmp = self.path().join(format!("upload-{name}"));
        std::fs::write(&tmp, content).expect("write");
        std::fs::rename(&tmp, self.remote_dir().join(name)).expect("rename");
    }

    /// Names in the export folder, sorted.
    pub fn remote_names(&self) -> Vec<String> {
        names_in(&self.remote_dir())
    }

    fn write_config(&self) {
        let d = self.path().display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPidFile {d}/sshd.pid\n\
             Subsystem sftp internal-sftp\nUsePAM no\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             AllowUsers {user}\nMaxStartups 100\nLogLevel VERBOSE\n",
            port = self.port,
            user = user()
        );
        std::fs::write(self.path().join("sshd_config"), config).expect("sshd_config");
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("sshd.log"))
            .expect("log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("sshd starts");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("sshd exited with {status}: {}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd did not listen within 10 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("sshd.log")).unwrap_or_default()
    }

    /// The listener's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server and every connection it serves.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills a process and all its descendants (found through /proc), children first. sshd's
/// per-connection processes start their own sessions, so a process group would miss them.
pub fn kill_tree(pid: u32) {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        all.extend(children_of(all[i]));
        i += 1;
    }
    for p in all.iter().rev() {
        let _ = Command::new("kill").arg("-9").arg(p.to_string()).status();
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// sshd started as root insists on its privilege-separation folder, which Debian's init
/// script creates at boot (/run is a tmpfs); create it the same way if it is missing. It is
/// an empty folder, not configuration.
fn ensure_privsep_dir() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if is_root && !Path::new("/run/sshd").exists() {
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755));
        }
    }
}

pub fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A loopback relay to a server port that, once `budget` bytes have gone from the server to
/// clients, calls `cut` (which stops the server) and closes the open connections.
pub struct CutProxy {
    pub port: u16,
    pub cut_done: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    pub fn start(upstream: u16, budget: u64, cut: impl FnOnce() + Send + 'static) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let cut_done = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(Mutex::new(Some(cut)));
        let (stop2, cut_done2) = (stop.clone(), cut_done.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        relay(
                            client,
                            server,
                            sent.clone(),
                            budget,
                            cut.clone(),
                            cut_done2.clone(),
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        CutProxy {
            port,
            cut_done,
            stop,
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn relay<F: FnOnce() + Send + 'static>(
    client: TcpStream,
    server: TcpStream,
    sent: Arc<AtomicU64>,
    budget: u64,
    cut: Arc<Mutex<Option<F>>>,
    cut_done: Arc<AtomicBool>,
) {
    let (c2, s2) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    // Client to server: plain copy.
    std::thread::spawn(move || {
        let (mut from, mut to) = (c2, s2);
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
    // Server to client: counted; the budget stops the server.
    std::thread::spawn(move || {
        let (mut from, mut to) = (server, client);
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total > budget && !cut_done.load(Ordering::SeqCst) {
                if let Some(f) = cut.lock().expect("lock").take() {
                    f();
                }
                cut_done.store(true, Ordering::SeqCst);
                break;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
