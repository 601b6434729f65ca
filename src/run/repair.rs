//! A finished job whose files are gone from disk is not done: the next run brings them back.
//! Each missing file is downloaded again from the server that made it when that server is in the
//! run and still has the image (its sidecar, when it went too, is written again from the
//! server's queue item); otherwise the job runs again, and only that job. `invk-run status`
//! says which of the two a rerun will do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::collect::Made;
use super::download::{SIDECAR, SaveError};
use super::error::RunError;
use super::journal::State;
use super::key::{ItemRef, JobKey, SessionKey};
use super::ledger::Slot;
use super::running::Run;
use crate::client::Client;
use crate::store::OutputStore;

/// A file the journal records as written for a finished job that is no longer on disk.
#[derive(Debug, Clone, Serialize)]
pub struct MissingFile {
    /// The file, relative to the output folder.
    pub file: PathBuf,
    /// Its job.
    pub job: usize,
    /// How the next run brings it back.
    pub repair: Repair,
    /// The server image it was downloaded from.
    #[serde(skip)]
    pub image_name: String,
    /// The session that made it.
    #[serde(skip)]
    session: SessionKey,
    /// The queue item that made it.
    #[serde(skip)]
    item: Option<ItemRef>,
}

impl MissingFile {
    /// The number of the server that made it, in the run's journal (0 when unknown).
    #[must_use]
    pub fn server(&self) -> u16 {
        self.item.map_or(0, ItemRef::server)
    }
}

/// How the next run brings a missing file back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    /// Downloaded again from the server that made it, which has the image (it was asked).
    Download,
    /// Downloaded again when the server that made it still has the image, else its job runs
    /// again: the journal does not say the run's cleanup deleted it there, and the server was
    /// not asked.
    DownloadIfOnServer,
    /// Its job runs again: the image is gone from the server (the run's cleanup deleted it, or
    /// the server said it does not have it).
    RunAgain,
}

/// The files of job `key`, done per the journal, that `store` no longer has.
#[must_use]
pub(super) fn missing_of(state: &State, store: &dyn OutputStore, key: JobKey) -> Vec<MissingFile> {
    let sessions = state
        .downloads
        .range(
            SessionKey {
                job: key,
                session: None,
            }..,
        )
        .take_while(|(k, _)| k.job == key);
    let mut missing = Vec::new();
    for (session, files) in sessions {
        for (image_name, file) in files {
            if store.exists(file).unwrap_or(false) {
                continue;
            }
            missing.push(MissingFile {
                file: file.clone(),
                job: key.index,
                repair: if state.deleted.contains(image_name) {
                    Repair::RunAgain
                } else {
                    Repair::DownloadIfOnServer
                },
                image_name: image_name.clone(),
                session: *session,
                item: state.finished.get(session).map(|f| f.item_id),
            });
        }
    }
    missing
}

/// What the run did of the missing files of the jobs done before.
#[derive(Debug, Default)]
pub(super) struct Repaired {
    /// Jobs whose files are all back, with all their files.
    pub(super) restored: Vec<(usize, Vec<PathBuf>)>,
    /// Files downloaded again.
    pub(super) downloaded: Vec<PathBuf>,
    /// Jobs that run again, each with why.
    pub(super) run_again: BTreeMap<usize, String>,
    /// Every missing file.
    pub(super) missing: Vec<PathBuf>,
}

impl Repaired {
    /// What the run tells of it, when a file was missing.
    pub(super) fn message(&self) -> Option<String> {
        if self.missing.is_empty() {
            return None;
        }
        let mut text = format!(
            "{} of the files of finished jobs {} missing from disk ({})",
            self.missing.len(),
            if self.missing.len() == 1 { "is" } else { "are" },
            listed(&self.missing)
        );
        if !self.downloaded.is_empty() {
            text.push_str(&format!(
                "; downloaded {} again from the server",
                self.downloaded.len()
            ));
        }
        for (job, why) in &self.run_again {
            text.push_str(&format!("; job {job} runs again: {why}"));
        }
        Some(text)
    }
}

/// Up to five paths, then how many more.
fn listed(files: &[PathBuf]) -> String {
    const SHOWN: usize = 5;
    let mut text = files
        .iter()
        .take(SHOWN)
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        text.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    text
}

