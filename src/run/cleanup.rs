//! Cleaning the server up after a run: outputs once they are on disk, intermediates and uploads
//! as the manifest's `cleanup` says, and only images the server says one of the run's sessions
//! made (of this run or of the earlier runs the journal records, killed ones included): the
//! policy picks the candidates, [`crate::client::cleanup_plan`] (shared with the workflow
//! handle) says which of them may go. Outputs that could not be saved stay on the server; the
//! intermediates of their jobs go like any other.

use super::error::RunError;
use std::collections::{BTreeMap, BTreeSet};

use super::journal::Entry;
use super::key::ItemRef;
use super::lane::Lane;
use super::ledger::Ledger;
use super::running::Run;
use super::running::RunContext;
use crate::client::cleanup_plan::{Ours, deletable};
use crate::client::{QueueItem, QueueItemStatus};
use crate::manifest::{Cleanup, IntermediatesPolicy, OutputsPolicy, UploadsPolicy};

/// How many images one delete request names.
const DELETE_CHUNK: usize = 200;

impl Run<'_> {
    /// The end's pass: deletes what the policy says may go of everything the run (and the
    /// earlier runs its journal records) made; `all_done` when every job of the manifest
    /// completed. Returns how many images went, and whether every server of the run was
    /// there to be cleaned. Each server still in the run is asked about every candidate: an
    /// image another server made is not among its own.
    pub(super) async fn cleanup(&mut self, all_done: bool) -> Result<(usize, bool), RunError> {
        self.ledger.take_fresh();
        // Every server the run used: one that left the pool is cleaned too when it answers now.
        let mut reached = Vec::with_capacity(self.lanes.len());
        for lane in &self.lanes {
            reached.push(lane.in_run() || answers_now(lane).await);
        }
        let every_server = reached.iter().all(|r| *r);
        let Run {
            ctx, ledger, lanes, ..
        } = self;
        let lanes: Vec<&Lane> = lanes
            .iter()
            .zip(reached)
            .filter_map(|(lane, reached)| reached.then_some(lane))
            .collect();
        for lane in &lanes {
            let found = taken_back_images(lane, ledger).await;
            left_alone(ctx, lane, found)?;
        }
        let state = ledger.state();
        let on_disk: BTreeSet<String> = ledger
            .written_images()
            .cloned()
            .chain(state.downloads.values().flat_map(|f| f.keys().cloned()))
            .collect();
        let uploaded: BTreeSet<String> = lanes
            .iter()
            .flat_map(|lane| lane.uploads.names())
            .cloned()
            .chain(state.upload_names().cloned())
            .collect();
        let left = ledger.all_left_on_server();
        let policy = &ctx.prepared.file.manifest().cleanup;
        let uploads_go = uploads_go(policy, all_done);
        let candidates = images_to_delete(
            policy,
            &Produced {
                on_disk: &on_disk,
                intermediates: &state.intermediates,
                uploaded: &uploaded,
                left_on_server: &left,
                already_deleted: &state.deleted,
            },
            uploads_go,
        );
        if candidates.is_empty() {
            return Ok((0, every_server));
        }
        let keep: BTreeSet<String> = left.union(&state.deleted).cloned().collect();
        let ours = Ours {
            sessions: &state.sessions,
            uploads: &uploaded,
            delete_uploads: uploads_go,
            keep: &keep,
        };
        let mut plans = Vec::with_capacity(lanes.len());
        for lane in &lanes {
            let plan = async {
                let here = on_server(lane, &candidates).await?;
                Ok::<_, RunError>(deletable(&lane.client, &here, &ours).await?.delete)
            }
            .await;
            plans.push(left_alone(ctx, lane, plan)?.unwrap_or_default());
        }
        let mut deleted = 0;
        for (lane, delete) in lanes.iter().zip(plans) {
            let done = delete_images(ctx, lane, &delete, ledger).await;
            deleted += left_alone(ctx, lane, done)?.unwrap_or_default();
        }
        Ok((deleted, every_server))
    }

    /// A pass while the run goes, so that a long run does not pile its outputs up on the
    /// server: the outputs of terminal nodes saved since the last pass, when the policy deletes
    /// outputs after download. Intermediates and uploads wait for the end: a running session
    /// may be reading them (the server's invocation cache hands one session's intermediate to
    /// the next). An output of a node the cache may answer (`use_cache`) is the same image for
    /// every session with the same inputs: it stays while the run has a session open on its
    /// server (one may have been handed it already and not be collected yet; once it is
    /// deleted, the server's cache forgets it and later sessions make it anew), and goes in a
    /// later pass or at the end. Returns how many images went.
    pub(super) async fn cleanup_outputs(&mut self) -> Result<usize, RunError> {
        let fresh: BTreeSet<String> = self.ledger.take_fresh().into_iter().collect();
        let Run {
            ctx, ledger, lanes, ..
        } = self;
        if ctx.prepared.file.manifest().cleanup.outputs != OutputsPolicy::AfterDownload {
            return Ok(0);
        }
        let left = ledger.all_left_on_server();
        let candidates: Vec<String> = fresh
            .into_iter()
            .filter(|n| !left.contains(n) && !ledger.state().deleted.contains(n))
            .collect();
        if candidates.is_empty() {
            return Ok(0);
        }
        // A server that does not answer now is not waited for: the end's pass deletes what
        // this one leaves.
        let lanes: Vec<&Lane> = lanes
            .iter()
            .filter(|l| l.in_run() && !l.health.is_down())
            .collect();
        let none = BTreeSet::new();
        let ours = Ours {
            sessions: &ledger.state().sessions,
            uploads: &none,
            delete_uploads: false,
            keep: &left,
        };
        let mut plans = Vec::with_capacity(lanes.len());
        for lane in &lanes {
            let busy = ledger.open_on(lane.number).next().is_some();
            let here: Vec<String> = candidates
                .iter()
                .filter(|n| !busy || !ledger.is_shared(n))
                .cloned()
                .collect();
            if here.is_empty() {
                plans.push(Vec::new());
                continue;
            }
            plans.push(deletable(&lane.client, &here, &ours).await?.delete);
        }
        let going: BTreeSet<&String> = plans.iter().flatten().collect();
        let held: Vec<String> = candidates
            .iter()
            .filter(|n| ledger.is_shared(n) && !going.contains(n))
            .cloned()
            .collect();
        let mut deleted = 0;
        for (lane, delete) in lanes.iter().zip(&plans) {
            deleted += delete_images(ctx, lane, delete, ledger).await?;
        }
        ledger.hold(held);
        Ok(deleted)
    }
}

