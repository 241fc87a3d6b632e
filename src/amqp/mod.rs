//! RabbitMQ: connection, topology, publishing.

pub mod publisher;
pub mod topology;

use lapin::{Connection, ConnectionProperties};

/// Connects to the broker at `url`, naming the connection for the
/// management UI.
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, properties).await
}
