//! `cnm` run by a container runtime as a CNI plugin (no arguments,
//! `CNI_COMMAND` set): the environment and standard input in, only the
//! result or the error object out (standard output belongs to the
//! protocol; messages go to standard error), exit 0 or 1.

use cnm::cni::{CniError, Env, MAX_CONFIG_BYTES};
use std::io::{Read, Write};
use std::process::ExitCode;

/// Whether this process is a CNI plugin call.
pub fn is_cni_call() -> bool {
    std::env::args_os().len() == 1 && std::env::var_os("CNI_COMMAND").is_some()
}

pub fn run() -> ExitCode {
    crate::cli_common::init_logging(0);
    let mut config = Vec::new();
    let read = std::io::stdin()
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut config);
    let version = cnm::cni_plugin::error_version(&config);
    let answer = match read {
        Err(e) => Err(CniError::new(
            cnm::cni::code::IO_FAILURE,
            format!("cannot read the configuration: {e}"),
        )),
        Ok(_) if config.len() as u64 > MAX_CONFIG_BYTES => Err(CniError::new(
            cnm::cni::code::INVALID_NETWORK_CONFIG,
            format!("the configuration is larger than {MAX_CONFIG_BYTES} bytes"),
        )),
        Ok(_) => serve(&config),
    };
    match answer {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(v)) => print(&v).map_or(ExitCode::FAILURE, |()| ExitCode::SUCCESS),
        Err(e) => {
            let _ = print(&e.to_json(&version));
            ExitCode::FAILURE
        }
    }
}

fn serve(config: &[u8]) -> Result<Option<serde_json::Value>, CniError> {
    let env = Env::read(|k| std::env::var(k).ok())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CniError::new(
                cnm::cni::code::CNM_FAILED,
                format!("cannot start the runtime: {e}"),
            )
        })?;
    rt.block_on(cnm::cni_plugin::serve(&env, config))
}

/// One JSON document on standard output; a closed or full one is
/// reported on standard error, never a panic.
fn print(v: &serde_json::Value) -> Result<(), ()> {
    let text = serde_json::to_string(v).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| {
            let _ = writeln!(std::io::stderr(), "cnm: cannot write the CNI answer: {e}");
        })
}
