//! Sharing a pool's work out: which server takes the next jobs and how many, and, at the tail of
//! a run, pending sessions moved from a busy server to an idle one.
//!
//! While the jobs left outnumber the room the servers have, the server with the most room takes
//! up to its room (pull, not push: a slow server takes fewer). Once the jobs left fit in the
//! pool's room, each server's share follows its window (its weight): the outstanding work (the
//! jobs left and the run's open sessions) is split in proportion to the windows, so a 10-job sweep
//! on two idle servers of equal windows goes 5 and 5 instead of 10 to the first.
//!
//! At the tail, a server that is idle while another holds two or more of the run's sessions that
//! have not started takes some of them over, in proportion to its window: they are taken back on
//! the busy server first (the one take-back primitive, journaled as withdrawn; only sessions the
//! server says are still pending are cancelled, so none runs on both), their jobs handed back,
//! and the next submit gives them to the idle server.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::RunError;
use super::key::ItemRef;
use super::running::Run;
use super::take_back::{Stopped, Which, take_back};
use crate::error_chain::error_chain;

/// How long moving pending sessions off a busy server may take.
const STEAL_FOR: Duration = Duration::from_secs(5);

/// How long after a try that moved nothing the next one waits.
const STEAL_PAUSE: Duration = Duration::from_secs(2);

/// A server as the sharing-out sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seat {
    /// It may take jobs now (in the run, answering, its queue not full): only these share.
    pub(super) ready: bool,
    /// It is in the run and answers (its queue may be full).
    pub(super) answers: bool,
    /// Its window: its weight.
    pub(super) window: usize,
    /// The run's sessions open on it.
    pub(super) open: usize,
}

impl Seat {
    fn room(self) -> usize {
        self.window.saturating_sub(self.open)
    }

    /// Whether it tops up now: ready, and its window at least half empty.
    fn tops_up(self) -> bool {
        self.ready && self.room() * 2 >= self.window && self.room() > 0
    }
}

/// The pool's room now: what the servers that may take jobs have room for.
pub(super) fn pool_room(seats: &[Seat]) -> usize {
    seats.iter().filter(|s| s.ready).map(|s| s.room()).sum()
}

/// The server that takes the next jobs and how many, given `left` jobs to submit (`left` is
/// counted up to one more than [`pool_room`]: past that the count does not matter). `None`: no
/// server tops up now.
pub(super) fn next_share(seats: &[Seat], left: usize) -> Option<(usize, usize)> {
    if left == 0 {
        return None;
    }
    if left > pool_room(seats) {
        // More jobs than room: the server with the most room (the first named on a tie).
        let mut best: Option<(usize, usize)> = None;
        for (i, seat) in seats.iter().enumerate() {
            if seat.tops_up() && best.is_none_or(|(_, r)| seat.room() > r) {
                best = Some((i, seat.room()));
            }
        }
        return best;
    }
    // The tail: the outstanding work split by weight; each server takes what brings it to its
    // share. The one furthest below its share goes first.
    let weight: usize = seats.iter().filter(|s| s.ready).map(|s| s.window).sum();
    let open: usize = seats.iter().filter(|s| s.ready).map(|s| s.open).sum();
    let outstanding = left + open;
    let mut best: Option<(usize, usize)> = None;
    for (i, seat) in seats.iter().enumerate() {
        if !seat.tops_up() || weight == 0 {
            continue;
        }
        let share = (outstanding * seat.window).div_ceil(weight);
        let take = share.saturating_sub(seat.open).min(seat.room()).min(left);
        if take > 0 && best.is_none_or(|(_, t)| take > t) {
            best = Some((i, take));
        }
    }
    best
}

/// The share of jobs just moved to an idle server ([`Run::steal`]): they go there while it can
/// take them (a split by the windows could hand them back to the busy server they came from).
pub(super) fn moved_share(
    moved_to: Option<(usize, usize)>,
    seats: &[Seat],
    left: usize,
) -> Option<(usize, usize)> {
    let (i, count) = moved_to?;
    let seat = seats.get(i)?;
    let take = count.min(seat.room()).min(left);
    (seat.ready && take > 0).then_some((i, take))
}

