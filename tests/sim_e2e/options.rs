//! The simulator's command line: bad values are usage errors (exit 2) that name the option and
//! the accepted range; the access token comes from `--token` or `SMARTMETER_TOKEN`, is stored
//! owner-only, survives a restart without it, and `--token ''` removes it.

use std::process::{Command, Stdio};

use crate::sim_support::*;

/// Runs the simulator with `args`; one that is still running after `SOON` accepted them and is
/// killed (its output then shows the `listening on` line).
fn sim_args(args: &[&str]) -> std::process::Output {
    let dir = temp_dir("bad-opts");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smartmeter-sim"));
    cmd.args(["--port", "0", "--stream-port", "0"]);
    if !args.contains(&"--state") {
        cmd.arg("--state").arg(&dir);
    }
    let mut child = cmd
        .args(args)
        .env_remove("SMARTMETER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smartmeter-sim");
    let deadline = std::time::Instant::now() + SOON;
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(dir);
    out
}

#[test]
fn bad_options_exit_2_with_a_message_naming_the_range() {
    let dir = temp_dir("opts");
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let file = file.display().to_string();
    let long_token = "t".repeat(65);
    let table: &[(&[&str], &str)] = &[
        (&["--voltage", "nan"], "0-1000 V"),
        (&["--voltage", "inf"], "0-1000 V"),
        (&["--voltage", "-1"], "0-1000 V"),
        (&["--voltage", "1e6"], "0-1000 V"),
        (&["--voltage", "230,230"], "0-1000 V, one value or V1,V2,V3"),
        (&["--voltage", "230,-1,230"], "0-1000 V"),
        (
            &["--vharmonic", "51:0.1"],
            "vharmonic order: expected an integer 2-50",
        ),
        (&["--vharmonic", "3:2"], "vharmonic amplitude: expected 0-1"),
        (
            &["--dip", "4s:100ms"],
            "expected AT:DURATION:RESIDUAL[:PHASES]",
        ),
        (&["--dip", "4s:100ms:1.5"], "dip residual: expected 0-1"),
        (
            &["--dip", "4s:100ms:0.6:4"],
            "dip phases: expected a comma-separated list",
        ),
        (&["--dip", "4q:100ms:0.6"], "dip start: expected a duration"),
        (&["--swell", "4s:100ms:0.9"], "swell level: expected 1-2"),
        (
            &["--interrupt", "4s:0ms"],
            "interrupt duration: expected a duration > 0",
        ),
        (
            &["--flicker", "0:1"],
            "flicker rate: expected changes per minute > 0",
        ),
        (
            &["--flicker", "110:51"],
            "flicker depth: expected ΔV/V 0-50",
        ),
        (
            &["--flicker", "110:1", "--flicker", "7:1"],
            "cannot be used multiple times",
        ),
        (&["--frequency", "0"], "40-70 Hz"),
        (&["--frequency", "nan"], "40-70 Hz"),
        (&["--frequency", "400"], "40-70 Hz"),
        (&["--name", "bad!name"], "1-24 characters of A-Z a-z 0-9 -"),
        (&["--name", ""], "1-24 characters of A-Z a-z 0-9 -"),
        (
            &["--name", "a-name-that-is-far-too-long"],
            "1-24 characters",
        ),
        (&["--max-clients", "0"], "1-1024"),
        (&["--max-clients", "-3"], "1-1024"),
        (&["--noise", "nan"], "0-1"),
        (&["--current", "1,nan,3"], "three comma-separated numbers"),
        (&["--harmonic", "1:0.2"], "K in 2..=50"),
        (&["--token", &long_token], "at most 64 bytes"),
        (&["--state", &file], "it exists and is not a directory"),
        (&["--bogus"], "unexpected argument"),
    ];
    for (args, said) in table {
        let o = sim_args(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: `{said}` not in {err}");
        assert!(o.stdout.is_empty(), "{args:?}: started anyway");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn help_describes_the_token_without_citing_files_or_printing_it() {
    let o = Command::new(env!("CARGO_BIN_EXE_smartmeter-sim"))
        .arg("--help")
        .env("SMARTMETER_TOKEN", "do-not-print-me")
        .output()
        .unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(!help.contains("PROTOCOL"), "{help}");
    assert!(!help.contains("do-not-print-me"), "{help}");
    assert!(help.contains("SMARTMETER_TOKEN"), "{help}");
    assert!(help.contains("keeps it"), "{help}");
    assert!(help.contains("--token ''"), "{help}");
    assert!(help.contains("40-70"), "{help}");
    for option in [
        "--vharmonic",
        "--dip",
        "--swell",
        "--interrupt",
        "--flicker",
        "V1,V2,V3",
    ] {
        assert!(help.contains(option), "{option} missing from {help}");
    }
    assert!(
        help.contains("listening on"),
        "schedule zero not explained: {help}"
    );
}

#[cfg(unix)]
fn modes(dir: &std::path::Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut v: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().permissions().mode() & 0o777,
            )
        })
        .collect();
    v.sort();
    v
}

