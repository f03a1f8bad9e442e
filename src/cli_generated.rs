//! What cnm prints from its own definition: shell completions, the man
//! page, and generated files written out (the schema).

use crate::Cli;
use std::process::ExitCode;

/// `cnm completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cnm", &mut buf);
    print_generated(&buf)
}

/// `cnm man`: cnm(1), with a section per subcommand. clap_mangen's own
/// subcommand section names `cnm-plan(1)` pages, which do not exist: the
/// page is put together from its other sections instead, and lists the
/// subcommands in its own words.
pub fn man_page() -> ExitCode {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut buf = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    let rendered = man
        .render_title(&mut buf)
        .and_then(|()| man.render_name_section(&mut buf))
        .and_then(|()| man.render_synopsis_section(&mut buf))
        .and_then(|()| man.render_description_section(&mut buf))
        .and_then(|()| man.render_options_section(&mut buf))
        .and_then(|()| {
            buf.extend_from_slice(b".SH SUBCOMMANDS\nEach has a section of its own below.\n");
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                let line = format!(
                    ".TP\n\\fBcnm {}\\fR\n{}\n",
                    sub.get_name(),
                    roff_escape(&about)
                );
                buf.extend_from_slice(line.as_bytes());
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = sub.get_name();
                buf.extend_from_slice(format!(".SH \"CNM {}\"\n", name.to_uppercase()).as_bytes());
                let man = clap_mangen::Man::new(sub.clone().bin_name(format!("cnm {name}")));
                man.render_synopsis_section(&mut buf)?;
                man.render_description_section(&mut buf)?;
                man.render_options_section(&mut buf)?;
            }
            man.render_version_section(&mut buf)
        });
    if let Err(e) = rendered {
        eprintln!("cnm: cannot render the man page: {e}");
        return ExitCode::from(1);
    }
    print_generated(&buf)
}

/// Text for a roff paragraph: backslashes and hyphens escaped, and no
/// line starting with a control character.
fn roff_escape(text: &str) -> String {
    let s = text.replace('\\', "\\\\").replace('-', "\\-");
    match s.strip_prefix(['.', '\'']) {
        Some(_) => format!("\\&{s}"),
        None => s,
    }
}

pub fn print_generated(buf: &[u8]) -> ExitCode {
    match crate::cli_common::out(&String::from_utf8_lossy(buf)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cnm: {e}");
            ExitCode::from(1)
        }
    }
}
