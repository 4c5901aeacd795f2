//! Windows and state machinery shared by every rule family: synchronous, no I/O, time taken from
//! events. Rules compose these; none keeps its own copy of window logic.

pub mod lazy;
pub mod order;
pub mod quantile;
pub mod rate;
pub mod sliding;
pub mod timers;

pub use lazy::Lazy;
pub use order::{Admission, Ready, Sequencer};
pub use quantile::WindowedMedian;
pub use rate::RateWindow;
pub use sliding::{Counter, Counters, Span, TimedLog};
pub use timers::TimerQueue;