fn mdns(c: &mut Client, name: &str) -> Value {
    c.cmd(json!({"cmd":"mdns","payload":{"name":name}}))
}

#[test]
fn token_from_the_environment_is_stored_owner_only_kept_and_cleared_by_an_empty_one() {
    let state = temp_dir("token");
    // The token from SMARTMETER_TOKEN alone.
    let sim = Sim::start_with_env(state.clone(), &[], &[("SMARTMETER_TOKEN", "from-env")]);
    let (mut c, _) = sim.connect();
    assert_err(&mdns(&mut c, "n1"), "Authentication required");
    c.cmd(json!({"cmd":"addWifi","payload":{"ssid":"Lab","pwd":"wifi-secret"}}));
    assert_eq!(
        c.cmd(json!({"cmd":"auth","token":"from-env"}))["msg"],
        "Authenticated"
    );
    c.cmd(json!({"cmd":"addWifi","payload":{"ssid":"Lab","pwd":"wifi-secret"}}));
    drop(c);
    let (_, state) = sim.terminate();
    #[cfg(unix)]
    {
        let m = modes(&state);
        assert!(m.iter().any(|(n, _)| n.starts_with("settings")), "{m:?}");
        assert!(m.iter().all(|(_, mode)| *mode == 0o600), "{m:?}");
    }

    // Restarted without it: the stored token still guards (as `--help` says).
    let sim = Sim::start_in(state.clone(), &[]);
    let (mut c, _) = sim.connect();
    assert_err(&mdns(&mut c, "n2"), "Authentication required");
    assert_err(
        &c.cmd(json!({"cmd":"auth","token":"other"})),
        "Invalid token",
    );
    drop(c);
    let (_, state) = sim.terminate();

    // `--token` wins over the environment.
    let sim = Sim::start_with_env(
        state.clone(),
        &["--token", "from-arg"],
        &[("SMARTMETER_TOKEN", "from-env")],
    );
    let (mut c, _) = sim.connect();
    assert_err(
        &c.cmd(json!({"cmd":"auth","token":"from-env"})),
        "Invalid token",
    );
    assert_eq!(
        c.cmd(json!({"cmd":"auth","token":"from-arg"}))["msg"],
        "Authenticated"
    );
    drop(c);
    let (_, state) = sim.terminate();

    // An empty token removes the stored one: the meter is open, also after the next restart.
    let sim = Sim::start_with_env(state.clone(), &[], &[("SMARTMETER_TOKEN", "")]);
    let (mut c, _) = sim.connect();
    assert_eq!(mdns(&mut c, "open-1")["mdns_name"], "open-1");
    drop(c);
    let (_, state) = sim.terminate();
    let sim = Sim::start_in(state.clone(), &[]);
    let (mut c, _) = sim.connect();
    assert_eq!(mdns(&mut c, "open-2")["mdns_name"], "open-2");
    drop(c);
    let (_, state) = sim.terminate();
    // The same with `--token ''`.
    let (_, state) = Sim::start_in(state, &["--token", "t2"]).terminate();
    let sim = Sim::start_in(state, &["--token", ""]);
    let (mut c, _) = sim.connect();
    assert_eq!(mdns(&mut c, "open-3")["mdns_name"], "open-3");
}
