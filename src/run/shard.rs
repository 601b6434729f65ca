//! Shards: one sweep split over several runner processes (`--shard K/N`). Shard K of N runs the
//! jobs whose 0-based index is K modulo N, and nothing else; each shard keeps its own journal in
//! the shared output folder (`.invk-run/journal.K-of-N.jsonl`), so N runners write to one
//! folder at once (docs/scale.md).
//!
//! `--shard auto` reads the shard from the scheduler that started the process
//! ([`resolve`]): `INVK_SHARD=K/N`, a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, with the
//! count given as `--shard auto/N`), or a Slurm job array (`SLURM_ARRAY_TASK_ID`,
//! `SLURM_ARRAY_TASK_COUNT`, `SLURM_ARRAY_TASK_MIN`, and `_MAX`/`_STEP` when set).

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::RunError;
pub use super::error::ShardError;
use serde::{Serialize, Serializer};

/// The most shards a sweep is split into.
pub const MAX_SHARDS: u32 = 10_000;

/// The plain variable `--shard auto` reads first: `K/N`.
pub const INVK_SHARD: &str = "INVK_SHARD";
/// A Kubernetes Indexed Job's index of the pod's completion.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";
/// A Slurm array task's id.
pub const SLURM_ARRAY_TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
/// How many tasks a Slurm array has.
pub const SLURM_ARRAY_TASK_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
/// The lowest task id of a Slurm array.
pub const SLURM_ARRAY_TASK_MIN: &str = "SLURM_ARRAY_TASK_MIN";
/// The highest task id of a Slurm array.
pub const SLURM_ARRAY_TASK_MAX: &str = "SLURM_ARRAY_TASK_MAX";
/// The step between a Slurm array's task ids.
pub const SLURM_ARRAY_TASK_STEP: &str = "SLURM_ARRAY_TASK_STEP";

/// The journal of a run that is not sharded (and the folder's only journal then).
const WHOLE_JOURNAL: &str = ".invk-run/journal.jsonl";

/// One shard of a sweep: the jobs whose index is `index` modulo `count`. `0/1` is the whole
/// sweep (a run without `--shard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard::WHOLE
    }
}