impl Run<'_> {
    /// Brings back the missing files of jobs the journal says are done (`jobs`: each job with
    /// its files per the journal, and those missing): downloaded again when every missing file
    /// of the job can be, else the job is left to run again.
    ///
    /// # Errors
    /// A server of the run refuses to say what it has.
    pub(super) async fn repair(
        &mut self,
        jobs: Vec<(usize, Vec<PathBuf>, Vec<MissingFile>)>,
    ) -> Result<Repaired, RunError> {
        let mut out = Repaired::default();
        for (job, files, missing) in jobs {
            out.missing.extend(missing.iter().map(|m| m.file.clone()));
            match self.plan_restore(&missing).await? {
                Err(why) => {
                    out.run_again.insert(job, why);
                }
                Ok(plan) => match self.restore(&plan).await {
                    Ok(()) => {
                        out.downloaded.extend(plan.into_iter().map(|r| r.rel));
                        out.restored.push((job, files));
                    }
                    Err(e) => {
                        let why = format!(
                            "downloading its missing files failed: {}",
                            crate::error_chain::error_chain(&e)
                        );
                        out.run_again.insert(job, why);
                    }
                },
            }
        }
        Ok(out)
    }

    /// How each missing file of one job comes back, or why its job runs again.
    async fn plan_restore(
        &self,
        missing: &[MissingFile],
    ) -> Result<Result<Vec<Restore>, String>, RunError> {
        let sidecars = self.ctx.prepared.file.manifest().output.sidecar;
        let mut plan = Vec::new();
        for file in missing {
            if file.repair == Repair::RunAgain {
                return Ok(Err(format!(
                    "the run's cleanup deleted the image of `{}` from the server",
                    file.file.display()
                )));
            }
            let (Some(item), Some(lane)) = (file.item, file.item.and_then(|i| self.lane_of(i)))
            else {
                let server = (self.ledger.state().servers.get(&file.server())).map_or_else(
                    || "a server".to_owned(),
                    |url| format!("the server at {url}"),
                );
                return Ok(Err(format!(
                    "`{}` was made by {server}, which is not in this run",
                    file.file.display()
                )));
            };
            let client = self.lanes[lane].client.clone();
            let there = client
                .images()
                .by_names(std::slice::from_ref(&file.image_name))
                .await?;
            if there.is_empty() {
                return Ok(Err(format!(
                    "the server no longer has the image of `{}`",
                    file.file.display()
                )));
            }
            let sidecar_path = crate::store::companion(&file.file, SIDECAR);
            let sidecar = if sidecars && !self.ctx.store.exists(&sidecar_path).unwrap_or(false) {
                match self.sidecar_again(file, item, &client).await? {
                    Some(bytes) => Some(bytes),
                    None => {
                        return Ok(Err(format!(
                            "the sidecar of `{}` is gone too, and the server no longer has the \
                             queue item to write it again from",
                            file.file.display()
                        )));
                    }
                }
            } else {
                None
            };
            plan.push(Restore {
                client,
                rel: file.file.clone(),
                image_name: file.image_name.clone(),
                sidecar,
            });
        }
        Ok(Ok(plan))
    }

    /// The sidecar of a missing file written again from its queue item (`None` when the
    /// server no longer has the item, or the item does not name the file's image).
    async fn sidecar_again(
        &self,
        file: &MissingFile,
        item: ItemRef,
        client: &Client,
    ) -> Result<Option<Vec<u8>>, RunError> {
        let Some(queue_item) = client
            .queue()
            .items_by_ids(&[item.id()])
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let outputs = queue_item.outputs();
        let Some(node_id) = outputs
            .iter()
            .find(|(_, out)| {
                out.images
                    .iter()
                    .chain(&out.videos)
                    .any(|n| *n == file.image_name)
            })
            .map(|(id, _)| id.clone())
        else {
            return Ok(None);
        };
        let p = self.ctx.prepared;
        let nodes = p.workflow.outputs();
        let Some(node) = nodes.iter().find(|n| n.node_id == node_id) else {
            return Ok(None);
        };
        let batch = self
            .ledger
            .state()
            .item(item)
            .map(|(_, batch)| batch.clone())
            .unwrap_or_default();
        let slot = Slot {
            job: file.job,
            key: file.session,
            batch,
        };
        let job = p.expansion.job(file.job);
        let made = Made {
            item: &queue_item,
            at: item,
            slot: &slot,
            job: &job,
        };
        let sidecar = self.sidecar(&made, node, &file.image_name);
        Ok(sidecar.to_bytes().ok())
    }

    /// Downloads the planned files into their places (with their sidecars when planned).
    async fn restore(&self, plan: &[Restore]) -> Result<(), SaveError> {
        let store = &*self.ctx.store;
        for file in plan {
            let staged = store.stage(&file.rel)?;
            file.client
                .images()
                .download(&file.image_name, staged.path())
                .await?;
            let companions: Vec<(&str, &[u8])> = file
                .sidecar
                .iter()
                .map(|bytes| (SIDECAR, bytes.as_slice()))
                .collect();
            store.replace(staged, &file.rel, &companions)?;
        }
        Ok(())
    }
}

