//! A server coming (back) into the pool while the run goes: one that left because it stopped
//! answering, or one left out at the start because it did not answer, is asked every
//! [`ASK_EVERY`] whether it answers (on its own, off the run's loop). When it does, it is
//! checked as the preflight checks a server (its node types, the manifest's models); a server
//! that left has its leftover items of the run taken back at once (they were journaled as taken
//! back when it left, and their jobs went elsewhere), then it takes jobs again.

use std::time::Duration;

use super::error::RunError;
use super::key::ItemRef;
use super::lane::Lane;
use super::preflight::{ANSWER_WITHIN, Absent, check_again};
use super::running::{Away, Run};
use crate::client::Client;

/// How often a server away from the pool is asked whether it answers.
const ASK_EVERY: Duration = Duration::from_secs(1);

/// Waits until `client`'s server answers (asked every [`ASK_EVERY`]); returns `away` with it.
async fn answers(away: Away, client: Client) -> (Away, Client) {
    loop {
        tokio::time::sleep(ASK_EVERY).await;
        if answers_now(&client).await {
            return (away, client);
        }
    }
}

/// Waits until the absent server answers (its client made, and logged in, once it does).
async fn answers_first(away: Away, absent: Absent) -> (Away, Client) {
    loop {
        tokio::time::sleep(ASK_EVERY).await;
        let Ok(client) = Client::connect(&absent.entry.url, &absent.credentials).await else {
            continue;
        };
        if answers_now(&client).await {
            return (away, client);
        }
    }
}

/// Whether `client`'s server answers one request within [`ANSWER_WITHIN`], not asked again.
async fn answers_now(client: &Client) -> bool {
    (client.with_timeout(ANSWER_WITHIN).without_retries())
        .app()
        .version()
        .await
        .is_ok()
}

impl Run<'_> {
    /// Starts asking the servers left out at the start whether they answer.
    pub(super) fn watch_absent(&mut self, absent: Vec<Absent>) {
        for (k, server) in absent.into_iter().enumerate() {
            self.absent.push(Some(server.entry.clone()));
            self.returns.spawn(answers_first(Away::Absent(k), server));
        }
    }

    /// Lane `i` leaves the run for `why` because it stopped answering: it is asked whether it
    /// answers again.
    pub(super) fn leave_unanswering(&mut self, i: usize, why: String) -> Result<(), RunError> {
        self.leave(i, why)?;
        let client = self.lanes[i].client.clone();
        self.returns.spawn(answers(Away::Lane(i), client));
        Ok(())
    }

    /// A server away from the pool answers: checked again, and back in the run if it can run
    /// the manifest.
    pub(super) async fn came_back(&mut self, away: Away, client: Client) -> Result<(), RunError> {
        match away {
            Away::Lane(i) => self.rejoin(i, client).await,
            Away::Absent(k) => self.join(k, client).await,
        }
    }

    /// Lane `i`, which left, answers again.
    async fn rejoin(&mut self, i: usize, client: Client) -> Result<(), RunError> {
        let lane = &self.lanes[i];
        let entry = crate::server_entry::ServerEntry::url(&lane.url);
        let server =
            match check_again(entry, client.clone(), &self.ctx.name, self.ctx.prepared).await {
                Ok(server) => server,
                Err(why) => {
                    self.ctx.warn(format!(
                        "{} answers again but stays out of the pool: {why}",
                        lane.name()
                    ));
                    return Ok(());
                }
            };
        // What it still holds of the run goes at once: it would run it for nothing.
        let taken = lane.take_back_again(&lane.abandoned).await;
        if taken.unreachable.is_some() {
            // Not quite back: asked again.
            self.returns.spawn(answers(Away::Lane(i), client));
            return Ok(());
        }
        let lane = &mut self.lanes[i];
        lane.abandoned.clear();
        lane.models = server.models;
        lane.left = None;
        lane.idle = false;
        lane.running.clear();
        lane.retry_at = None;
        lane.told_full = false;
        let _ = lane.health.up();
        self.ctx.warn(format!(
            "{} answers again and rejoins the pool ({} of the run's items it still held taken back)",
            self.lanes[i].name(),
            taken.taken
        ));
        self.pool_changed();
        self.tell_status(i);
        Ok(())
    }

    /// The server left out at the start at index `k` of the absent ones answers.
    async fn join(&mut self, k: usize, client: Client) -> Result<(), RunError> {
        let Some(entry) = self.absent.get_mut(k).and_then(Option::take) else {
            return Ok(());
        };
        let url = entry.url.clone();
        let server = match check_again(entry, client, &self.ctx.name, self.ctx.prepared).await {
            Ok(server) => server,
            Err(why) => {
                self.ctx.warn(format!(
                    "the server at {url} answers now but stays out of the pool: {why}"
                ));
                return Ok(());
            }
        };
        let number = self.ledger.server_number(&url)?;
        let lane = Lane::start(server, number, &self.follow, self.ctx.grace()).await;
        // What an earlier run left on it goes at once (journaled as taken back at the start).
        let leftovers: Vec<ItemRef> = self
            .held_away
            .iter()
            .copied()
            .filter(|item| item.server() == number)
            .collect();
        let taken = lane.take_back_again(&leftovers).await;
        self.lanes.push(lane);
        self.ctx.warn(format!(
            "the server at {url} answers now and joins the pool ({} of the run's items it still \
             held taken back)",
            taken.taken
        ));
        self.pool_changed();
        self.tell_status(self.lanes.len() - 1);
        Ok(())
    }

    /// A server came into the pool: while several are in it, each is given up after the grace.
    fn pool_changed(&mut self) {
        let several = self.lanes.iter().filter(|l| l.in_run()).count() > 1;
        let wait = self.ctx.wait_for(several);
        for lane in self.lanes.iter_mut().filter(|l| l.in_run()) {
            lane.health.set_wait(wait);
        }
    }
}
