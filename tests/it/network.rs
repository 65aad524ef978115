//! Company networks: a provider reached over TLS with certificates made by `openssl` (a company
//! CA, a server certificate it signed, a self-signed one, one for another name), trusted through
//! `provider.ca_file`, `SSL_CERT_FILE` or `SSL_CERT_DIR` or not at all, and reached through a
//! real HTTP CONNECT proxy named by `HTTPS_PROXY` (or past it, by `NO_PROXY`).
//!
//! The TLS server and the proxy are `net.py` (Python's `ssl`, so OpenSSL, in front of the
//! sandbox), started by each test on 127.0.0.1 and gone with it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use crate::common::*;

/// The certificates, made once per test process.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ca.pem` (a CA), `server.pem`/`server.key` (signed by it, for 127.0.0.1 and localhost),
/// `other.pem`/`other.key` (signed by it, for another name) and `self.pem`/`self.key`
/// (self-signed for 127.0.0.1, made as `openssl req -x509` makes one: a CA).
fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
        ca.extend(key);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        ca.extend(["-subj", "/O=Example Company/CN=Example Company Root CA"]);
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&dir, &ca);
        for (name, san) in [
            ("server", "IP:127.0.0.1,DNS:localhost"),
            ("other", "DNS:provider.example"),
        ] {
            let (csr, pem, keyfile) = (
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.key"),
            );
            let mut req = vec!["req", "-nodes", "-subj", "/CN=provider"];
            req.extend(key);
            req.extend(["-keyout", keyfile.as_str(), "-out", csr.as_str()]);
            openssl(&dir, &req);
            let ext = format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            );
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            let extfile = format!("{name}.ext");
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    csr.as_str(),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    pem.as_str(),
                    "-extfile",
                    extfile.as_str(),
                ],
            );
        }
        let mut own = vec!["req", "-x509", "-nodes", "-days", "2"];
        own.extend(key);
        own.extend([
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        own.extend(["-addext", "subjectAltName=IP:127.0.0.1"]);
        openssl(&dir, &own);
        Certs { dir }
    })
}

/// `net.py` running (a TLS server or a proxy), ended on drop (its stdin closes).
struct Net {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Net {
    fn start(ws: &Workspace, log: &str, args: &[&str]) -> Net {
        let python = std::env::var("PHONE_ENRICH_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/net.py");
        let log = ws.path(log);
        let mut child = Command::new(python)
            .arg(script)
            .arg(args[0])
            .arg(&log)
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("net.py printed `{line}`"));
        Net { child, port, log }
    }

    /// A TLS server with `cert` (`server`, `other`, `self`) in front of `sandbox`.
    fn tls(ws: &Workspace, sandbox: &SandboxProcess, cert: &str) -> Net {
        let target = sandbox.url.rsplit(':').next().unwrap().to_string();
        let (pem, key) = (
            certs().path(&format!("{cert}.pem")),
            certs().path(&format!("{cert}.key")),
        );
        Net::start(
            ws,
            "tls.log",
            &["tls", pem.to_str().unwrap(), key.to_str().unwrap(), &target],
        )
    }

    /// A CONNECT proxy; with `credentials` (`user:password`), only for requests carrying them.
    fn proxy(ws: &Workspace, credentials: Option<&str>) -> Net {
        let mut args = vec!["proxy"];
        args.extend(credentials);
        Net::start(ws, "proxy.log", &args)
    }

