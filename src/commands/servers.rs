//! `invk-run servers check`: each server named, checked before anything is sent to it.

use std::time::Duration;

use crate::cli::{GlobalArgs, ServersCommand};
use crate::client::DEFAULT_SERVER;
use crate::commands::connect::{credentials, runtime, sanitize};
use crate::exit_status::ExitStatus;
use crate::server_check::{AuthState, Needs, ServerEntry, ServerReport, check_all, server_list};

/// Runs `invk-run servers ...`.
///
/// # Errors
/// Bad input (a bad URL, workflow or manifest; an email without a password): nothing was sent.
pub fn run(global: &GlobalArgs, command: &ServersCommand) -> anyhow::Result<ExitStatus> {
    let ServersCommand::Check { target, timeout } = command;
    runtime()?.block_on(async {
        let needs = match target {
            Some(path) => Some(Needs::load(path).await.map_err(crate::Error::from)?),
            None => None,
        };
        // As a run picks its server: the options, else the manifest's `server:`, else the
        // default.
        let mut servers = server_list(&global.server)
            .iter()
            .map(|s| ServerEntry::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crate::Error::from(crate::server_check::ServersError::from(e)))?;
        if servers.is_empty() {
            servers = needs
                .as_ref()
                .map(|n| n.servers.clone())
                .unwrap_or_default();
        }
        if servers.is_empty() {
            servers.push(ServerEntry::url(DEFAULT_SERVER));
        }
        let reports = check_all(
            &servers,
            &credentials(global),
            needs.as_ref(),
            Duration::from_secs(*timeout),
        )
        .await
        .map_err(crate::Error::from)?;
        if global.json {
            for report in &reports {
                super::stdout::println(&serde_json::to_string(report)?)?;
            }
        } else if !global.quiet {
            super::stdout::print(&human(&reports))?;
        }
        Ok(if reports.iter().all(|r| r.usable) {
            ExitStatus::Success
        } else {
            ExitStatus::Failed
        })
    })
}

/// The reports as text: a block per server, then how many are usable.
#[must_use]
pub fn human(reports: &[ServerReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let verdict = if report.usable {
            "usable"
        } else {
            "not usable"
        };
        out.push_str(&format!("{}  {verdict}\n", sanitize(&report.server)));
        let mut line = |label: &str, text: &str| {
            out.push_str(&format!("  {label:<11} {}\n", sanitize(text)));
        };
        line("reachable", if report.reachable { "yes" } else { "no" });
        if let Some(version) = &report.version {
            line("version", version);
        }
        if let Some(auth) = &report.auth {
            let text = match auth {
                AuthState::Open => "open".to_owned(),
                AuthState::LoggedIn { user } => format!("logged in as `{user}`"),
                AuthState::NeedsLogin { .. } => "needs a login".to_owned(),
            };
            line("auth", &text);
        }
        if let Some(queue) = &report.queue {
            line(
                "queue",
                &format!(
                    "{} pending, {} in progress",
                    queue.pending, queue.in_progress
                ),
            );
        }
        if let Some(fit) = &report.workflow {
            let nodes = if fit.schema_error.is_some() {
                format!("{} used, not checked", fit.node_types)
            } else if fit.missing_node_types.is_empty() {
                format!("{} used, all found", fit.node_types)
            } else {
                format!(
                    "{} used, {} missing",
                    fit.node_types,
                    fit.missing_node_types.len()
                )
            };
            line("node types", &nodes);
            if fit.models.is_empty() {
                line("models", "none named");
            }
            for model in &fit.models {
                let text = match &model.found {
                    Some(found) => format!("{}: key `{}`", model.model, found.key),
                    None => format!("{}: missing", model.model),
                };
                line("model", &text);
            }
        }
        for problem in &report.problems {
            line("problem", problem);
        }
    }
    let usable = reports.iter().filter(|r| r.usable).count();
    out.push_str(&format!(
        "{usable} of {} server{} usable\n",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_check::{FoundModel, ModelFit, QueueState, WorkflowFit};

    #[test]
    fn reports_print_as_a_block_per_server_and_a_count() {
        let usable = ServerReport {
            server: "http://gpu-1:9090/".into(),
            usable: true,
            reachable: true,
            version: Some("6.14.2".into()),
            auth: Some(AuthState::LoggedIn {
                user: "me@example.org".into(),
            }),
            queue: Some(QueueState {
                pending: 3,
                in_progress: 1,
            }),
            workflow: Some(WorkflowFit {
                source: "job.yaml".into(),
                node_types: 4,
                missing_node_types: Vec::new(),
                schema_error: None,
                models: vec![ModelFit {
                    model: "`FLUX` (main)".into(),
                    inputs: vec!["n.model".into()],
                    found: Some(FoundModel {
                        key: "k-1".into(),
                        name: "FLUX".into(),
                        base: "flux".into(),
                        model_type: "main".into(),
                    }),
                    error: None,
                }],
            }),
            problems: Vec::new(),
        };
        let down = ServerReport {
            problems: vec!["unreachable: no connection (Connection refused (os error 111))".into()],
            ..ServerReport::unchecked("http://gpu-2:9090/".into())
        };
        insta::assert_snapshot!(human(&[usable, down]), @r"
        http://gpu-1:9090/  usable
          reachable   yes
          version     6.14.2
          auth        logged in as `me@example.org`
          queue       3 pending, 1 in progress
          node types  4 used, all found
          model       `FLUX` (main): key `k-1`
        http://gpu-2:9090/  not usable
          reachable   no
          problem     unreachable: no connection (Connection refused (os error 111))
        1 of 2 servers usable
        ");
    }
}
