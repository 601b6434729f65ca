//! `/api/v1/images`: upload, read, download and delete images.

use std::path::Path;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Body, Client, ClientError, Replay, download};

/// The category of an image: `general` is the gallery, the others are assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageCategory {
    /// A generated image (gallery).
    General,
    /// A mask.
    Mask,
    /// A control image.
    Control,
    /// An image the user uploaded (asset).
    User,
    /// Anything else.
    Other,
}

impl ImageCategory {
    /// The name the server uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ImageCategory::General => "general",
            ImageCategory::Mask => "mask",
            ImageCategory::Control => "control",
            ImageCategory::User => "user",
            ImageCategory::Other => "other",
        }
    }
}

/// An image the server stores.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ImageDto {
    /// The name that refers to it everywhere (`{"image_name": ...}`).
    pub image_name: String,
    /// Path of the full image, relative to the server's base URL.
    #[serde(default)]
    pub image_url: String,
    /// Path of the thumbnail, relative to the server's base URL.
    #[serde(default)]
    pub thumbnail_url: String,
    /// Category.
    pub image_category: ImageCategory,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether it is an intermediate (hidden, deleted with the intermediates).
    #[serde(default)]
    pub is_intermediate: bool,
    /// Whether it is starred.
    #[serde(default)]
    pub starred: bool,
    /// Whether it embeds a workflow.
    #[serde(default)]
    pub has_workflow: bool,
    /// Its board (`None`: uncategorized).
    #[serde(default)]
    pub board_id: Option<String>,
    /// The session that made it.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The prepared node id (not the source id) that made it.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Creation time (server string, UTC).
    pub created_at: String,
    /// Last change (server string, UTC).
    pub updated_at: String,
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DeleteImagesResult {
    /// Images deleted.
    #[serde(default)]
    pub deleted_images: Vec<String>,
    /// Images that could not be deleted.
    #[serde(default)]
    pub failed_images: Vec<String>,
    /// Boards whose content changed (`"none"` is uncategorized).
    #[serde(default)]
    pub affected_boards: Vec<String>,
}

/// How an uploaded image is filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOptions {
    /// Category (default [`ImageCategory::User`], an asset, as the web UI's uploads).
    pub category: ImageCategory,
    /// Whether the image is an intermediate (default `false`).
    pub is_intermediate: bool,
    /// The board to put it on (default none: uncategorized).
    pub board_id: Option<String>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            category: ImageCategory::User,
            is_intermediate: false,
            board_id: None,
        }
    }
}

/// An image file format, recognized by the file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
    /// GIF.
    Gif,
    /// BMP.
    Bmp,
    /// TIFF.
    Tiff,
}

impl ImageFormat {
    /// The format of a file that starts with `head`, if it is an image.
    #[must_use]
    pub fn sniff(head: &[u8]) -> Option<ImageFormat> {
        match head {
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some(ImageFormat::Png),
            [0xff, 0xd8, 0xff, ..] => Some(ImageFormat::Jpeg),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(ImageFormat::Webp),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(ImageFormat::Gif),
            [b'B', b'M', ..] => Some(ImageFormat::Bmp),
            [b'I', b'I', 0x2a, 0x00, ..] | [b'M', b'M', 0x00, 0x2a, ..] => Some(ImageFormat::Tiff),
            _ => None,
        }
    }

    /// Its MIME type.
    #[must_use]
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Bmp => "image/bmp",
            ImageFormat::Tiff => "image/tiff",
        }
    }
}

/// Checks that `bytes` (the content of `path`) are an image; the error says what they are.
fn check_image(path: &Path, bytes: &[u8]) -> Result<ImageFormat, ClientError> {
    if let Some(format) = ImageFormat::sniff(bytes) {
        return Ok(format);
    }
    let reason = if bytes.is_empty() {
        "the file is empty".to_owned()
    } else if bytes.starts_with(b"%PDF") {
        "it is a PDF document".to_owned()
    } else if std::str::from_utf8(&bytes[..bytes.len().min(512)]).is_ok() {
        "it is a text file".to_owned()
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("its first bytes `{}` match no image format", head.join(" "))
    };
    Err(ClientError::NotAnImage {
        path: path.to_path_buf(),
        reason,
    })
}

/// Images (`client.images()`).
#[derive(Debug, Clone, Copy)]
pub struct ImagesHandler<'c> {
    client: &'c Client,
}

