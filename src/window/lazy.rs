//! Per-seller state that most sellers never use: a null pointer until first written, and freed
//! again when a sweep leaves it empty. An emptied state behaves exactly as a fresh one (empty
//! windows, no entries), so dropping it changes no result; it only stops an idle seller paying
//! for every family's empty collections.

#[derive(Debug)]
pub struct Lazy<T>(Option<Box<T>>);

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Lazy(None)
    }
}

impl<T: Default> Lazy<T> {
    /// The state, if it holds anything (`None` reads as the empty state).
    pub fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }

    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    /// The state for writing: created empty on first use.
    pub fn make(&mut self) -> &mut T {
        self.0.get_or_insert_with(Default::default)
    }

    /// Runs `sweep` (true when it left the state empty) and frees an emptied state. True when
    /// nothing is held.
    pub fn sweep(&mut self, sweep: impl FnOnce(&mut T) -> bool) -> bool {
        if self.0.as_deref_mut().is_some_and(sweep) {
            self.0 = None;
        }
        self.0.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_on_write_freed_when_swept_empty() {
        let mut l: Lazy<Vec<u8>> = Lazy::default();
        assert!(l.get().is_none());
        assert!(l.sweep(|v| v.is_empty()), "nothing held");
        l.make().push(1);
        assert!(!l.sweep(|v| v.is_empty()));
        assert_eq!(l.get().map(Vec::len), Some(1));
        assert!(l.sweep(|v| {
            v.clear();
            true
        }));
        assert!(l.get().is_none());
    }
}
