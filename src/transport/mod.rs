//! Adapters that move messages in and out of the hub.

pub mod amqp;
pub mod drop;
pub mod http;
pub mod tls;
