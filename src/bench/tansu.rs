//! A `tansu` broker (Apache-Kafka-compatible, sqlite storage) on a free loopback port in a temp
//! dir: what `sellerguard bench` measures against when no `--bootstrap` is given, and what the
//! integration tests start. Found via `$TANSU_BIN`, `$PATH`, `$CARGO_HOME/bin`, `~/.cargo/bin`
//! (`cargo install tansu --locked --features libsql`). `TANSU_LOG` sets its RUST_LOG (default warn).
//!
//! Only the sqlite engine gets commits, resume and offsets-for-times right (its `memory://` engine
//! does not); topics are not auto-created; it has no transactions.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Ports to pick from when the kernel's ephemeral range cannot be read.
const FALLBACK_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// The ports to pick a listening port from: below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), so that no outgoing connection is ever handed one of
/// them as its local port.
fn listening_ports() -> std::ops::Range<u16> {
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok());
    match first_ephemeral {
        Some(lo) if lo > FALLBACK_PORTS.start + 1_000 => FALLBACK_PORTS.start..lo,
        Some(lo) if lo > 2_048 => 1_024..lo,
        _ => FALLBACK_PORTS,
    }
}

/// A free loopback port that the kernel will not hand out as an ephemeral port: picked at random
/// below the ephemeral range, checked by binding `127.0.0.1`, and never the same twice in one
/// process. A port from `bind(":0")` comes from the ephemeral range, so once its listener is
/// dropped any outgoing connection may take it: a broker restarted on its old port, or a service
/// started on a port picked a moment earlier, would then find it in use.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Option<std::collections::HashSet<u16>>> = std::sync::Mutex::new(None);
    let range = listening_ports();
    for _ in 0..10_000 {
        let port = rand::random_range(range.clone());
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let given = given.get_or_insert_with(Default::default);
        if given.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        given.insert(port);
        return port;
    }
    panic!("no free loopback port in {range:?}");
}

/// A running broker with a fresh database; killed (temp dir removed) on drop.
pub struct Tansu {
    pub port: u16,
    bin: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

#[derive(Debug, thiserror::Error)]
pub enum TansuError {
    #[error(
        "tansu broker binary not found (looked at $TANSU_BIN, $PATH, $CARGO_HOME/bin, ~/.cargo/bin): \
         `cargo install tansu --locked --features libsql`, set TANSU_BIN, or pass --bootstrap"
    )]
    NotFound,
    #[error("starting tansu: {0}")]
    Io(#[from] std::io::Error),
    #[error("tansu did not become ready: {0}")]
    NotReady(String),
}

/// Where the broker binary is, if anywhere.
pub fn find() -> Result<PathBuf, TansuError> {
    if let Some(p) = std::env::var_os("TANSU_BIN").map(PathBuf::from) {
        return if p.is_file() { Ok(p) } else { Err(TansuError::NotFound) };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin"));
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    (std::env::split_paths(&path).chain(cargo_home).chain(home))
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file())
        .ok_or(TansuError::NotFound)
}

fn spawn(bin: &Path, dir: &Path, port: u16) -> Result<Child, TansuError> {
    let url = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("tansu.log"))?;
    let filter = std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into());
    Ok(Command::new(bin)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(dir)
        .env("RUST_LOG", filter)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

impl Tansu {
    /// Starts a broker on a free loopback port and waits until it answers metadata.
    pub fn start() -> Result<Tansu, TansuError> {
        let bin = find()?;
        // Another process may bind the port between the pick and tansu's bind: retry on a new one.
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new().prefix("tansu-").tempdir()?;
            let port = free_port();
            let child = spawn(&bin, dir.path(), port)?;
            let mut t = Tansu { port, bin: bin.clone(), child, dir };
            match t.wait_ready() {
                Ok(()) => return Ok(t),
                Err(e) => last_err = format!("{e}\n--- tansu log ---\n{}", t.log()),
            }
        }
        Err(TansuError::NotReady(last_err))
    }

    /// Kills the broker (its data stays): a broker outage.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on the same port with the same data, and waits until it answers.
    pub fn restart(&mut self) -> Result<(), TansuError> {
        self.child = spawn(&self.bin, self.dir.path(), self.port)?;
        self.wait_ready().map_err(|e| TansuError::NotReady(format!("{e}\n{}", self.log())))
    }

    /// Waits for the listener, then for a metadata answer that lists a broker.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().map_err(|e| e.to_string())?;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                match consumer.fetch_metadata(None, Duration::from_secs(1)) {
                    Ok(md) if !md.brokers().is_empty() => return Ok(()),
                    _ => {}
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("tansu exited early with {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!("no metadata answer after {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own version line (`tansu --version`), for reports.
    pub fn version(&self) -> String {
        Command::new(&self.bin)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "tansu (version unknown)".into())
    }

    /// The broker's stdout+stderr so far (last 16 KiB), for failure messages.
    pub fn log(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default();
        let mut start = s.len().saturating_sub(16 * 1024);
        while !s.is_char_boundary(start) {
            start += 1;
        }
        s[start..].to_string()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