impl Shard {
    /// The whole sweep.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// `count` is 0 or more than [`MAX_SHARDS`], or `index` is not below it.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "the shard count must be from 1 to {MAX_SHARDS}, not {count}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard {index} of {count} does not exist: shards are numbered from 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// `K/N`.
    ///
    /// # Errors
    /// Not two numbers with a `/` between them, or numbers [`Shard::new`] refuses.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a shard: give K/N, e.g. 0/4"))?;
        let number = |part: &str| {
            part.trim().parse::<u32>().map_err(|_| {
                format!("`{text}` is not a shard: give K/N with whole numbers, e.g. 0/4")
            })
        };
        Shard::new(number(k)?, number(n)?)
    }

    /// Its index (K).
    #[must_use]
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards the sweep is split into (N).
    #[must_use]
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether it is the whole sweep.
    #[must_use]
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether job `job` is one of its jobs.
    #[must_use]
    pub fn contains(self, job: usize) -> bool {
        job % self.count as usize == self.index as usize
    }

    /// How many of a sweep of `total` jobs are its own.
    #[must_use]
    pub fn jobs_of(self, total: usize) -> usize {
        let (k, n) = (self.index as usize, self.count as usize);
        if total <= k {
            0
        } else {
            (total - k).div_ceil(n)
        }
    }

    /// Its jobs of a sweep of `total` jobs, in order (computed as they are asked for).
    pub fn indices(self, total: usize) -> impl Iterator<Item = usize> {
        (self.index as usize..total).step_by(self.count as usize)
    }

    /// Its journal, relative to the output folder.
    #[must_use]
    pub fn journal(self) -> PathBuf {
        if self.is_whole() {
            PathBuf::from(WHOLE_JOURNAL)
        } else {
            PathBuf::from(format!(
                ".invk-run/journal.{}-of-{}.jsonl",
                self.index, self.count
            ))
        }
    }

    /// The shard whose journal is the file `name` of `.invk-run` (`journal.jsonl`: the whole).
    #[must_use]
    pub fn of_journal_name(name: &str) -> Option<Shard> {
        if name == "journal.jsonl" {
            return Some(Shard::WHOLE);
        }
        let middle = name.strip_prefix("journal.")?.strip_suffix(".jsonl")?;
        let (k, n) = middle.split_once("-of-")?;
        let shard = Shard::new(k.parse().ok()?, n.parse().ok()?).ok()?;
        (shard.journal().file_name()?.to_str()? == name).then_some(shard)
    }

    /// The shards whose journals the output folder `output_dir` holds, in order (none when it
    /// holds no journal). At most [`MAX_SHARDS`] distinct counts are looked at.
    #[must_use]
    pub fn journals_in(output_dir: &Path) -> Vec<Shard> {
        let Ok(entries) = crate::fs::read_dir(output_dir.join(".invk-run")) else {
            return Vec::new();
        };
        let mut found: Vec<Shard> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| Shard::of_journal_name(&e.file_name().to_string_lossy()))
            .take(MAX_SHARDS as usize * 2)
            .collect();
        found.sort_unstable();
        found
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Serialize for Shard {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Refuses a run of shard `shard` into `output_dir` when the folder holds journals of the
/// sweep split into another number of shards (a run that is not sharded counts as 1); with
/// `fresh`, those journals are set aside instead (renamed with a timestamp, as `--fresh` does
/// with a run's own journal). Another shard of this run setting them aside at the same moment
/// is no error.
///
/// # Errors
/// [`RunError::ShardCount`], or a journal that cannot be set aside.
pub fn check_folder(output_dir: &Path, shard: Shard, fresh: bool) -> Result<(), RunError> {
    let others: Vec<Shard> = Shard::journals_in(output_dir)
        .into_iter()
        .filter(|s| s.count != shard.count)
        .collect();
    let Some(first) = others.first() else {
        return Ok(());
    };
    if !fresh {
        let mut names: Vec<String> = (others.iter())
            .filter(|s| s.count == first.count)
            .map(|s| format!("`{}`", s.journal().display()))
            .collect();
        if names.len() > 3 {
            let more = names.len() - 2;
            names.truncate(2);
            names.push(format!("{more} more"));
        }
        return Err(RunError::ShardCount {
            dir: output_dir.to_path_buf(),
            found: first.count,
            journals: names.join(", "),
            wanted: shard.count,
        });
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for other in others {
        let from = output_dir.join(other.journal());
        let mut to = from.clone().into_os_string();
        to.push(format!(".{stamp}"));
        match crate::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Takes the output folder's report lock (`.invk-run/report.lock`), waiting for another shard
/// that holds it: the shards of a sweep append their `runs.jsonl` lines and write the gallery
/// one at a time. `None` (no lock, the report is written all the same) when the folder has no
/// local file for it or the file system refuses locks.
pub(super) fn lock_report(store: &dyn crate::store::OutputStore) -> Option<std::fs::File> {
    let rel = Path::new(REPORT_LOCK);
    store.prepare(rel).ok()?;
    let path = store.local_folder()?.join(rel);
    let file = crate::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ok()?
        .into_parts()
        .0;
    lock_exclusive(&file).then_some(file)
}

/// Waits for an exclusive lock of `file` (released when it is closed); whether it was taken.
#[cfg(unix)]
#[allow(unsafe_code)] // `File::lock` is newer than the crate's minimum Rust version.
fn lock_exclusive(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` on a descriptor the caller keeps open for the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) == 0 }
}

/// No lock where `flock` is missing: the report is written all the same.
#[cfg(not(unix))]
fn lock_exclusive(_file: &std::fs::File) -> bool {
    true
}

/// The lock the shards of a sweep take to write its report one at a time.
pub const REPORT_LOCK: &str = ".invk-run/report.lock";

/// What `--shard` says: a shard, or `auto` (with the count, or without).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    /// `K/N`.
    Fixed(Shard),
    /// `auto` or `auto/N`: from the scheduler's variables.
    Auto {
        /// The count given (`auto/N`): needed for a Kubernetes Indexed Job, checked against
        /// the others.
        count: Option<u32>,
    },
}

impl ShardSpec {
    /// `K/N`, `auto` or `auto/N` (as `--shard` takes it).
    ///
    /// # Errors
    /// Anything else, with what to give instead.
    pub fn parse(text: &str) -> Result<ShardSpec, String> {
        let t = text.trim();
        if t == "auto" {
            return Ok(ShardSpec::Auto { count: None });
        }
        if let Some(n) = t.strip_prefix("auto/") {
            let count = n.trim().parse::<u32>().map_err(|_| {
                format!("`{text}`: give auto/N with N the number of shards, e.g. auto/4")
            })?;
            Shard::new(0, count)?;
            return Ok(ShardSpec::Auto { count: Some(count) });
        }
        Shard::parse(t)
            .map(ShardSpec::Fixed)
            .map_err(|e| format!("{e}; or `auto` (or `auto/N`) to read it from the scheduler"))
    }
}

/// The shard `spec` names; for `auto`, read from the variables `env` gives (the process's
/// environment, or a test's). Variables read: `INVK_SHARD` (`K/N`); `JOB_COMPLETION_INDEX`
/// (Kubernetes Indexed Job; the count comes from `auto/N`); `SLURM_ARRAY_TASK_ID` with
/// `SLURM_ARRAY_TASK_COUNT` and `SLURM_ARRAY_TASK_MIN` (and `_MAX`, `_STEP` when set). When
/// several are set they must agree, and so must `auto/N`.
///
/// # Errors
/// No variable set, a variable that is not a number or out of range, or variables (and the
/// count given) that disagree: each message names the variable.
pub fn resolve(spec: ShardSpec, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
    let count = match spec {
        ShardSpec::Fixed(shard) => return Ok(shard),
        ShardSpec::Auto { count } => count,
    };
    let given = match count {
        Some(n) => format!("auto/{n}"),
        None => "auto".to_owned(),
    };
    let fail = |problem: String| ShardError {
        given: given.clone(),
        problem,
    };
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    // (where it came from, the shard)
    let mut found: Vec<(String, Shard)> = Vec::new();
    if let Some(value) = var(INVK_SHARD) {
        let shard = Shard::parse(&value).map_err(|e| fail(format!("{INVK_SHARD}: {e}")))?;
        found.push((format!("{INVK_SHARD}={value}"), shard));
    }
    if let Some(value) = var(JOB_COMPLETION_INDEX) {
        let index = number(JOB_COMPLETION_INDEX, &value).map_err(&fail)?;
        let Some(n) = count else {
            return Err(fail(format!(
                "{JOB_COMPLETION_INDEX}={value} is set (a Kubernetes Indexed Job) but not the \
                 number of shards: give it as `--shard auto/N`, N the Job's `completions`"
            )));
        };
        let shard = Shard::new(index, n).map_err(|e| {
            fail(format!(
                "{JOB_COMPLETION_INDEX}={value} with auto/{n}: {e}; set the Job's \
                 `completions` and `auto/N` to the same number"
            ))
        })?;
        found.push((format!("{JOB_COMPLETION_INDEX}={value}"), shard));
    }
    if let Some(value) = var(SLURM_ARRAY_TASK_ID) {
        found.push((
            format!("{SLURM_ARRAY_TASK_ID}={value}"),
            slurm(&value, &var).map_err(&fail)?,
        ));
    }
    let Some((source, shard)) = found.first().cloned() else {
        return Err(fail(format!(
            "no shard in the environment: set {INVK_SHARD}=K/N, or run as a Kubernetes Indexed \
             Job ({JOB_COMPLETION_INDEX}, with `--shard auto/N`) or a Slurm job array \
             ({SLURM_ARRAY_TASK_ID}); or give the shard as `--shard K/N`"
        )));
    };
    if let Some((other, different)) = found.iter().find(|(_, s)| *s != shard) {
        return Err(fail(format!(
            "{source} makes it shard {shard} but {other} makes it shard {different}: unset one"
        )));
    }
    if let Some(n) = count
        && n != shard.count
    {
        return Err(fail(format!(
            "{source} says {} shards but `auto/{n}` says {n}: give the same number",
            shard.count
        )));
    }
    Ok(shard)
}

/// A variable's value as a shard number.
fn number(name: &str, value: &str) -> Result<u32, String> {
    value.trim().parse::<u32>().map_err(|_| {
        format!(
            "{name}={value} is not a whole number from 0 to {}",
            u32::MAX
        )
    })
}

/// The shard of a Slurm array task: its place among the array's task ids.
fn slurm(id_text: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let needed = |name: &str| {
        let value = var(name).ok_or_else(|| {
            format!(
                "{SLURM_ARRAY_TASK_ID}={id_text} is set but not {name}: run it as a Slurm job \
                 array (`sbatch --array=0-N`), or give the shard as `--shard K/N`"
            )
        })?;
        number(name, &value)
    };
    let id = number(SLURM_ARRAY_TASK_ID, id_text)?;
    let count = needed(SLURM_ARRAY_TASK_COUNT)?;
    let min = needed(SLURM_ARRAY_TASK_MIN)?;
    let step = match var(SLURM_ARRAY_TASK_STEP) {
        Some(v) => number(SLURM_ARRAY_TASK_STEP, &v)?.max(1),
        None => 1,
    };
    if id < min || (id - min) % step != 0 {
        return Err(format!(
            "{SLURM_ARRAY_TASK_ID}={id} is not a task of an array from \
             {SLURM_ARRAY_TASK_MIN}={min} in steps of {step}"
        ));
    }
    if let Some(v) = var(SLURM_ARRAY_TASK_MAX) {
        let max = number(SLURM_ARRAY_TASK_MAX, &v)?;
        let span = max.checked_sub(min).map(|d| d / step + 1);
        if span != Some(count) {
            return Err(format!(
                "{SLURM_ARRAY_TASK_COUNT}={count} does not match the ids from \
                 {SLURM_ARRAY_TASK_MIN}={min} to {SLURM_ARRAY_TASK_MAX}={max}: an array with gaps \
                 (`--array=1,3,7`) cannot be shards; give a range such as `--array=0-{}`",
                count.saturating_sub(1)
            ));
        }
    }
    Shard::new((id - min) / step, count).map_err(|e| {
        format!("{SLURM_ARRAY_TASK_ID}={id} with {SLURM_ARRAY_TASK_COUNT}={count}: {e}")
    })
}

#[cfg(test)]
mod tests;