/// A cleanup step's result on `lane`: an error of a server that left the pool is told and
/// passed over (the run does not fail for it), one of a server in the run is the run's.
fn left_alone<T>(
    ctx: &RunContext<'_>,
    lane: &Lane,
    result: Result<T, RunError>,
) -> Result<Option<T>, RunError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if !lane.in_run() => {
            ctx.warn(format!(
                "cannot clean up {}, which left the pool: {}",
                lane.name(),
                crate::error_chain::error_chain(&e)
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// How many of a server's newest images the end's pass reads at most, looking for what a
/// session the run took back made before its cancel.
const TAKEN_BACK_SCAN: usize = 20_000;

/// Journals what the items the run took back from `lane`'s server made before their cancel
/// (a take-back may reach a session that has just started; a server that left the pool was
/// running some, and a restart keeps what they saved but not the item's record of it), so
/// that the end's pass cleans them like any other intermediate. One still unfinished is
/// cancelled first. The item's record names what it knows; an item that had started is also
/// looked for among the server's images made since it was enqueued (the newest first,
/// bounded).
async fn taken_back_images(lane: &Lane, ledger: &mut Ledger) -> Result<(), RunError> {
    let state = ledger.state();
    let items: Vec<ItemRef> = state
        .taken_back
        .iter()
        .copied()
        .filter(|item| item.server() == lane.number && !state.looked_for.contains(item))
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    // One the server still has unfinished (it was away when the run took it back) is
    // cancelled now: it would run for nothing.
    lane.take_back_again(&items).await;
    let ids: Vec<i64> = items.iter().map(|item| item.id()).collect();
    let ended: Vec<QueueItem> = lane
        .client
        .queue()
        .items_by_ids(&ids)
        .await?
        .into_iter()
        .filter(|item| {
            matches!(
                item.status,
                QueueItemStatus::Canceled | QueueItemStatus::Failed | QueueItemStatus::Completed
            )
        })
        .collect();
    let mut made: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in &ended {
        let images = item.outputs().into_values().flat_map(|out| out.images);
        made.entry(item.session_id.clone())
            .or_default()
            .extend(images);
    }
    let since = ended
        .iter()
        .filter(|item| item.started_at.is_some())
        .map(|item| item.created_at.as_str())
        .min();
    if let Some(since) = since {
        for dto in lane
            .client
            .images()
            .created_since(since, TAKEN_BACK_SCAN)
            .await?
        {
            if let Some(images) = dto.session_id.and_then(|s| made.get_mut(&s)) {
                images.insert(dto.image_name);
            }
        }
    }
    // Each ended item is journaled as looked for, with what was found (maybe nothing).
    for item in &ended {
        let images: Vec<String> = made
            .remove(&item.session_id)
            .unwrap_or_default()
            .into_iter()
            .collect();
        ledger.record(Entry::Produced {
            item_id: ItemRef::new(lane.number, item.item_id),
            session_id: item.session_id.clone(),
            images,
            found: true,
        })?;
    }
    Ok(())
}

/// Whether a server that left the pool answers now (within a short bound).
pub(super) async fn answers_now(lane: &Lane) -> bool {
    lane.client
        .with_timeout(super::preflight::ANSWER_WITHIN)
        .without_retries()
        .app()
        .version()
        .await
        .is_ok()
}

/// The candidates a server has (the uploads of another server of the run are not among them).
async fn on_server(lane: &Lane, candidates: &[String]) -> Result<Vec<String>, RunError> {
    let there: BTreeSet<String> = lane
        .client
        .images()
        .by_names(candidates)
        .await?
        .into_iter()
        .map(|dto| dto.image_name)
        .collect();
    Ok(candidates
        .iter()
        .filter(|n| there.contains(*n))
        .cloned()
        .collect())
}

/// Deletes `delete` (images the server says the run's sessions made) and journals them.
async fn delete_images(
    ctx: &RunContext<'_>,
    lane: &Lane,
    delete: &[String],
    ledger: &mut Ledger,
) -> Result<usize, RunError> {
    for chunk in delete.chunks(DELETE_CHUNK) {
        let result = lane.client.images().delete_many(chunk).await?;
        ledger.record(Entry::Deleted {
            image_names: result.deleted_images.clone(),
        })?;
        if !result.failed_images.is_empty() {
            ctx.warn(format!(
                "could not delete {} server images: {}",
                result.failed_images.len(),
                result.failed_images.join(", ")
            ));
        }
    }
    Ok(delete.len())
}

/// Whether the uploads go: as the policy says, `on-success` when every job completed.
fn uploads_go(policy: &Cleanup, all_done: bool) -> bool {
    match policy.uploads {
        UploadsPolicy::Always => true,
        UploadsPolicy::OnSuccess => all_done,
        UploadsPolicy::Never => false,
    }
}

/// The server images of a run, by what the cleanup policy says of them.
struct Produced<'a> {
    /// Outputs journaled as safely on disk.
    on_disk: &'a BTreeSet<String>,
    /// Images of intermediate (or non-output) nodes of the run's items.
    intermediates: &'a BTreeSet<String>,
    /// Images the run uploaded.
    uploaded: &'a BTreeSet<String>,
    /// Outputs that could not be downloaded.
    left_on_server: &'a BTreeSet<String>,
    /// Images an earlier run already deleted.
    already_deleted: &'a BTreeSet<String>,
}

/// What the cleanup deletes: outputs only once they are on disk (and never one that could not
/// be downloaded, even if it is also an intermediate or an upload), intermediates and uploads as
/// the policy says, nothing already deleted.
fn images_to_delete(policy: &Cleanup, produced: &Produced<'_>, uploads_go: bool) -> Vec<String> {
    let mut delete: BTreeSet<String> = BTreeSet::new();
    if policy.outputs == OutputsPolicy::AfterDownload {
        delete.extend(produced.on_disk.iter().cloned());
    }
    if policy.intermediates == IntermediatesPolicy::Delete {
        delete.extend(produced.intermediates.iter().cloned());
    }
    if uploads_go {
        delete.extend(produced.uploaded.iter().cloned());
    }
    delete
        .into_iter()
        .filter(|n| !produced.left_on_server.contains(n) && !produced.already_deleted.contains(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn cleanup_never_deletes_what_is_not_on_disk_and_follows_the_policy() {
        let on_disk = set(&["out1", "out2"]);
        let intermediates = set(&["mid", "out3"]);
        let uploaded = set(&["up"]);
        let left = set(&["out3"]);
        let deleted = set(&["out2"]);
        let produced = Produced {
            on_disk: &on_disk,
            intermediates: &intermediates,
            uploaded: &uploaded,
            left_on_server: &left,
            already_deleted: &deleted,
        };
        let mut policy = Cleanup::default();
        // Defaults: outputs after download, intermediates deleted, uploads on success.
        assert_eq!(
            images_to_delete(&policy, &produced, uploads_go(&policy, true)),
            ["mid", "out1", "up"]
        );
        // A job failed: the uploads stay for a retry.
        assert_eq!(
            images_to_delete(&policy, &produced, uploads_go(&policy, false)),
            ["mid", "out1"]
        );
        policy.uploads = UploadsPolicy::Always;
        policy.outputs = OutputsPolicy::Never;
        policy.intermediates = IntermediatesPolicy::Keep;
        assert_eq!(
            images_to_delete(&policy, &produced, uploads_go(&policy, false)),
            ["up"]
        );
        policy.uploads = UploadsPolicy::Never;
        assert!(images_to_delete(&policy, &produced, uploads_go(&policy, true)).is_empty());
    }
}