    /// The lines logged so far, one per connection (and per failed handshake).
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A job reading a small export through `sandbox`, at `base_url`, with `provider` lines.
fn job(ws: &Workspace, sandbox: &SandboxProcess, base_url: &str, provider: &str) -> PathBuf {
    generate(ws, "in.csv", 60, 7);
    let lines = provider_for(sandbox, provider).replace(&sandbox.url, base_url);
    ws.job("job.toml", "in.csv", "", &lines)
}

/// `run` with the trust and proxy variables of this machine removed, then `env` set.
fn run(ws: &Workspace, job: &Path, env: &[(&str, &str)]) -> Output {
    run_args(ws, job, &[], env)
}

fn run_args(ws: &Workspace, job: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(job)
        .args(args)
        .current_dir(ws.dir.path());
    for var in [
        "SMSC_LOGIN",
        "SMSC_PASSWORD",
        "SMSC_ACCOUNTS_FILE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("the binary runs")
}

fn quoted(path: &Path) -> String {
    format!("ca_file = \"{}\"\n", path.display())
}

fn fast_sandbox(ws: &Workspace) -> SandboxProcess {
    SandboxProcess::start(ws.dir.path(), FAST_SANDBOX)
}

/// A run that ended on the certificate: exit 2 after one connection, nothing retried, no
/// output, a message naming the host and `needs` (and no rustls variant name).
fn assert_refused(out: &Output, tls: &Net, sandbox: &SandboxProcess, needs: &[&str]) {
    assert_exit(out, 2);
    let host = format!("127.0.0.1:{}", tls.port);
    assert_stderr_contains(
        out,
        &format!("the certificate of {host} cannot be verified"),
    );
    for text in needs {
        assert_stderr_contains(out, text);
    }
    let text = stderr(out);
    for internal in [
        "OtherError",
        "CaUsedAsEndEntity",
        "UnknownIssuer",
        "InvalidCertificate",
    ] {
        assert!(
            !text.contains(internal),
            "rustls' `{internal}` shown:\n{text}"
        );
    }
    let log = tls.log();
    assert_eq!(
        log.iter().filter(|l| *l == "accepted").count(),
        1,
        "one connection, no retry: {log:?}"
    );
    assert_eq!(sandbox.stats().requests, 0);
}

#[test]
fn a_company_ca_in_provider_ca_file_is_trusted() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let tls = Net::tls(&ws, &sandbox, "server");
    let url = format!("https://127.0.0.1:{}", tls.port);
    let job = job(&ws, &sandbox, &url, &quoted(&certs().path("ca.pem")));
    let out = run(&ws, &job, &[]);
    assert_exit(&out, 0);
    assert!(sandbox.stats().requests > 0);
    assert_eq!(ws.read_output().height(), 60);
    // The name the certificate holds works as well as its address.
    let by_name = job_at(&ws, &sandbox, &format!("https://localhost:{}", tls.port));
    assert_exit(&run(&ws, &by_name, &[("SSL_CERT_FILE", ca_path())]), 0);
}

fn ca_path() -> &'static str {
    certs().path("ca.pem").to_str().unwrap().to_string().leak()
}

/// A second job file in `ws`, at `base_url`, with `--refresh`-free state of its own.
fn job_at(ws: &Workspace, sandbox: &SandboxProcess, base_url: &str) -> PathBuf {
    let lines = provider_for(sandbox, "").replace(&sandbox.url, base_url);
    let text = format!(
        "[input]\npath = \"in.csv\"\nphone_columns = [\"phone\"]\n\n[output]\npath = \"out2.parquet\"\n\n[state]\ndir = \"state2\"\n\n[provider]\n{lines}\n"
    );
    ws.write("job2.toml", text)
}

#[test]
fn ssl_cert_file_and_ssl_cert_dir_are_honoured() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let tls = Net::tls(&ws, &sandbox, "server");
    let url = format!("https://127.0.0.1:{}", tls.port);
    let job = job(&ws, &sandbox, &url, "");
    assert_exit(&run(&ws, &job, &[("SSL_CERT_FILE", ca_path())]), 0);
    assert!(sandbox.stats().requests > 0);
    let dir = ws.path("certs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(certs().path("ca.pem"), dir.join("company.pem")).unwrap();
    let before = sandbox.stats().requests;
    let out = run_args(
        &ws,
        &job,
        &["--refresh"],
        &[("SSL_CERT_DIR", dir.to_str().unwrap())],
    );
    assert_exit(&out, 0);
    assert!(sandbox.stats().requests > before, "the run sent nothing");
    assert_eq!(ws.read_output().height(), 60);
}

#[test]
fn an_unknown_ca_stops_the_run_at_the_first_request_with_exit_2() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let tls = Net::tls(&ws, &sandbox, "server");
    let url = format!("https://127.0.0.1:{}", tls.port);
    let job = job(&ws, &sandbox, &url, "");
    let out = run(&ws, &job, &[]);
    assert_refused(
        &out,
        &tls,
        &sandbox,
        &["not trust", "provider.ca_file", "SSL_CERT_FILE"],
    );
    assert!(!ws.path("out.parquet").exists());
}

