//! placeholder
/// placeholder
pub struct Controller;
