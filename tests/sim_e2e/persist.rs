//! Issue 5 item 10: persistence across `kill -9` and SIGTERM.

use std::time::{Duration, Instant};

use crate::sim_support::*;

fn energy(c: &mut Client) -> [f64; 3] {
    eventually("getEnergy", || {
        let v = c.cmd(json!({"cmd":"getEnergy"}));
        (v["error"] == false).then(|| triple(&v, "energy"))
    })
}

fn power(c: &mut Client) -> [f64; 3] {
    eventually("getPower", || {
        let v = c.cmd(json!({"cmd":"getPower"}));
        (v["error"] == false && v["activePower"][0].is_number()).then(|| triple(&v, "activePower"))
    })
}

#[test]
fn kill_9_keeps_settings_and_loses_at_most_one_persist_interval_of_energy() {
    let sim = Sim::start(&["--persist-interval", "1"]);
    let (mut c, _) = sim.connect();
    c.cmd(json!({"cmd":"mdns","payload":{"name":"crashy"}}));
    c.cmd(json!({"cmd":"addWifi","payload":{"ssid":"Lab","pwd":"labpw"}}));
    c.cmd(json!({"cmd":"timeServer","payload":{"server":"127.0.0.1:9"}}));
    c.cmd(json!({"cmd":"streamServer","payload":{"server":"127.0.0.1:9"}}));
    c.cmd(json!({"cmd":"calibration","cal":[1.1,0.9,1.0,1.0,1.0,1.2]}));
    std::thread::sleep(Duration::from_secs(2));
    let p = power(&mut c);
    let e_read = energy(&mut c);
    let t_read = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let t_kill = Instant::now();
    let state = sim.crash();
    let held = (t_kill - t_read).as_secs_f64();

    let sim = Sim::start_in(state, &["--persist-interval", "1"]);
    let (mut c, info) = sim.connect();
    assert_eq!(info["name"], "crashy");
    assert_eq!(info["ssids"], "[energywifi, Lab]");
    assert_eq!(info["time_server"], "127.0.0.1:9");
    assert_eq!(info["stream_server"], "127.0.0.1:9");
    assert_eq!(info["calibration"], json!([1.1, 0.9, 1.0, 1.0, 1.0, 1.2]));
    let e_after = triple(&info, "energy");
    for k in 0..3 {
        let at_kill = e_read[k] + p[k] * held / 3600.0;
        // Lost at most one persist interval (1 s) plus one measurement window.
        let floor = at_kill - p[k] * 1.25 / 3600.0;
        assert!(
            e_after[k] >= floor,
            "L{}: {} Wh after restart, {} at the kill",
            k + 1,
            e_after[k],
            at_kill
        );
        assert!(
            e_after[k] <= at_kill + p[k] * 0.5 / 3600.0,
            "L{}: energy grew while dead",
            k + 1
        );
    }
    // And it keeps counting from there.
    assert!(energy(&mut c)[0] >= e_after[0]);
}

#[test]
fn sigterm_persists_and_exits_zero() {
    let sim = Sim::start(&["--persist-interval", "3600"]);
    let (mut c, _) = sim.connect();
    c.cmd(json!({"cmd":"mdns","payload":{"name":"termy"}}));
    std::thread::sleep(Duration::from_secs(1));
    let e_before = energy(&mut c);
    let (status, state) = sim.terminate();
    assert!(status.success(), "exit status {status:?}");
    let sim = Sim::start_in(state, &[]);
    let (_, info) = sim.connect();
    assert_eq!(info["name"], "termy");
    let e = triple(&info, "energy");
    // Persisted at shutdown although the periodic interval (1 h) never came (the registers count whole
    // millijoules: 2.8e-7 Wh).
    assert!(
        e[0] >= e_before[0] - 3e-7 && e[0] > 0.0,
        "{} < {}",
        e[0],
        e_before[0]
    );
}

#[test]
fn name_and_mqtt_options_override_the_stored_settings() {
    let sim = Sim::start(&["--name", "first"]);
    let (_, info) = sim.connect();
    assert_eq!(info["name"], "first");
    let (_, state) = sim.terminate();
    let sim = Sim::start_in(state.clone(), &[]);
    assert_eq!(sim.connect().1["name"], "first", "the override is stored");
    let (_, state) = sim.terminate();
    let port = free_port();
    let sim = Sim::start_in(
        state,
        &["--name", "second", "--mqtt", &format!("127.0.0.1:{port}")],
    );
    let (_, info) = sim.connect();
    assert_eq!(info["name"], "second");
    assert_eq!(info["mqtt_server"], format!("127.0.0.1:{port}"));
}
