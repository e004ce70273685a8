//! Outside programs the end-to-end tests run against (ffmpeg, mosquitto, PostgreSQL, promtool,
//! python3): find them on `PATH`, skip loudly when one is missing — or fail, when
//! `SMARTMETER_REQUIRE_PEERS=1` (CI installs every peer) — and a mosquitto broker on a free
//! loopback port.
//!
//! This is the only place that reads `SMARTMETER_REQUIRE_PEERS`.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a missing peer fails the test instead of skipping it (`SMARTMETER_REQUIRE_PEERS=1`).
pub fn required() -> bool {
    std::env::var("SMARTMETER_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Where `program` is on `PATH`, if anywhere.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// A loud skip of (part of) the running test because `why`; a failure when peers are required.
/// The caller returns (or leaves out the part) after it.
#[track_caller]
pub fn skip(why: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("this test");
    assert!(!required(), "{test}: {why} (SMARTMETER_REQUIRE_PEERS=1)");
    eprintln!("\n*** SKIPPED {test}: {why} (set SMARTMETER_REQUIRE_PEERS=1 to fail instead) ***\n");
}

/// Is the peer program `name` on `PATH`? Missing: a loud [`skip`] (or a failure when peers are
/// required).
#[track_caller]
pub fn peer(name: &str) -> bool {
    let found = on_path(name).is_some();
    if !found {
        skip(&format!("peer program `{name}` is not installed"));
    }
    found
}

/// A free loopback TCP port (bound, read back, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto broker on a free loopback port (anonymous, no persistence), stopped on drop.
/// Check [`peer`]`("mosquitto")` first.
pub struct Mosquitto {
    pub child: Child,
    pub port: u16,
    /// The TLS listeners ([`Mosquitto::start_tls`]).
    pub tls: Option<TlsListeners>,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Mosquitto::spawn(&conf, port);
        Mosquitto {
            child,
            port,
            tls: None,
            conf,
            _dir: dir,
        }
    }

    /// [`start`](Self::start) plus a TLS listener on a second port, with a certificate for
    /// `localhost` and `127.0.0.1` from a CA made for this broker (its PEM file in `tls`).
    #[allow(dead_code)] // not every test crate uses it
    pub fn start_tls() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let pki = TestPki::new();
        std::fs::write(path("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(path("broker.pem"), &pki.cert_pem).unwrap();
        std::fs::write(path("broker.key"), &pki.key_pem).unwrap();
        std::fs::write(path("client.pem"), &pki.client_cert_pem).unwrap();
        std::fs::write(path("client.key"), &pki.client_key_pem).unwrap();
        let mut ports = Vec::new();
        while ports.len() < 3 {
            let p = free_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let (port, tls_port, mtls_port) = (ports[0], ports[1], ports[2]);
        let (cert, key, ca) = (path("broker.pem"), path("broker.key"), path("ca.pem"));
        let conf = path("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "allow_anonymous true\npersistence false\nlistener {port} 127.0.0.1\n\
                 listener {tls_port} 127.0.0.1\ncertfile {c}\nkeyfile {k}\n\
                 listener {mtls_port} 127.0.0.1\ncertfile {c}\nkeyfile {k}\ncafile {a}\n\
                 require_certificate true\n",
                c = cert.display(),
                k = key.display(),
                a = ca.display(),
            ),
        )
        .unwrap();
        let child = Mosquitto::spawn(&conf, port);
        wait_listening(tls_port);
        wait_listening(mtls_port);
        Mosquitto {
            child,
            port,
            tls: Some(TlsListeners {
                port: tls_port,
                mtls_port,
                ca,
                client_cert: path("client.pem"),
                client_key: path("client.key"),
            }),
            conf,
            _dir: dir,
        }
    }

    fn spawn(conf: &Path, port: u16) -> Child {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        wait_listening(port);
        child
    }

    /// Kills the broker and starts it again on the same port (its clients see it go away).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Mosquitto::spawn(&self.conf, self.port);
    }

    /// `127.0.0.1:PORT`, as `--mqtt` takes it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The TLS listeners of a [`Mosquitto::start_tls`] broker and the files a client needs.
#[allow(dead_code)] // not every test crate uses it
#[derive(Debug, Clone)]
pub struct TlsListeners {
    /// Server authentication only.
    pub port: u16,
    /// Mutual TLS: the client must present a certificate the CA signed.
    pub mtls_port: u16,
    /// The CA of the broker's (and the client's) certificate, PEM.
    pub ca: PathBuf,
    /// A client certificate (CN `smartmeter`) and its key, PEM.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// A CA made for one test, a server certificate it signed for `localhost` and `127.0.0.1`, and a
/// client certificate (CN `smartmeter`), in PEM (what a TLS listener and its clients need).
#[allow(dead_code)] // not every test crate uses it
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

#[allow(dead_code)]
impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "smartmeter test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "smartmeter");
        let client = client.signed_by(&client_key, &ca, &ca_key).unwrap();
        TestPki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}

/// Waits until something accepts connections on the loopback port.
fn wait_listening(port: u16) {
    // A generous bound, never a timing assertion: it only fails when the broker never came up.
    let deadline = Instant::now() + Duration::from_secs(40);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "never happened: mosquitto accepts connections on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
