//! The files `deploy/` ships for operators: systemd reads the units
//! without a complaint (`systemd-analyze verify`), pointed at this
//! build's binary.

mod common;

use std::process::Command;

use common::{host_binary, workspace_root};

#[test]
fn the_systemd_units_verify() {
    let folder = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string(workspace_root().join("deploy/host.service"))
        .unwrap()
        .replace("/usr/local/bin/host", &host_binary().display().to_string());
    assert!(
        service.contains("Type=notify") && service.contains("ExecReload=/bin/kill -HUP $MAINPID")
    );
    std::fs::write(folder.path().join("host.service"), service).unwrap();
    std::fs::copy(
        workspace_root().join("deploy/host.socket"),
        folder.path().join("host.socket"),
    )
    .unwrap();
    for unit in ["host.service", "host.socket"] {
        let output = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(folder.path().join(unit))
            .output()
            .expect("systemd-analyze (.ci/install tests installs systemd)");
        let said = String::from_utf8_lossy(&output.stderr);
        // the user "host" need not exist on this machine
        let complaints: Vec<&str> = said
            .lines()
            .filter(|line| {
                !line.trim().is_empty() && !line.contains("User=") && !line.contains("user host")
            })
            .collect();
        assert!(
            output.status.success() && complaints.is_empty(),
            "{unit}: {said}"
        );
    }
}
