//! Publishing under publisher confirms, pipelined: every message of a group is
//! sent before any confirm is awaited.

use futures_util::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker error while publishing: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused (nacked) a message published to {exchange:?} with routing key {routing_key:?}")]
    Nack {
        exchange: String,
        routing_key: String,
    },
    #[error("no queue is bound to take a message published to {exchange:?} with routing key {routing_key:?}; it was returned")]
    Unroutable {
        exchange: String,
        routing_key: String,
    },
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    /// Whether the broker must return the message when no queue takes it
    /// (then publishing fails with [`PublishError::Unroutable`]). Set for
    /// messages that must not vanish: dead letters, delayed retries.
    pub mandatory: bool,
}

/// A channel in confirm mode.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    /// Opens a channel on `connection` and puts it in confirm mode.
    pub async fn open(connection: &Connection) -> Result<Publisher, lapin::Error> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher { channel })
    }

    /// Closes the channel. Done before the connection closes: a channel
    /// only dropped would close itself on lapin's own task, racing the
    /// connection's close, and lapin logs the loser as a connection error.
    pub async fn close(&self) -> Result<(), lapin::Error> {
        self.channel.close(200, "jobsync stopping".into()).await
    }

    /// Publishes every message, then waits for all their confirms. `Ok` means
    /// the broker took responsibility for every one of them.
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Result<(), PublishError> {
        self.publish_pipelined(messages).await?.await
    }

    /// Publishes every message and returns, without waiting for the
    /// confirms: the returned future waits for all of them (`Ok` as for
    /// [`Publisher::publish_all`]). More can be published on the channel
    /// meanwhile; they go out, and are confirmed, after these.
    pub async fn publish_pipelined(
        &self,
        messages: &[Outgoing],
    ) -> Result<
        impl std::future::Future<Output = Result<(), PublishError>> + Send + 'static,
        PublishError,
    > {
        let mut confirms = Vec::with_capacity(messages.len());
        for m in messages {
            let confirm = self
                .channel
                .basic_publish(
                    m.exchange.as_str().into(),
                    m.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: m.mandatory,
                        ..Default::default()
                    },
                    &m.body,
                    m.properties.clone(),
                )
                .await?;
            let (exchange, routing_key) = (m.exchange.clone(), m.routing_key.clone());
            confirms.push(async move {
                let confirmation = confirm.await?;
                if confirmation.is_nack() {
                    return Err(PublishError::Nack {
                        exchange,
                        routing_key,
                    });
                }
                if confirmation.take_message().is_some() {
                    return Err(PublishError::Unroutable {
                        exchange,
                        routing_key,
                    });
                }
                Ok(())
            });
        }
        Ok(async move { try_join_all(confirms).await.map(drop) })
    }
}

/// Properties of a persistent CloudEvents message with `id`.
pub fn cloudevent_properties(id: &str, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(crate::contract::envelope::CONTENT_TYPE.into())
        .with_message_id(id.into())
        .with_delivery_mode(2)
        .with_headers(headers)
}
