//! `invk-run boards list|delete`: the server's boards.

use crate::cli::{BoardsCommand, GlobalArgs};
use crate::client::{BoardListQuery, BoardOrderBy, SortDirection};
use crate::commands::connect::{client_from_args, print_list, run_requests, sanitize};
use crate::exit_status::ExitStatus;

/// Runs a `boards` subcommand. Data (the list) goes to stdout, messages to stderr.
///
/// # Errors
/// The server's errors.
pub fn run(global: &GlobalArgs, command: &BoardsCommand) -> anyhow::Result<ExitStatus> {
    run_requests(run_async(global, command))
}

async fn run_async(global: &GlobalArgs, command: &BoardsCommand) -> anyhow::Result<()> {
    let client = client_from_args(global).await?;
    let boards = client.boards();
    match command {
        BoardsCommand::List => {
            let query = BoardListQuery {
                include_archived: true,
                order_by: Some(BoardOrderBy::Name),
                direction: Some(SortDirection::Asc),
            };
            let list = boards.list(&query).await?;
            let header = ["ID", "IMAGES", "ASSETS", "ARCHIVED", "NAME"];
            print_list(global.json, &list, &header, || {
                list.iter()
                    .map(|b| {
                        vec![
                            sanitize(&b.board_id),
                            b.image_count.to_string(),
                            b.asset_count.to_string(),
                            if b.archived { "yes" } else { "" }.to_owned(),
                            sanitize(&b.board_name),
                        ]
                    })
                    .collect()
            })?;
        }
        BoardsCommand::Delete {
            id_or_name,
            with_images,
        } => {
            let board = boards.find(id_or_name).await?;
            let result = boards.delete(&board.board_id, *with_images).await?;
            if !global.quiet {
                let images = if *with_images {
                    format!("{} images deleted", result.deleted_images.len())
                } else {
                    format!(
                        "{} images are now uncategorized",
                        result.deleted_board_images.len()
                    )
                };
                eprintln!(
                    "deleted board `{}` (`{}`); {images}",
                    sanitize(&board.board_name),
                    sanitize(&board.board_id)
                );
            }
        }
    }
    Ok(())
}
