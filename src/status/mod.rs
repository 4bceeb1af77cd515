//! What operators read (§7): the [`Observer`] samples the lock-free recorders of `metrics`, the
//! pool, the limiter and the event log once a second, and builds the plain-data [`Snapshot`] that
//! `/status` returns, `/metrics` renders and the dashboard draws.
//!
//! Kept apart from `metrics` so that the recorders stay a leaf the request path and the adaptive
//! loop write to, while this module sits above everything it reads.
//!
//! - `bound`: where each listener is bound ([`BoundAddresses`]; port 0 lets the kernel pick).
//! - `observer`: the once-a-second sampler ([`SamplerService`]) and the snapshot builder.
//! - `pools`: the `pools` block, summed from the backends' entries.
//! - `snapshot`: the plain-data snapshot types (serde).

mod bound;
mod observer;
mod pools;
pub mod snapshot;

pub use bound::BoundAddresses;
pub use observer::{Observer, SamplerService, Sources, StaticInfo};
pub use snapshot::Snapshot;
