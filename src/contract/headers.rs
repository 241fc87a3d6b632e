//! The AMQP header names of the contract and of jobsync's own bookkeeping,
//! in one place: the worker writes them and the dead-letter tools read them.

/// Every header jobsync sets starts with this.
pub const JOBSYNC_PREFIX: &str = "x-jobsync-";

/// Section 4.3: the stable error code of a rejection.
pub const ERROR_CODE: &str = "x-jobsync-error-code";
/// Section 4.3: a sentence naming the field.
pub const ERROR: &str = "x-jobsync-error";
/// Section 4.3: the queue a rejected message was consumed from.
pub const SOURCE_QUEUE: &str = "x-jobsync-source-queue";
/// Section 4.3: when it was rejected (RFC 3339).
pub const REJECTED_AT: &str = "x-jobsync-rejected-at";

/// How often a message was sent through the retry exchange.
pub const RETRIES: &str = "x-jobsync-retries";
/// When a retried message was first seen.
pub const FIRST_SEEN_AT: &str = "x-jobsync-first-seen-at";
/// The hub's routing key of a message that went through the retry exchange
/// (which routes it by its queue's name): a replay publishes it with this.
pub const ROUTING_KEY: &str = "x-jobsync-routing-key";
