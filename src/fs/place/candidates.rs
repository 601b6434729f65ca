//! Choosing a free name, and finding a file written earlier.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::checks::{Entry, entry, link_error};
use super::{MAX_COMPANION_READ, MAX_SUFFIX, Name, OutputRoot, PlaceError, companion};

impl OutputRoot {
    /// The first candidate of `name` from `start` on that is free: neither it nor any of its
    /// companions (`suffixes`) exists, and `taken` (absolute paths handed out already) does not
    /// hold it. Returns its number and absolute path.
    ///
    /// # Errors
    /// [`PlaceError::Link`] when a candidate or companion is a link (it is never passed over
    /// silently), [`PlaceError::NoFreeName`], or [`PlaceError::Io`].
    pub fn free_candidate(
        &self,
        name: &Name,
        suffixes: &[&str],
        start: u32,
        taken: &HashSet<PathBuf>,
    ) -> Result<(u32, PathBuf), PlaceError> {
        self.free_candidate_by(name, suffixes, start, |path| taken.contains(path))
    }

    /// [`OutputRoot::free_candidate`] with "handed out already" asked of `taken` (given the
    /// candidate's absolute path).
    pub(crate) fn free_candidate_by(
        &self,
        name: &Name,
        suffixes: &[&str],
        start: u32,
        taken: impl Fn(&Path) -> bool,
    ) -> Result<(u32, PathBuf), PlaceError> {
        for n in start..MAX_SUFFIX {
            let path = self.root.join(name.candidate(n));
            if taken(&path) {
                continue;
            }
            let mut free = true;
            for p in
                std::iter::once(path.clone()).chain(suffixes.iter().map(|s| companion(&path, s)))
            {
                match entry(&p)? {
                    Entry::Missing => {}
                    Entry::Link => return Err(link_error(&p, false)),
                    _ => free = false,
                }
            }
            if free {
                return Ok((n, path));
            }
        }
        Err(PlaceError::NoFreeName {
            path: self.root.join(name.candidate(0)),
        })
    }

    /// A file written earlier that `pick` recognises: the candidates of `name` are looked at in
    /// order while they exist, and the first regular file for which `pick` (given its path and
    /// the bytes of its companion `suffix`, when that is a small regular file) says something
    /// is returned with what it said. A companion whose file is missing (a placing cut short:
    /// the companion goes first) is shown to `pick` too. Links are never followed.
    pub fn find_earlier<T>(
        &self,
        name: &Name,
        suffix: &str,
        pick: impl Fn(&Path, Option<&[u8]>) -> Option<T>,
    ) -> Option<(PathBuf, T)> {
        let mut said = None;
        let path = self
            .scan_earlier(name, suffix, |path, _, bytes| {
                said = pick(path, bytes);
                said.is_some()
            })
            .ok()??;
        Some((path, said?))
    }

    /// The search of [`OutputRoot::find_earlier`], whose `pick` is also told whether the file
    /// itself is there (a regular file) and which says yes or no; an I/O error while looking
    /// ends the search with that error.
    pub(crate) fn scan_earlier(
        &self,
        name: &Name,
        suffix: &str,
        mut pick: impl FnMut(&Path, bool, Option<&[u8]>) -> bool,
    ) -> Result<Option<PathBuf>, PlaceError> {
        for n in 0..MAX_SUFFIX {
            let path = self.root.join(name.candidate(n));
            let side = companion(&path, suffix);
            let (file, side_entry) = (entry(&path)?, entry(&side)?);
            if matches!((&file, &side_entry), (Entry::Missing, Entry::Missing)) {
                return Ok(None);
            }
            let orphan = matches!((&file, &side_entry), (Entry::Missing, Entry::File));
            let is_file = matches!(file, Entry::File);
            if !is_file && !orphan {
                continue;
            }
            let bytes = match side_entry {
                Entry::File
                    if crate::fs::symlink_metadata(&side)
                        .is_ok_and(|m| m.len() <= MAX_COMPANION_READ) =>
                {
                    crate::fs::read(&side).ok()
                }
                _ => None,
            };
            if pick(&path, is_file, bytes.as_deref()) {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }
}
