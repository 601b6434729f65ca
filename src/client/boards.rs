//! `/api/v1/boards`: the folders images go to.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::images::ImageCategory;
use super::workflows::{SortDirection, closest};
use super::{Body, Client, ClientError, Replay, is_not_found};

/// A board.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Board {
    /// Id.
    pub board_id: String,
    /// Name (not unique).
    pub board_name: String,
    /// Owner (`system` on a single-user server).
    #[serde(default)]
    pub user_id: String,
    /// Creation time (server string, UTC).
    pub created_at: String,
    /// Last change (server string, UTC).
    pub updated_at: String,
    /// Image shown for the board.
    #[serde(default)]
    pub cover_image_name: Option<String>,
    /// Whether it is archived (hidden from the default list).
    #[serde(default)]
    pub archived: bool,
    /// Number of gallery images.
    #[serde(default)]
    pub image_count: u64,
    /// Number of assets (uploaded images, masks, ...).
    #[serde(default)]
    pub asset_count: u64,
    /// Number of videos.
    #[serde(default)]
    pub video_count: u64,
}

/// What to sort the board list by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardOrderBy {
    /// Creation time (the server's default, newest first).
    CreatedAt,
    /// Name.
    Name,
}

/// Options of [`BoardsHandler::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardListQuery {
    /// Include archived boards.
    pub include_archived: bool,
    /// Sort key.
    pub order_by: Option<BoardOrderBy>,
    /// Sort direction.
    pub direction: Option<SortDirection>,
}

/// Changes of [`BoardsHandler::update`]; `None` leaves a value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BoardChanges {
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board_name: Option<String>,
    /// Archive or unarchive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

/// Filters of [`BoardsHandler::image_names`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageNamesFilter {
    /// Only these categories (all when empty).
    pub categories: Vec<ImageCategory>,
    /// Only intermediate (`true`) or only kept (`false`) images; both when `None`.
    pub is_intermediate: Option<bool>,
}

/// What deleting a board did.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DeleteBoardResult {
    /// The board.
    pub board_id: String,
    /// Images that were on the board (now uncategorized unless deleted).
    #[serde(default)]
    pub deleted_board_images: Vec<String>,
    /// Images deleted with the board.
    #[serde(default)]
    pub deleted_images: Vec<String>,
    /// Images that could not be deleted (they became uncategorized).
    #[serde(default)]
    pub failed_images: Vec<String>,
    /// Videos deleted with the board.
    #[serde(default)]
    pub deleted_videos: Vec<String>,
}

/// Boards (`client.boards()`).
#[derive(Debug, Clone, Copy)]
pub struct BoardsHandler<'c> {
    client: &'c Client,
}

impl<'c> BoardsHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        BoardsHandler { client }
    }

    /// Every board (not paged).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn list(&self, query: &BoardListQuery) -> Result<Vec<Board>, ClientError> {
        let mut url = self.client.endpoint(&["api", "v1", "boards", ""]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("all", "true");
            if query.include_archived {
                q.append_pair("include_archived", "true");
            }
            if let Some(order_by) = query.order_by {
                q.append_pair(
                    "order_by",
                    match order_by {
                        BoardOrderBy::CreatedAt => "created_at",
                        BoardOrderBy::Name => "board_name",
                    },
                );
            }
            if let Some(direction) = query.direction {
                q.append_pair("direction", direction.as_str());
            }
        }
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// One board.
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    pub async fn get(&self, board_id: &str) -> Result<Board, ClientError> {
        let url = self.client.endpoint(&["api", "v1", "boards", board_id]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Creates a board (names need not be unique).
    ///
    /// # Errors
    /// `422` for a name longer than 300 characters, or any other [`ClientError`].
    pub async fn create(&self, name: &str) -> Result<Board, ClientError> {
        let mut url = self.client.endpoint(&["api", "v1", "boards", ""]);
        url.query_pairs_mut().append_pair("board_name", name);
        self.client
            .send_json(Method::POST, url, Replay::OnlyIfNotSent, Body::Empty)
            .await
    }

    /// Renames, archives or unarchives a board.
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    pub async fn update(
        &self,
        board_id: &str,
        changes: &BoardChanges,
    ) -> Result<Board, ClientError> {
        let url = self.client.endpoint(&["api", "v1", "boards", board_id]);
        self.client
            .send_json(Method::PATCH, url, Replay::Idempotent, Body::json(changes))
            .await
    }

    /// Deletes a board; its images are deleted too with `include_images`, otherwise they become
    /// uncategorized.
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    pub async fn delete(
        &self,
        board_id: &str,
        include_images: bool,
    ) -> Result<DeleteBoardResult, ClientError> {
        let mut url = self.client.endpoint(&["api", "v1", "boards", board_id]);
        url.query_pairs_mut().append_pair(
            "include_images",
            if include_images { "true" } else { "false" },
        );
        self.client
            .send_json(Method::DELETE, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// The names of a board's images (`"none"` for uncategorized images). Without filters this
    /// includes intermediates and every category.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn image_names(
        &self,
        board_id: &str,
        filter: &ImageNamesFilter,
    ) -> Result<Vec<String>, ClientError> {
        let mut url = self
            .client
            .endpoint(&["api", "v1", "boards", board_id, "image_names"]);
        {
            let mut q = url.query_pairs_mut();
            for category in &filter.categories {
                q.append_pair("categories", category.as_str());
            }
            if let Some(is_intermediate) = filter.is_intermediate {
                q.append_pair(
                    "is_intermediate",
                    if is_intermediate { "true" } else { "false" },
                );
            }
        }
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Finds a board by exact id, else by exact name (archived boards included).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] (with the closest names) when nothing matches,
    /// [`ClientError::Ambiguous`] (with the candidates' ids) when several boards have this
    /// name, or any other [`ClientError`].
    pub async fn find(&self, id_or_name: &str) -> Result<Board, ClientError> {
        if id_or_name != "none" {
            match self.get(id_or_name).await {
                Ok(board) => return Ok(board),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err),
            }
        }
        let all = self
            .list(&BoardListQuery {
                include_archived: true,
                ..BoardListQuery::default()
            })
            .await?;
        let mut matches: Vec<Board> = all
            .iter()
            .filter(|b| b.board_name == id_or_name)
            .cloned()
            .collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(ClientError::NotFound {
                kind: "board",
                query: id_or_name.to_owned(),
                within: String::new(),
                candidates: closest(id_or_name, all.iter().map(|b| b.board_name.as_str())),
            }),
            _ => Err(ClientError::Ambiguous {
                kind: "board",
                query: id_or_name.to_owned(),
                candidates: matches
                    .iter()
                    .map(|b| {
                        format!(
                            "`{}` ({} images, created {})",
                            b.board_id, b.image_count, b.created_at
                        )
                    })
                    .collect(),
            }),
        }
    }
}
