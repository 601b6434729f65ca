//! `invk-run report OUTPUT_DIR|MANIFEST` (rebuild the gallery and grids from disk) and
//! `invk-run completions SHELL`.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, GlobalArgs};
use crate::exit_status::ExitStatus;
use crate::gallery::{ReportConfig, ReportError, refresh};

/// Rebuilds the report of an output folder, or of the folder a manifest writes to (read offline
/// with the shipped schemas; nothing is sent).
///
/// # Errors
/// A target that is neither, an invalid manifest (exit 2), or a report that cannot be written.
pub fn run(target: &Path, global: &GlobalArgs) -> anyhow::Result<ExitStatus> {
    let (dir, config) = if target.is_dir() {
        (
            target.to_path_buf(),
            ReportConfig::saved_or_default(target).map_err(crate::Error::from)?,
        )
    } else if target.is_file() {
        let prepared = super::connect::runtime()?.block_on(crate::run::prepare_offline(target))?;
        let title = target.display().to_string();
        let config = ReportConfig::from_manifest(&title, prepared.file.manifest());
        (prepared.output_dir, config)
    } else {
        return Err(crate::Error::from(ReportError::NotAReport {
            path: target.to_path_buf(),
        })
        .into());
    };
    let summary = refresh(&dir, &config).map_err(crate::Error::from)?;
    if global.json {
        super::stdout::println(&serde_json::to_string(&summary)?)?;
    } else if !global.quiet {
        let grids: Vec<String> = summary
            .grids
            .iter()
            .map(|g| g.display().to_string())
            .collect();
        eprintln!(
            "{}: {} jobs; {}{} grid{}{}",
            dir.display(),
            summary.jobs,
            if summary.gallery.is_some() {
                "index.html, "
            } else {
                ""
            },
            grids.len(),
            if grids.len() == 1 { "" } else { "s" },
            if grids.is_empty() {
                String::new()
            } else {
                format!(" ({})", grids.join(", "))
            }
        );
    }
    Ok(ExitStatus::Success)
}

/// Prints the completions of `invk-run` for `shell` to stdout.
///
/// # Errors
/// When stdout is closed or cannot be written.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    // Made in memory first: `generate` panics on a write error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "invk-run", &mut script);
    super::stdout::write_with(|out| out.write_all(&script))?;
    Ok(ExitStatus::Success)
}
