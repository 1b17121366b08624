//! Acknowledgements and responses the hub sends back to senders.

pub mod contrl;
pub mod res;
