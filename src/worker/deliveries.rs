//! The deliveries of one consumed queue, with the broker's prefetch sized by
//! bytes: RabbitMQ limits unacknowledged deliveries by count only, and lapin
//! buffers whatever the broker pushes, so the bytes in flight are the
//! prefetch times the body size. Bodies may be anything up to 256 KiB (a
//! tolerant reader lets unknown fields through), so a fixed prefetch either
//! starves ordinary messages or lets large ones fill the memory.
//!
//! The consumer starts as if every body were as large as the limit allows,
//! and follows the largest body of the recent deliveries: when the prefetch
//! that fits the byte budget differs enough from the current one, it cancels
//! its consumer, keeps what the broker had already sent, and consumes again
//! with the new prefetch. Delivery tags keep rising on the channel, so
//! batches stay in tag order and `multiple` acknowledgements stay right.

use std::collections::VecDeque;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::Channel;

use crate::contract::envelope::MAX_BODY_BYTES;
use crate::telemetry::events::{InternalEvent, PrefetchChanged};

/// Deliveries over which the largest body is remembered: the estimate is the
/// largest of this block and of the block before.
const BLOCK: u32 = 128;

/// The largest body of the recent deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecentSizes {
    previous: usize,
    current: usize,
    seen: u32,
}

impl Default for RecentSizes {
    /// Nothing seen yet: assume the largest valid body.
    fn default() -> Self {
        RecentSizes {
            previous: MAX_BODY_BYTES,
            current: 0,
            seen: 0,
        }
    }
}

impl RecentSizes {
    pub(super) fn note(&mut self, bytes: usize) {
        self.current = self.current.max(bytes);
        self.seen += 1;
        if self.seen == BLOCK {
            self.previous = self.current;
            self.current = 0;
            self.seen = 0;
        }
    }

    /// The largest body of the last one or two blocks (at least 1 KiB, so
    /// that tiny bodies do not ask for an absurd prefetch).
    pub(super) fn largest(&self) -> usize {
        self.previous.max(self.current).max(1024)
    }
}

/// How many deliveries fit `budget` bytes when each may be `largest`, at
/// least one and at most `max`.
pub(super) fn fitting(budget: u64, largest: usize, max: u16) -> u16 {
    let n = budget / largest.max(1) as u64;
    n.clamp(1, u64::from(max)) as u16
}

/// Whether the consumer should consume again with `wanted` instead of
/// `current`: at once when it must shrink by more than an eighth, and when
/// it may grow by half or up to the configured maximum. Small changes are
/// not worth a new consumer.
pub(super) fn worth_changing(current: u16, wanted: u16, max: u16) -> bool {
    let (c, w) = (u32::from(current), u32::from(wanted));
    if w < c {
        w * 8 < c * 7
    } else {
        w > c && (w * 2 >= c * 3 || wanted == max)
    }
}

/// A consumer of one queue whose prefetch follows the sizes it receives.
pub(super) struct Deliveries {
    channel: Channel,
    queue: String,
    tag: String,
    consumer: lapin::Consumer,
    /// What the broker had sent to a cancelled consumer; served first.
    kept: VecDeque<Delivery>,
    prefetch: u16,
    max: u16,
    budget: u64,
    sizes: RecentSizes,
}

impl Deliveries {
    /// Starts consuming `queue` on `channel` with the prefetch that fits
    /// `budget` bytes of bodies as large as the limit, at most `max`.
    pub(super) async fn consume(
        channel: Channel,
        queue: &str,
        max: u16,
        budget: u64,
    ) -> Result<Deliveries, lapin::Error> {
        let sizes = RecentSizes::default();
        let prefetch = fitting(budget, sizes.largest(), max);
        let (tag, consumer) = start(&channel, queue, prefetch).await?;
        PrefetchChanged {
            queue,
            prefetch,
            largest: sizes.largest(),
        }
        .emit();
        Ok(Deliveries {
            channel,
            queue: queue.to_owned(),
            tag,
            consumer,
            kept: VecDeque::new(),
            prefetch,
            max,
            budget,
            sizes,
        })
    }

    /// The next delivery; `None` when the broker cancelled the consumer.
    pub(super) async fn next(&mut self) -> Option<Result<Delivery, lapin::Error>> {
        let next = match self.kept.pop_front() {
            Some(delivery) => Some(Ok(delivery)),
            None => self.consumer.next().await,
        };
        if let Some(Ok(delivery)) = &next {
            self.sizes.note(delivery.data.len());
        }
        next
    }

    /// Consumes again with another prefetch if the recent sizes ask for it.
    /// Called between batches; what the old consumer had received is kept
    /// and delivered first.
    pub(super) async fn fit(&mut self) -> Result<(), lapin::Error> {
        let largest = self.sizes.largest();
        let wanted = fitting(self.budget, largest, self.max);
        if !worth_changing(self.prefetch, wanted, self.max) {
            return Ok(());
        }
        self.channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await?;
        // After its cancel-ok the broker sends the old consumer nothing
        // more; its stream ends with what it had sent.
        while let Some(next) = self.consumer.next().await {
            self.kept.push_back(next?);
        }
        let (tag, consumer) = start(&self.channel, &self.queue, wanted).await?;
        (self.tag, self.consumer, self.prefetch) = (tag, consumer, wanted);
        PrefetchChanged {
            queue: &self.queue,
            prefetch: wanted,
            largest,
        }
        .emit();
        Ok(())
    }

    /// The current consumer's tag, to cancel it when stopping.
    pub(super) fn tag(&self) -> &str {
        &self.tag
    }

    pub(super) fn channel(&self) -> &Channel {
        &self.channel
    }
}

/// Sets the prefetch for the next consumer of `channel` and starts one.
async fn start(
    channel: &Channel,
    queue: &str,
    prefetch: u16,
) -> Result<(String, lapin::Consumer), lapin::Error> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("jobsync-{}", uuid::Uuid::new_v4());
    let consumer = channel
        .basic_consume(
            queue.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((tag, consumer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_starts_at_the_limit_and_follows_what_is_received() {
        let mut s = RecentSizes::default();
        assert_eq!(s.largest(), MAX_BODY_BYTES);
        for _ in 0..BLOCK {
            s.note(2_000);
        }
        assert_eq!(s.largest(), 2_000);
        // One large body counts for this block and the next.
        s.note(200_000);
        for _ in 0..BLOCK {
            s.note(2_000);
        }
        assert_eq!(s.largest(), 200_000);
        for _ in 0..BLOCK {
            s.note(2_000);
        }
        assert_eq!(s.largest(), 2_000);
    }

    #[test]
    fn the_prefetch_fits_the_budget_within_one_and_the_maximum() {
        let mib = 1024 * 1024;
        assert_eq!(fitting(32 * mib, MAX_BODY_BYTES, 1000), 128);
        assert_eq!(fitting(32 * mib, 2_000, 1000), 1000);
        assert_eq!(fitting(1, MAX_BODY_BYTES, 1000), 1);
    }

    #[test]
    fn only_a_change_worth_a_new_consumer_is_made() {
        assert!(worth_changing(1000, 128, 1000));
        assert!(worth_changing(128, 1000, 1000));
        assert!(worth_changing(900, 1000, 1000));
        assert!(!worth_changing(128, 134, 1000));
        assert!(!worth_changing(134, 128, 1000));
        assert!(!worth_changing(1000, 1000, 1000));
    }
}
