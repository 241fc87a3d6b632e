//! The one way the worker waits before trying again (a lost broker session,
//! a database that does not answer, a batch that cannot be applied yet, the
//! relay's database): exponential delays from 100 ms up to 30 s, with
//! jitter, cut short by a stop.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The longest delay, and the delay once the schedule is spent.
const MAX: Duration = Duration::from_secs(30);

pub(super) struct Backoff(backoff::ExponentialBackoff);

impl Backoff {
    pub(super) fn new() -> Backoff {
        Backoff(
            backoff::ExponentialBackoffBuilder::new()
                .with_initial_interval(Duration::from_millis(100))
                .with_max_interval(MAX)
                .with_max_elapsed_time(None)
                .build(),
        )
    }

    /// Starts again from the shortest delay (after a long healthy spell).
    pub(super) fn reset(&mut self) {
        *self = Backoff::new();
    }

    /// The next delay.
    pub(super) fn next_delay(&mut self) -> Duration {
        use backoff::backoff::Backoff as _;
        self.0.next_backoff().unwrap_or(MAX)
    }

    /// Takes the next delay, tells `announce` of it (to log it), and sleeps
    /// it; `false` when `stop` came first.
    pub(super) async fn retry_after(
        &mut self,
        stop: &CancellationToken,
        announce: impl FnOnce(Duration),
    ) -> bool {
        let delay = self.next_delay();
        announce(delay);
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}
