//! libnetwork's README `main()`, with cnm as a library: a controller, a
//! bridge network, an endpoint publishing a port, a sandbox with a
//! hostname and domain name, the join, and the endpoint's port mappings.
//! As root (it changes this host's network), e.g. on a throwaway private
//! host: `tests/support/private-host.sh cargo run --example embed`.
//! Leaves the topology `embed` applied; `cnm destroy --topology embed`
//! removes it (or run with `--destroy`).

use cnm::controller::{Controller, EndpointOptions, NetworkOptions, SandboxOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Select and configure the network driver, create a network.
    let mut controller = Controller::new("embed")?;
    controller.new_network(
        "bridge",
        "network1",
        NetworkOptions {
            subnet: Some("10.99.0.0/24".into()),
            ..Default::default()
        },
    )?;

    // For each new container: allocate IP and interfaces (an endpoint
    // publishing container port 80 on host port 8080).
    controller.create_endpoint(
        "network1",
        "Endpoint1",
        EndpointOptions {
            ports: vec!["8080:80/tcp".into()],
            ..Default::default()
        },
    )?;

    // Create the sandbox for the container.
    controller.new_sandbox(
        "container1",
        SandboxOptions {
            hostname: Some("test".into()),
            domainname: Some("docker.io".into()),
            ..Default::default()
        },
    )?;

    // Add the interface to the sandbox.
    controller.join("Endpoint1", "container1")?;

    // The endpoint's driver info: its port mappings.
    let info = controller.endpoint_info("Endpoint1")?;
    for p in &info.ports {
        println!(
            "Current port mapping for endpoint {}: {}/{} -> {}",
            info.name, p.host_port, p.protocol, p.container_port
        );
    }
    for a in &info.addresses {
        println!("Endpoint {} address: {a} on {}", info.name, info.interface);
    }
    if std::env::args().any(|a| a == "--destroy") {
        controller.destroy()?;
        println!("destroyed");
    }
    Ok(())
}
