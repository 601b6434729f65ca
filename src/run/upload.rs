//! Uploading a run's local images: each file once (by content), reusing what an earlier run
//! uploaded while the server still has it, as the jobs that need them are submitted.

use super::error::RunError;

use sha2::{Digest, Sha256};

use super::journal::Entry;
use super::lane::Uploads;
use super::ledger::Ledger;
use super::progress::RunEvent;
use super::running::Run;
use super::running::RunContext;
use crate::client::{Client, UploadOptions};
use crate::manifest::{EnqueuePlan, LocalImage};

impl Run<'_> {
    /// Uploads to lane `i` the images an enqueue needs that are not on it yet.
    pub(super) async fn upload_for(
        &mut self,
        i: usize,
        enqueue: &EnqueuePlan,
    ) -> Result<(), RunError> {
        let Run {
            ctx, ledger, lanes, ..
        } = self;
        let lane = &mut lanes[i];
        for image in enqueue.local_images() {
            if lane.uploads.by_path.contains_key(&image.path) {
                continue;
            }
            let bytes = crate::fs::read(&image.path)?;
            let sha = format!("{:x}", Sha256::digest(&bytes));
            drop(bytes);
            let known = match lane.uploads.by_hash.get(&sha) {
                Some(name) => Some(name.clone()),
                None => earlier_upload(&lane.client, &sha, &mut lane.uploads, ledger).await?,
            };
            let name = match known {
                Some(name) => name,
                None => upload(ctx, &lane.client, image, &sha, ledger).await?,
            };
            lane.uploads.by_hash.insert(sha, name.clone());
            lane.uploads.by_path.insert(image.path.clone(), name);
        }
        Ok(())
    }
}

/// An earlier run's upload of the same content, if the server still has it (it may be another
/// server, or someone cleaned up).
async fn earlier_upload(
    client: &Client,
    sha: &str,
    uploads: &mut Uploads,
    ledger: &Ledger,
) -> Result<Option<String>, RunError> {
    let state = ledger.state();
    if state.uploads_of(sha).next().is_none() {
        return Ok(None);
    }
    if uploads.earlier.is_none() {
        let earlier: Vec<String> = state
            .upload_names()
            .filter(|name| !state.deleted.contains(*name))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let there = client
            .images()
            .by_names(&earlier)
            .await?
            .into_iter()
            .map(|dto| dto.image_name)
            .collect();
        uploads.earlier = Some(there);
    }
    let there = uploads.earlier.as_ref();
    Ok(state
        .uploads_of(sha)
        .find(|name| there.is_some_and(|t| t.contains(*name)))
        .cloned())
}

/// Uploads one image and journals it.
async fn upload(
    ctx: &RunContext<'_>,
    client: &Client,
    image: &LocalImage,
    sha: &str,
    ledger: &mut Ledger,
) -> Result<String, RunError> {
    let dto = client
        .images()
        .upload(&image.path, &UploadOptions::default())
        .await?;
    ledger.record(Entry::Uploaded {
        sha256: sha.to_owned(),
        path: image.path.clone(),
        image_name: dto.image_name.clone(),
    })?;
    ctx.tell(&RunEvent::Uploaded {
        manifest: ctx.name.clone(),
        path: image.written.clone(),
        image_name: dto.image_name.clone(),
    });
    Ok(dto.image_name)
}