/// How many of a busy server's `pending` sessions an idle server of window `idle_window` with
/// `room` takes over from it (window `busy_window`): its weight's part, at least one; none
/// unless two or more are pending.
pub(super) fn steal_count(
    pending: usize,
    idle_window: usize,
    busy_window: usize,
    room: usize,
) -> usize {
    if pending < 2 {
        return 0;
    }
    (pending * idle_window)
        .div_ceil((idle_window + busy_window).max(1))
        .clamp(1, pending)
        .min(room)
}

impl Run<'_> {
    /// The seats of the run's servers, for [`next_share`].
    pub(super) fn seats(&self) -> Vec<Seat> {
        let now = tokio::time::Instant::now();
        (0..self.lanes.len())
            .map(|i| {
                let lane = &self.lanes[i];
                let down = lane.health.is_down() && self.others_in_run(i);
                let answers = lane.in_run() && !down;
                Seat {
                    ready: answers && lane.retry_at.is_none_or(|at| now >= at),
                    answers,
                    window: lane.window,
                    open: self.ledger.open_on(lane.number).count(),
                }
            })
            .collect()
    }

    /// At the tail (nothing left to submit): a server that is idle while another holds two or
    /// more of the run's sessions that have not started takes some of them over. Returns
    /// whether any moved (their jobs are handed back, for the next submit to place).
    pub(super) async fn steal(&mut self) -> Result<bool, RunError> {
        if self
            .steal_after
            .is_some_and(|at| tokio::time::Instant::now() < at)
        {
            return Ok(false);
        }
        let seats = self.seats();
        let Some(idle) = (0..seats.len()).find(|&i| seats[i].ready && seats[i].open == 0) else {
            return Ok(false);
        };
        // The busy server with the most sessions not started, as the run knows them (the
        // server itself says which still are).
        let pending_on = |j: usize| -> Vec<(usize, ItemRef)> {
            let lane = &self.lanes[j];
            let mut items: Vec<(usize, ItemRef)> = self
                .ledger
                .open_on(lane.number)
                .filter(|item| !lane.running.contains(item))
                // Only jobs of one session: a job of several could have one started and run
                // again whole.
                .filter_map(|item| {
                    let slot = self.ledger.slot(item)?;
                    slot.key.session.is_none().then_some((slot.job, item))
                })
                .collect();
            // The last submitted first: they would start last.
            items.sort_by_key(|(_, item)| std::cmp::Reverse(item.id()));
            items
        };
        let Some((busy, pending)) = (0..seats.len())
            .filter(|&j| j != idle && seats[j].answers)
            .map(|j| (j, pending_on(j)))
            .max_by_key(|(_, p)| p.len())
        else {
            return Ok(false);
        };
        let count = steal_count(
            pending.len(),
            seats[idle].window,
            seats[busy].window,
            seats[idle].room(),
        );
        if count == 0 {
            return Ok(false);
        }
        let chosen: BTreeMap<ItemRef, usize> = pending
            .into_iter()
            .take(count)
            .map(|(job, item)| (item, job))
            .collect();
        let items: Vec<ItemRef> = chosen.keys().copied().collect();
        let mut moved = Vec::new();
        let ledger = &mut self.ledger;
        let lane = &self.lanes[busy];
        let taken = take_back(
            &lane.client.with_timeout(lane.answer_within),
            lane.number,
            &items,
            Which::NotStarted,
            STEAL_FOR,
            |item| {
                moved.push(item);
                ledger.withdraw(item)
            },
        )
        .await?;
        for item in &moved {
            if let Some(job) = chosen.get(item) {
                self.hand_back(*job);
            }
        }
        if !moved.is_empty() {
            self.moved_to = Some((idle, moved.len()));
        }
        // A busy server that does not answer counts as down (and leaves past the grace).
        let unanswered = match &taken.unreachable {
            Some(Stopped::Client(e)) if e.is_unreachable() => Some(error_chain(e)),
            Some(Stopped::Timeout(_)) => Some("no answer".to_owned()),
            _ => None,
        };
        if let Some(error) = unanswered {
            self.steal_after = Some(tokio::time::Instant::now() + STEAL_PAUSE);
            if self.server_down(busy, &error).is_err() {
                let why = format!("it did not answer for {} s", self.ctx.grace().as_secs());
                self.leave_unanswering(busy, why)?;
            }
            return Ok(!moved.is_empty());
        }
        if moved.is_empty() {
            // None was still pending (the run had not heard yet that they started): not asked
            // again for a while.
            self.steal_after = Some(tokio::time::Instant::now() + STEAL_PAUSE);
            return Ok(false);
        }
        tracing::info!(
            "{} is idle: {} pending job(s) moved to it from {}",
            self.lanes[idle].name(),
            moved.len(),
            self.lanes[busy].name()
        );
        self.tell_status(busy);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(window: usize, open: usize) -> Seat {
        Seat {
            ready: true,
            answers: true,
            window,
            open,
        }
    }

    /// Submits `left` jobs as the engine does, one share at a time; returns each server's count.
    fn fill(mut seats: Vec<Seat>, mut left: usize) -> Vec<usize> {
        let mut got = vec![0; seats.len()];
        while let Some((i, n)) = next_share(&seats, left.min(pool_room(&seats) + 1)) {
            seats[i].open += n;
            got[i] += n;
            left -= n;
        }
        got
    }

    #[test]
    fn a_short_sweep_is_split_by_the_windows() {
        assert_eq!(fill(vec![seat(16, 0), seat(16, 0)], 10), [5, 5]);
        assert_eq!(fill(vec![seat(16, 0), seat(16, 0)], 11), [6, 5]);
        assert_eq!(fill(vec![seat(8, 0), seat(2, 0)], 10), [8, 2]);
        assert_eq!(fill(vec![seat(12, 0), seat(4, 0)], 8), [6, 2]);
        assert_eq!(fill(vec![seat(4, 0), seat(4, 0), seat(4, 0)], 3), [1, 1, 1]);
        assert_eq!(fill(vec![seat(16, 0), seat(16, 0)], 1), [1, 0]);
    }

    #[test]
    fn a_long_sweep_fills_each_window_and_the_tail_goes_to_the_emptier_server() {
        // More jobs than room: each server takes its whole window.
        assert_eq!(fill(vec![seat(16, 0), seat(4, 0)], 100), [16, 4]);
        // The tail: one server drained to half while the other is full.
        assert_eq!(fill(vec![seat(16, 8), seat(16, 16)], 3), [3, 0]);
        // Both half drained: the split evens them out.
        assert_eq!(fill(vec![seat(16, 8), seat(16, 4)], 6), [1, 5]);
    }

    #[test]
    fn a_server_that_does_not_answer_gets_no_share() {
        let mut down = seat(16, 0);
        down.ready = false;
        down.answers = false;
        assert_eq!(fill(vec![down, seat(16, 0)], 10), [0, 10]);
        // A full queue: no share while it is full.
        let mut full = seat(16, 0);
        full.ready = false;
        assert_eq!(fill(vec![full, seat(16, 0)], 10), [0, 10]);
    }

    #[test]
    fn jobs_moved_to_an_idle_server_go_there_and_not_back_by_the_split() {
        // A busy server of window 4 with 2 open, an idle one of window 1: the split would give
        // the one moved job back to the busy server.
        let seats = [seat(4, 2), seat(1, 0)];
        assert_eq!(next_share(&seats, 1), Some((0, 1)));
        assert_eq!(moved_share(Some((1, 1)), &seats, 1), Some((1, 1)));
        // Never past its room or the jobs left; not when it cannot take jobs now.
        assert_eq!(moved_share(Some((1, 3)), &seats, 5), Some((1, 1)));
        let mut gone = seat(1, 0);
        gone.ready = false;
        assert_eq!(moved_share(Some((1, 1)), &[seat(4, 2), gone], 1), None);
        assert_eq!(moved_share(None, &seats, 1), None);
    }

    #[test]
    fn an_idle_server_takes_its_weights_part_of_two_or_more_pending() {
        assert_eq!(steal_count(1, 16, 16, 16), 0);
        assert_eq!(steal_count(2, 16, 16, 16), 1);
        assert_eq!(steal_count(7, 16, 16, 16), 4);
        assert_eq!(steal_count(7, 2, 8, 2), 2);
        assert_eq!(steal_count(3, 1, 100, 1), 1);
        assert_eq!(steal_count(9, 16, 16, 2), 2);
    }
}
