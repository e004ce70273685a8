mod device_support;
use device_support::*;
#[test]
fn scratch() {
    let mut b = Bench::new();
    let c = b.tcp(1000);
    b.run(300);
    for l in [
        "{\"cmd\":\"info\"}",
        "{\"cmd\":\"getPower\"}",
        "{\"cmd\":\"getVoltage\"}",
        "{\"cmd\":\"getCurrent\"}",
        "{\"cmd\":\"getEnergy\"}",
        "{\"cmd\":\"getPeriod\"}",
        "{\"cmd\":\"getPhaseAngle\"}",
        "{\"cmd\":\"getQuality\"}",
        "?",
        "!",
        "junk",
        "{\"cmd\":\"nope\"}",
        "{\"cmd\":\"mdns\",\"payload\":{\"name\":\"kitchen\"}}",
        "{\"cmd\":\"getLog\"}",
        "{\"cmd\":\"sample\",\"payload\":{\"type\":\"TCP\",\"rate\":1}}",
        "{\"cmd\":\"getPower\"}",
    ] {
        println!("> {l}\n{}", b.cmd(c, l));
    }
    b.run(3000);
    println!("{}", b.cmd(c, "{\"cmd\":\"stop\"}"));
}
