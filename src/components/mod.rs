//! Reusable views shared by several pages.

pub mod live;
