//! Which server images a run (or a [`super::WorkflowHandle`]) may delete: the one cleanup
//! planner of the runner and the handle.
//!
//! An image may be deleted when
//! - it is one of the run's uploads and uploads may go, or
//! - the server says one of the run's sessions made it (the invocation cache can hand a job an
//!   image another session made, maybe another user's, and a pass-through node can list an
//!   image the user owns: those stay),
//!
//! and it is not one that must stay on the server (an output that could not be saved, listed
//! as left on the server; an image already deleted).

use std::collections::{BTreeSet, HashMap};

use super::{Client, ClientError};

/// What a run made and uploaded, and what must stay.
#[derive(Debug, Clone, Copy)]
pub struct Ours<'a> {
    /// The sessions of the run's queue items.
    pub sessions: &'a BTreeSet<String>,
    /// The images the run uploaded.
    pub uploads: &'a BTreeSet<String>,
    /// Whether the uploads may be deleted.
    pub delete_uploads: bool,
    /// Images that stay whatever else holds (outputs left on the server, images already
    /// deleted).
    pub keep: &'a BTreeSet<String>,
}

/// Why an image is not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kept {
    /// It must stay ([`Ours::keep`]).
    Kept,
    /// It is an upload and uploads stay.
    Upload,
    /// Another session made it (a cached node, or an image passed through).
    OtherSession,
    /// The server does not have it (any more).
    Gone,
}

/// What may be deleted, and what not (and why), in the order of the candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletable {
    /// The images that may be deleted.
    pub delete: Vec<String>,
    /// The images that stay.
    pub kept: Vec<(String, Kept)>,
}

/// Decides for each candidate (duplicates count once), given the server's record of each
/// image it has: the session that made it (`None`: no session, e.g. an upload).
#[must_use]
pub fn decide(
    candidates: &[String],
    made_by: &HashMap<String, Option<String>>,
    ours: &Ours<'_>,
) -> Deletable {
    let mut out = Deletable::default();
    let mut seen = BTreeSet::new();
    for name in candidates {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let verdict = if ours.keep.contains(name) {
            Err(Kept::Kept)
        } else if ours.uploads.contains(name) {
            if ours.delete_uploads {
                Ok(())
            } else {
                Err(Kept::Upload)
            }
        } else {
            match made_by.get(name) {
                None => Err(Kept::Gone),
                Some(Some(session)) if ours.sessions.contains(session) => Ok(()),
                Some(_) => Err(Kept::OtherSession),
            }
        };
        match verdict {
            Ok(()) => out.delete.push(name.clone()),
            Err(why) => out.kept.push((name.clone(), why)),
        }
    }
    out
}

/// The images of `candidates` that may be deleted ([`decide`]), asking the server which session
/// made each one that is not an upload.
///
/// # Errors
/// Any [`ClientError`] of the look-up.
pub async fn deletable(
    client: &Client,
    candidates: &[String],
    ours: &Ours<'_>,
) -> Result<Deletable, ClientError> {
    let ask: Vec<String> = candidates
        .iter()
        .filter(|n| !ours.keep.contains(*n) && !ours.uploads.contains(*n))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let made_by: HashMap<String, Option<String>> = if ask.is_empty() {
        HashMap::new()
    } else {
        client
            .images()
            .by_names(&ask)
            .await?
            .into_iter()
            .map(|dto| (dto.image_name, dto.session_id))
            .collect()
    };
    Ok(decide(candidates, &made_by, ours))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn only_images_our_sessions_made_go_and_uploads_only_when_asked() {
        let sessions = set(&["s1", "s2"]);
        let uploads = set(&["up"]);
        let keep = set(&["left"]);
        let made_by: HashMap<String, Option<String>> = [
            ("out", Some("s1")),
            ("mid", Some("s2")),
            ("cached", Some("someone-else")),
            ("left", Some("s1")),
            ("up", None),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s.map(str::to_owned)))
        .collect();
        let candidates: Vec<String> = ["out", "mid", "cached", "left", "up", "gone", "out"]
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let mut ours = Ours {
            sessions: &sessions,
            uploads: &uploads,
            delete_uploads: false,
            keep: &keep,
        };
        let decided = decide(&candidates, &made_by, &ours);
        assert_eq!(decided.delete, ["out", "mid"]);
        assert_eq!(
            decided.kept,
            [
                ("cached".to_owned(), Kept::OtherSession),
                ("left".to_owned(), Kept::Kept),
                ("up".to_owned(), Kept::Upload),
                ("gone".to_owned(), Kept::Gone),
            ]
        );
        ours.delete_uploads = true;
        assert_eq!(
            decide(&candidates, &made_by, &ours).delete,
            ["out", "mid", "up"]
        );
    }
}