/// One missing file to download again.
struct Restore {
    client: Client,
    rel: PathBuf,
    image_name: String,
    sidecar: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::journal::{Entry, ItemEnd};

    fn key(i: usize) -> JobKey {
        JobKey {
            index: i,
            hash: 0xbeef,
        }
    }

    /// Job 0 made two files on server 1, job 1 one; the cleanup deleted job 0's `b.png`.
    fn state() -> State {
        let s = |i: usize| SessionKey::from(key(i));
        let item = |id: i64| ItemRef::new(1, id);
        let mut entries = vec![
            Entry::EnqueueIntent {
                batch_id: "b".into(),
                jobs: vec![s(0), s(1)],
                first: 0,
                server: 1,
            },
            Entry::Enqueued {
                batch_id: "b".into(),
                item_ids: vec![item(5), item(6)],
            },
        ];
        for (job, image, file) in [(0, "a", "a.png"), (0, "b", "b.png"), (1, "c", "c.png")] {
            entries.push(Entry::Downloaded {
                job: s(job),
                image_name: image.into(),
                file: file.into(),
            });
        }
        for (job, id) in [(0, 5), (1, 6)] {
            entries.push(Entry::Finished {
                job: s(job),
                item_id: item(id),
                status: ItemEnd::Completed,
                error: None,
            });
        }
        entries.push(Entry::Deleted {
            image_names: vec!["b".into()],
        });
        State::from_entries(entries)
    }

    #[test]
    fn a_missing_file_is_downloaded_again_unless_the_cleanup_deleted_its_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::LocalStore::at(dir.path());
        let state = state();
        // Nothing on disk: every file of each job is missing.
        let missing = missing_of(&state, &store, key(0));
        let seen: Vec<(&str, Repair, u16)> = missing
            .iter()
            .map(|m| (m.file.to_str().unwrap_or_default(), m.repair, m.server()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a.png", Repair::DownloadIfOnServer, 1),
                ("b.png", Repair::RunAgain, 1)
            ]
        );
        // A file on disk is not missing; another job's files are not this job's.
        crate::fs::write(dir.path().join("a.png"), b"png").expect("write");
        let missing = missing_of(&state, &store, key(0));
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].file, PathBuf::from("b.png"));
        assert_eq!(missing_of(&state, &store, key(1))[0].job, 1);
        crate::fs::write(dir.path().join("c.png"), b"png").expect("write");
        assert!(missing_of(&state, &store, key(1)).is_empty());
    }

    #[test]
    fn the_message_names_the_missing_files_what_came_back_and_what_runs_again() {
        let mut repaired = Repaired::default();
        assert_eq!(repaired.message(), None, "nothing missing, nothing said");
        repaired.missing = (0..7).map(|i| PathBuf::from(format!("{i}.png"))).collect();
        repaired.downloaded = repaired.missing[..6].to_vec();
        repaired
            .run_again
            .insert(3, "the server no longer has the image of `6.png`".into());
        assert_eq!(
            repaired.message().as_deref(),
            Some(
                "7 of the files of finished jobs are missing from disk (0.png, 1.png, 2.png, \
                 3.png, 4.png and 2 more); downloaded 6 again from the server; job 3 runs again: \
                 the server no longer has the image of `6.png`"
            )
        );
    }
}