impl<'c> ImagesHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        ImagesHandler { client }
    }

    /// Uploads an image file. Files that are not images are refused before anything is sent.
    ///
    /// # Errors
    /// [`ClientError::File`] when the file cannot be read, [`ClientError::NotAnImage`], `404` for
    /// an unknown board, or any other [`ClientError`].
    pub async fn upload(
        &self,
        path: &Path,
        options: &UploadOptions,
    ) -> Result<ImageDto, ClientError> {
        let bytes = fs_err::tokio::read(path)
            .await
            .map_err(ClientError::file("read", path))?;
        let format = check_image(path, &bytes)?;
        let file_name = path
            .file_name()
            .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned());
        let mut url = self.client.endpoint(&["api", "v1", "images", "upload"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("image_category", options.category.as_str());
            q.append_pair(
                "is_intermediate",
                if options.is_intermediate {
                    "true"
                } else {
                    "false"
                },
            );
            if let Some(board_id) = &options.board_id {
                q.append_pair("board_id", board_id);
            }
        }
        let body = Body::File {
            field: "file",
            file_name,
            mime: format.mime(),
            bytes,
        };
        self.client
            .send_json(Method::POST, url, Replay::OnlyIfNotSent, body)
            .await
    }

    /// One image's record.
    ///
    /// # Errors
    /// `404` when there is none with this name, or any other [`ClientError`].
    pub async fn get(&self, image_name: &str) -> Result<ImageDto, ClientError> {
        let url = self
            .client
            .endpoint(&["api", "v1", "images", "i", image_name]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Downloads the full image into `dest` (replacing it): streamed into a temporary file in
    /// the same folder and renamed into place when complete, so `dest` never holds a partial
    /// image. Returns the number of bytes.
    ///
    /// # Errors
    /// `404` when there is none with this name, [`ClientError::Truncated`] or
    /// [`ClientError::Timeout`] when the download stops, [`ClientError::File`] when the file
    /// cannot be written, or any other [`ClientError`].
    pub async fn download(&self, image_name: &str, dest: &Path) -> Result<u64, ClientError> {
        let url = self
            .client
            .endpoint(&["api", "v1", "images", "i", image_name, "full"]);
        download::to_file(self.client, &url, dest).await
    }

    /// The image's InvokeAI metadata (`None` when it has none).
    ///
    /// # Errors
    /// `404` when there is none with this name, or any other [`ClientError`].
    pub async fn metadata(&self, image_name: &str) -> Result<Option<Value>, ClientError> {
        let url = self
            .client
            .endpoint(&["api", "v1", "images", "i", image_name, "metadata"]);
        let value: Value = self
            .client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await?;
        Ok(if value.is_null() { None } else { Some(value) })
    }

    /// Deletes one image (a missing image is not an error: the result lists nothing).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn delete(&self, image_name: &str) -> Result<DeleteImagesResult, ClientError> {
        let url = self
            .client
            .endpoint(&["api", "v1", "images", "i", image_name]);
        self.client
            .send_json(Method::DELETE, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Deletes several images at once (names the account may not delete are skipped).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn delete_many(
        &self,
        image_names: &[String],
    ) -> Result<DeleteImagesResult, ClientError> {
        if image_names.is_empty() {
            return Ok(DeleteImagesResult::default());
        }
        let url = self.client.endpoint(&["api", "v1", "images", "delete"]);
        let body = Body::json(&json!({ "image_names": image_names }));
        self.client
            .send_json(Method::POST, url, Replay::Idempotent, body)
            .await
    }

    /// The images (intermediates included) created at or after `since` (a server time string,
    /// as in [`ImageDto::created_at`]), newest first, read a page at a time from the newest;
    /// at most `max` of them.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn created_since(
        &self,
        since: &str,
        max: usize,
    ) -> Result<Vec<ImageDto>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            items: Vec<ImageDto>,
        }
        const PAGE: usize = 500;
        let mut out: Vec<ImageDto> = Vec::new();
        while out.len() < max {
            let mut url = self.client.endpoint(&["api", "v1", "images", ""]);
            url.query_pairs_mut()
                .append_pair("offset", &out.len().to_string())
                .append_pair("limit", &PAGE.min(max - out.len()).to_string())
                .append_pair("order_dir", "DESC")
                .append_pair("starred_first", "false");
            let page: Page = self
                .client
                .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
                .await?;
            let full = page.items.len() == PAGE;
            let before = page.items.iter().any(|dto| dto.created_at.as_str() < since);
            out.extend(
                page.items
                    .into_iter()
                    .filter(|dto| dto.created_at.as_str() >= since),
            );
            if !full || before {
                break;
            }
        }
        Ok(out)
    }

    /// The records of these images, in the order given (names the server does not know, or
    /// that the account may not read, are left out).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn by_names(&self, image_names: &[String]) -> Result<Vec<ImageDto>, ClientError> {
        let mut out = Vec::with_capacity(image_names.len());
        for chunk in image_names.chunks(500) {
            let url = self
                .client
                .endpoint(&["api", "v1", "images", "images_by_names"]);
            let body = Body::json(&json!({ "image_names": chunk }));
            let part: Vec<ImageDto> = self
                .client
                .send_json(Method::POST, url, Replay::Idempotent, body)
                .await?;
            out.extend(part);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_formats_are_recognized_by_their_first_bytes() {
        let cases: [(&[u8], Option<ImageFormat>); 9] = [
            (b"\x89PNG\r\n\x1a\n....", Some(ImageFormat::Png)),
            (b"\xff\xd8\xff\xe0", Some(ImageFormat::Jpeg)),
            (b"RIFF\x00\x00\x00\x00WEBPVP8 ", Some(ImageFormat::Webp)),
            (b"GIF89a", Some(ImageFormat::Gif)),
            (b"BM\x00\x00", Some(ImageFormat::Bmp)),
            (b"II*\x00", Some(ImageFormat::Tiff)),
            (b"RIFF\x00\x00\x00\x00WAVE", None),
            (b"\x89PNG", None),
            (b"", None),
        ];
        for (head, want) in cases {
            assert_eq!(ImageFormat::sniff(head), want, "{head:?}");
        }
    }

    #[test]
    fn non_images_are_refused_naming_the_file_and_what_it_is() {
        let shown: Vec<String> = [&b"hello"[..], b"%PDF-1.7", b"", b"\x00\x01\x02\xff\xfe"]
            .iter()
            .map(|bytes| {
                check_image(Path::new("in/photo.png"), bytes)
                    .expect_err("not an image")
                    .to_string()
            })
            .collect();
        insta::assert_snapshot!(shown.join("\n"), @r"
        `in/photo.png` is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF): it is a text file
        `in/photo.png` is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF): it is a PDF document
        `in/photo.png` is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF): the file is empty
        `in/photo.png` is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF): its first bytes `00 01 02 ff fe` match no image format
        ");
    }
}
