//! Converters from public real datasets to event contract v1, to test and calibrate the rules on
//! real behaviour. The data lives outside the repository (`../shared/data`, README there).

pub mod olist;
