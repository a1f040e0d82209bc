pub fn placeholder() {}

pub mod sandbox;
