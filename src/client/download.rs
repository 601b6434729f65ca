//! Streaming downloads: into a temporary file next to the destination, renamed into place only
//! when every byte arrived, so the destination never holds a partial file. The file gets the
//! permissions of an ordinary file (`rw-r--r--` on unix).

use std::path::Path;

use futures_util::StreamExt;
use reqwest::Method;
use tokio::io::AsyncWriteExt;
use url::Url;

use super::{Body, Client, ClientError, Replay};

/// Downloads `url` into `dest` (replacing it) and returns the number of bytes written. Transient
/// failures restart the download from the beginning.
pub(crate) async fn to_file(client: &Client, url: &Url, dest: &Path) -> Result<u64, ClientError> {
    client
        .with_retries(Replay::Idempotent, || attempt(client, url, dest))
        .await
}

async fn attempt(client: &Client, url: &Url, dest: &Path) -> Result<u64, ClientError> {
    let response = client
        .send_once(Method::GET, url.clone(), &Body::Empty)
        .await?;
    let expected = response.content_length();
    let dir = crate::fs::parent_dir(dest);
    fs_err::tokio::create_dir_all(&dir)
        .await
        .map_err(ClientError::file("create the folder", &dir))?;
    let tmp = crate::fs::temporary::builder()
        .tempfile_in(&dir)
        .map_err(ClientError::file("create a temporary file in", &dir))?;
    let std_file = tmp
        .as_file()
        .try_clone()
        .map_err(ClientError::file("write", tmp.path()))?;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut received: u64 = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|source| client.transport_error(Method::GET, url.clone(), source))?;
        file.write_all(&chunk)
            .await
            .map_err(ClientError::file("write", tmp.path()))?;
        received += chunk.len() as u64;
    }
    file.flush()
        .await
        .map_err(ClientError::file("write", tmp.path()))?;
    file.sync_all()
        .await
        .map_err(ClientError::file("write", tmp.path()))?;
    drop(file);
    if let Some(expected) = expected
        && received != expected
    {
        // `tmp` is removed when dropped.
        return Err(ClientError::Truncated {
            url: url.to_string(),
            expected,
            received,
        });
    }
    crate::fs::set_file_mode(tmp.as_file()).map_err(ClientError::file("write", tmp.path()))?;
    tmp.persist(dest).map_err(|e| ClientError::File {
        path: dest.to_path_buf(),
        action: "write",
        source: e.error,
    })?;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn a_download_gets_an_ordinary_file_mode_and_its_bytes() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/images/i/a.png/full"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(b"PNGDATA".to_vec()))
            .mount(&server)
            .await;
        let client = Client::new(&server.uri()).expect("client");
        let url = client.endpoint(&["api", "v1", "images", "i", "a.png", "full"]);
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out/a.png");
        let written = to_file(&client, &url, &dest).await.expect("download");
        assert_eq!(written, 7);
        assert_eq!(fs_err::read(&dest).expect("read"), b"PNGDATA");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs_err::metadata(&dest)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "mode {mode:o}");
        }
    }
}
