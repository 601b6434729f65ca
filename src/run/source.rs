//! The jobs a run still has to submit, as a stream: the manifest's jobs in order (computed one at
//! a time), minus those the journal already accounts for, plus jobs handed back (a full queue
//! refused them, a server restart cancelled them), which go first.
//!
//! A window's worth of jobs is taken at a time, preferring jobs that can share one enqueue: among
//! the next [`LOOKAHEAD`] jobs, those whose non-batchable values (models, booleans, ...) equal the
//! first one's, so that a sweep over two models does not switch models on every enqueue.

use std::collections::{HashSet, VecDeque};

use indexmap::IndexMap;

use crate::manifest::{Expansion, InputInfo, Job, group_key};

/// How many jobs ahead a window looks for jobs that share an enqueue.
const LOOKAHEAD: usize = 256;

/// The jobs left to submit.
pub(super) struct JobSource<'a> {
    expansion: &'a Expansion,
    /// The next index of the manifest's stream.
    next: usize,
    /// The run's shard: the stream holds only its jobs (every `count`th from its index).
    shard: super::shard::Shard,
    /// Only these jobs, when the run is limited (`--retry-failed`).
    only: Option<VecDeque<usize>>,
    /// Jobs not to take from the stream (done, failed, still on the server).
    skip: HashSet<usize>,
    /// Jobs handed back, taken first.
    again: VecDeque<usize>,
    /// Jobs taken from the stream but not yet handed out.
    ahead: VecDeque<Job>,
}

impl<'a> JobSource<'a> {
    /// Every job of `expansion` but those in `skip`, or only those in `only`.
    pub(super) fn new(
        expansion: &'a Expansion,
        skip: HashSet<usize>,
        only: Option<Vec<usize>>,
    ) -> JobSource<'a> {
        JobSource::of_shard(expansion, super::shard::Shard::WHOLE, skip, only)
    }

    /// The jobs of shard `shard` of `expansion` but those in `skip`, or only those in `only`
    /// (computed one at a time: the other shards' jobs are stepped over, never made).
    pub(super) fn of_shard(
        expansion: &'a Expansion,
        shard: super::shard::Shard,
        skip: HashSet<usize>,
        only: Option<Vec<usize>>,
    ) -> JobSource<'a> {
        JobSource {
            expansion,
            next: shard.index() as usize,
            shard,
            only: only.map(VecDeque::from),
            skip,
            again: VecDeque::new(),
            ahead: VecDeque::new(),
        }
    }

    /// Hands jobs back (submitted again before the rest).
    pub(super) fn hand_back(&mut self, jobs: impl IntoIterator<Item = usize>) {
        self.again.extend(jobs);
    }

    /// Whether no job is left.
    pub(super) fn is_empty(&mut self) -> bool {
        self.fill(1);
        self.ahead.is_empty()
    }

    /// How many jobs are left, counted up to `max`.
    pub(super) fn count_up_to(&mut self, max: usize) -> usize {
        self.fill(max);
        self.ahead.len().min(max)
    }

    /// Up to `max` jobs that can share an enqueue, in job order.
    pub(super) fn take(&mut self, max: usize, inputs: &IndexMap<String, InputInfo>) -> Vec<Job> {
        self.fill(LOOKAHEAD.max(max));
        let Some(first) = self.ahead.front() else {
            return Vec::new();
        };
        let key = group_key(first, inputs);
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.ahead.len());
        while let Some(job) = self.ahead.pop_front() {
            if taken.len() < max && group_key(&job, inputs) == key {
                taken.push(job);
            } else {
                kept.push_back(job);
            }
        }
        self.ahead = kept;
        taken
    }

    /// Computes jobs until `want` are ahead (or none is left).
    fn fill(&mut self, want: usize) {
        while self.ahead.len() < want {
            let index = if let Some(i) = self.again.pop_front() {
                i
            } else if let Some(only) = &mut self.only {
                match only.pop_front() {
                    Some(i) => i,
                    None => return,
                }
            } else {
                let step = self.shard.count() as usize;
                while self.skip.contains(&self.next) {
                    self.next += step;
                }
                if self.next >= self.expansion.job_count() {
                    return;
                }
                self.next += step;
                self.next - step
            };
            self.ahead.push_back(self.expansion.job(index));
        }
    }
}
