//! The client every command uses, from the global options.

use std::future::Future;

use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::client::{Client, ClientError, Credentials, DEFAULT_SERVER};
use crate::env_vars;
use crate::exit_status::ExitStatus;

/// A client for the server the global options name (`--server`, else `INVK_SERVER`, else
/// `http://127.0.0.1:9090`), with `--token`, or logged in with `--email` and `INVK_PASSWORD`.
///
/// # Errors
/// [`ClientError::InvalidUrl`] for a bad server URL, [`ClientError::MissingPassword`] when
/// `--email` comes without `INVK_PASSWORD`, or the login's error.
pub async fn client_from_args(args: &GlobalArgs) -> Result<Client, ClientError> {
    let server = one_server(args);
    Client::connect(
        server.as_deref().unwrap_or(DEFAULT_SERVER),
        &credentials(args),
    )
    .await
}

/// The one server the global options name (`--server`, else `INVK_SERVER`), if any. Every
/// command but `servers check` takes one: [`super::run`] refuses several before it gets here.
#[must_use]
pub fn one_server(args: &GlobalArgs) -> Option<String> {
    crate::server_check::server_list(&args.server)
        .into_iter()
        .next()
}

/// The credentials the global options give (`--token`, or `--email` with `INVK_PASSWORD`).
#[must_use]
pub fn credentials(args: &GlobalArgs) -> Credentials {
    Credentials {
        token: args.token.clone(),
        email: args.email.clone(),
        password: std::env::var(env_vars::INVK_PASSWORD).ok(),
    }
}

/// A single-threaded runtime for a command's requests.
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs a command's requests on a [`runtime`] to their end.
///
/// # Errors
/// When the runtime cannot start, or the requests' error (a [`ClientError`] as a
/// [`crate::Error`], for its exit status).
pub fn run_requests(
    requests: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(requests).map_err(|e| {
        e.downcast::<ClientError>()
            .map_or_else(|e| e, |e| anyhow::Error::from(crate::Error::from(e)))
    })?;
    Ok(ExitStatus::Success)
}

/// Prints a list on stdout: as pretty JSON with `--json`, else as a [`table`] of `rows`.
///
/// # Errors
/// When stdout is closed or cannot be written.
pub fn print_list<T: Serialize + ?Sized>(
    json: bool,
    list: &T,
    header: &[&str],
    rows: impl FnOnce() -> Vec<Vec<String>>,
) -> Result<(), super::stdout::StdoutError> {
    if json {
        super::stdout::println(&serde_json::to_string_pretty(list).unwrap_or_default())
    } else {
        super::stdout::println(&table(header, &rows()))
    }
}

/// Makes a server-supplied string safe to print on a terminal: control characters are escaped.
#[must_use]
pub fn sanitize(text: &str) -> String {
    crate::printable::printable(text).into_owned()
}

/// Renders rows as left-aligned columns separated by two spaces (the last column unpadded).
#[must_use]
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_sanitize_escapes_control_characters() {
        let rows = vec![
            vec!["a".to_owned(), "long value".to_owned(), "x".to_owned()],
            vec![
                "bbbb".to_owned(),
                "v".to_owned(),
                sanitize("evil\u{1b}[31mred\n"),
            ],
        ];
        insta::assert_snapshot!(table(&["ID", "VALUE", "NAME"], &rows), @r"
        ID    VALUE       NAME
        a     long value  x
        bbbb  v           evil\u{1b}[31mred\n
        ");
    }

    #[tokio::test]
    async fn email_without_password_is_refused_before_anything_is_sent() {
        let args = GlobalArgs {
            server: vec!["http://127.0.0.1:9".to_owned()],
            token: None,
            email: Some("me@example.org".to_owned()),
            json: false,
            quiet: false,
            verbose: 0,
        };
        // Nothing in this crate's tests sets INVK_PASSWORD; a developer's shell might.
        if std::env::var_os(env_vars::INVK_PASSWORD).is_some() {
            return;
        }
        let err = client_from_args(&args).await.expect_err("no password");
        assert_eq!(
            err.to_string(),
            "logging in as `me@example.org` needs a password: set `INVK_PASSWORD`"
        );
    }
}
