//! The command line: version, help, bad input as one clear line, refusal off loopback, shutdown.

use std::io::Write;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{vitals, Server};

fn run(args: &[&str]) -> Output {
    vitals().args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A usage error: non-zero exit, exactly one line, no panic or backtrace.
fn assert_one_line_error(output: &Output, needle: &str) {
    let err = stderr(output);
    assert!(!output.status.success(), "expected failure, stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("vitals {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--host", "--port", "--interval-secs", "--data-dir", "--config", "--token"] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn bad_port_is_one_line() {
    assert_one_line_error(&run(&["serve", "--port", "99999"]), "--port");
    assert_one_line_error(&run(&["serve", "--port", "http"]), "--port");
}

#[test]
fn bad_port_from_environment_is_one_line() {
    let out = vitals().args(["serve"]).env("VITALS_PORT", "nope").output().unwrap();
    assert_one_line_error(&out, "--port");
}

#[test]
fn interval_must_be_positive() {
    assert_one_line_error(&run(&["serve", "--interval-secs", "0"]), "interval-secs must be");
    assert_one_line_error(&run(&["serve", "--interval-secs", "-2"]), "interval-secs must be");
}

#[test]
fn config_file_problems_are_one_line() {
    assert_one_line_error(
        &run(&["serve", "--config", "/definitely/missing.toml"]),
        "cannot read config file /definitely/missing.toml",
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "port = 4000\nbogus = 1").unwrap();
    let path = file.path().to_str().unwrap();
    assert_one_line_error(&run(&["serve", "--config", path]), "unknown key `bogus`");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "port = [").unwrap();
    let path = file.path().to_str().unwrap();
    assert_one_line_error(&run(&["serve", "--config", path]), "invalid config file");
}

#[test]
fn refuses_non_loopback_without_a_token() {
    let out = run(&["serve", "--host", "0.0.0.0", "--port", "0"]);
    assert_one_line_error(&out, "without a token");
    assert!(stderr(&out).contains("--token"));
}

#[test]
fn port_in_use_is_one_line() {
    let server = Server::spawn(&[]);
    let port = server.addr.port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = vitals()
        .args(["serve", "--port", &port, "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_one_line_error(&out, "address already in use");
}

#[test]
fn settings_precedence_flag_then_env_then_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "interval-secs = 0").unwrap();
    let path = file.path().to_str().unwrap();
    // The file's bad value is overridden by the environment, which the flag overrides in turn.
    let out = vitals()
        .args(["serve", "--config", path, "--interval-secs", "-1"])
        .env("VITALS_INTERVAL_SECS", "2")
        .output()
        .unwrap();
    assert_one_line_error(&out, "(got -1)");
    let out = vitals()
        .args(["serve", "--config", path])
        .env("VITALS_INTERVAL_SECS", "-3")
        .output()
        .unwrap();
    assert_one_line_error(&out, "(got -3)");
    let out = run(&["serve", "--config", path]);
    assert_one_line_error(&out, "(got 0)");
}

#[test]
fn sigterm_shuts_down_cleanly_within_five_seconds() {
    let mut server = Server::spawn(&[]);
    let health = reqwest_get(&server.url("/health"));
    assert!(health.contains("\"status\""), "{health}");
    // A live client that reads nothing must not hold the shutdown up.
    let _idle = std::net::TcpStream::connect(server.addr).unwrap();
    let started = Instant::now();
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still running after 5 s");
        std::thread::sleep(Duration::from_millis(20)); // poll interval while waiting for exit
    };
    // Exit 0 means graceful: the forced exit after the grace period is status 3.
    assert!(status.success(), "exit status {status} (3: graceful shutdown did not finish)");
}

/// The body of a plain HTTP/1.1 GET (no chunked encoding expected for small JSON answers).
pub fn http_get_body(url: &str) -> String {
    let response = reqwest_get(url);
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// A minimal blocking HTTP/1.1 GET, enough for a health probe.
pub fn reqwest_get(url: &str) -> String {
    use std::io::Read;
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn other_bad_settings_are_one_line() {
    assert_one_line_error(&run(&["serve", "--statsd", "localhost:x"]), "statsd must be");
    assert_one_line_error(&run(&["serve", "--history", "0"]), "history must be");
    assert_one_line_error(&run(&["serve", "--max-series", "0"]), "max-series must be");
    assert_one_line_error(
        &run(&["serve", "--max-statistics-mb", "0"]),
        "max-statistics-mb must be",
    );
    assert_one_line_error(
        &run(&["serve", "--latency-excellent-ms", "3000", "--latency-good-ms", "2000"]),
        "latency thresholds must be",
    );
    assert_one_line_error(&run(&["serve", "--statsd", "0.0.0.0:8125"]), "without a token");
}

/// `vitals serve` on `dir` with logging off: its output.
fn serve_in(dir: &std::path::Path) -> Output {
    vitals()
        .args(["serve", "--port", "0", "--statsd", "off", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn a_database_it_cannot_trust_is_one_line_and_exit_2_never_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vitals.db");
    std::fs::write(&db, vec![0x42; 4096]).unwrap();
    let out = serve_in(dir.path());
    assert_one_line_error(&out, "is not a readable Vitals database");
    assert!(stderr(&out).contains(&db.display().to_string()), "names the file");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(&db).unwrap(), vec![0x42; 4096], "the user's file is untouched");
}

#[test]
fn a_data_directory_in_use_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let _running = Server::spawn_in(dir.path(), &[]);
    let out = serve_in(dir.path());
    assert_one_line_error(&out, "another Vitals is already using the data directory");
    assert!(stderr(&out).contains(&dir.path().display().to_string()));
    assert_eq!(out.status.code(), Some(2));
}