#[test]
fn a_self_signed_server_certificate_is_explained_not_retried() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let tls = Net::tls(&ws, &sandbox, "self");
    let url = format!("https://127.0.0.1:{}", tls.port);
    // Trusted or not, a server presenting a CA's certificate as its own is refused.
    let job = job(&ws, &sandbox, &url, &quoted(&certs().path("self.pem")));
    let out = run(&ws, &job, &[]);
    assert_refused(
        &out,
        &tls,
        &sandbox,
        &[
            "a CA's certificate as its own",
            "provider.ca_file",
            "SSL_CERT_FILE",
        ],
    );
}

#[test]
fn a_certificate_for_another_name_points_at_base_url() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let tls = Net::tls(&ws, &sandbox, "other");
    let url = format!("https://127.0.0.1:{}", tls.port);
    let job = job(&ws, &sandbox, &url, &quoted(&certs().path("ca.pem")));
    let out = run(&ws, &job, &[]);
    assert_refused(
        &out,
        &tls,
        &sandbox,
        &[
            "does not name `127.0.0.1`",
            "provider.example",
            "provider.base_url",
        ],
    );
}

#[test]
fn a_missing_or_bad_ca_file_is_a_job_error_before_any_request() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let url = "https://127.0.0.1:9";
    let bad = ws.write(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let key = certs().path("server.key");
    for (file, says) in [
        (ws.path("missing.pem"), "missing.pem"),
        (bad, "bad.pem"),
        (key, "server.key"),
    ] {
        let job = job(&ws, &sandbox, url, &quoted(&file));
        let out = run(&ws, &job, &[]);
        assert_exit(&out, 2);
        assert_stderr_contains(&out, "provider.ca_file");
        assert_stderr_contains(&out, says);
    }
    assert_eq!(sandbox.stats().requests, 0);
}

#[test]
fn https_proxy_carries_the_requests_and_no_proxy_bypasses_it() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let tls = Net::tls(&ws, &sandbox, "server");
    let proxy = Net::proxy(&ws, None);
    let url = format!("https://127.0.0.1:{}", tls.port);
    let job = job(&ws, &sandbox, &url, &quoted(&certs().path("ca.pem")));
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let out = run(&ws, &job, &[("HTTPS_PROXY", &proxy_url)]);
    assert_exit(&out, 0);
    let tunnels = proxy.log();
    assert!(!tunnels.is_empty(), "no request went through the proxy");
    let expected = format!("CONNECT 127.0.0.1:{}", tls.port);
    assert!(tunnels.iter().all(|l| *l == expected), "{tunnels:?}");
    assert_eq!(ws.read_output().height(), 60);

    // NO_PROXY names the provider's host: straight there, the proxy sees nothing more.
    let before = sandbox.stats().requests;
    let env = [
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("NO_PROXY", "127.0.0.1"),
    ];
    let out = run_args(&ws, &job, &["--refresh"], &env);
    assert_exit(&out, 0);
    assert!(sandbox.stats().requests > before, "the run sent nothing");
    assert_eq!(proxy.log(), tunnels);
}

#[test]
fn a_proxy_that_wants_credentials_takes_them_from_the_proxy_url() {
    let ws = Workspace::new();
    let sandbox = fast_sandbox(&ws);
    let tls = Net::tls(&ws, &sandbox, "server");
    let proxy = Net::proxy(&ws, Some("etl:pr0xy-s3cret"));
    let url = format!("https://127.0.0.1:{}", tls.port);
    let job = job(&ws, &sandbox, &url, &quoted(&certs().path("ca.pem")));
    let with = format!("http://etl:pr0xy-s3cret@127.0.0.1:{}", proxy.port);
    let out = run(&ws, &job, &[("HTTPS_PROXY", &with)]);
    assert_exit(&out, 0);
    let expected = format!("CONNECT 127.0.0.1:{}", tls.port);
    let tunnels = proxy.log();
    assert!(
        !tunnels.is_empty() && tunnels.iter().all(|l| *l == expected),
        "{tunnels:?}"
    );
    assert!(
        !stderr(&out).contains("pr0xy-s3cret"),
        "the proxy password is logged"
    );
    assert_eq!(ws.read_output().height(), 60);
}
